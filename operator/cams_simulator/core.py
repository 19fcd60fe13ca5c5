"""The simulator's behaviour, free of any HTTP framework: one request in, one (status, body) out.

Checks run in the order Alibaba's gateway applies them: the signature and its freshness first, then flow
control, then the business rules of the action.
"""

from __future__ import annotations

import math
import random
import uuid
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cams_simulator.config import AccountConfig, RoleConfig, SimulatorConfig, SpaceConfig
from cams_simulator.gateway import GET_CALLER_IDENTITY, Gateway
from cams_simulator.wire import Body, CamsError, Failure, InjectedFailureError, Request, failed_answer
from cams_webhook_operator.cams.signing import (
    DATE_FORMAT,
)
from cams_webhook_operator.decisions.pacing import TokenBucket

UPDATE_PHONE_WEBHOOK = "UpdatePhoneWebhook"
QUERY_PHONE_NUMBERS = "QueryChatappPhoneNumbers"
ACTIONS = (UPDATE_PHONE_WEBHOOK, QUERY_PHONE_NUMBERS)
JsonBody = dict[str, Any]


@dataclass(frozen=True)
class CallRecord:
    """One call as the simulator saw it, for tests and benchmarks. Holds no secret."""

    at: float  # monotonic seconds
    action: str
    access_key_id: str | None
    code: str
    params: Mapping[str, str]


# A number in good standing, as QueryChatappPhoneNumbers shows it (field names of the official SDK's model).
HEALTHY_NUMBER = {
    "Status": "CONNECTED",
    "QualityRating": "GREEN",
    "MessagingLimitTier": "TIER_1000",
    "NameStatus": "Approval",
    "CodeVerificationStatus": "VERIFIED",
    "VerifiedName": "Simulated Business",
    "IsOfficial": "N",
}


@dataclass
class Webhook:
    status_callback_url: str = ""
    up_callback_url: str = ""
    http_flag: str = "N"
    queue_flag: str = "N"

    # The number's health as WhatsApp rates it; QueryChatappPhoneNumbers returns it, tests change it.
    health: dict[str, str] = field(default_factory=lambda: dict(HEALTHY_NUMBER))

    def as_json(self) -> JsonBody:
        return {
            "StatusCallbackUrl": self.status_callback_url,
            "UpCallbackUrl": self.up_callback_url,
            "HttpFlag": self.http_flag,
            "QueueFlag": self.queue_flag,
        }


@dataclass
class Simulator:
    config: SimulatorConfig
    rng: random.Random = field(default_factory=random.Random)
    host_id: str = "cams.simulator.local"

    def __post_init__(self) -> None:
        self.webhooks: dict[tuple[str, str], Webhook] = {}
        self.calls: list[CallRecord] = []
        self.codes: Counter[tuple[str, str]] = Counter()
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self.gateway = Gateway(list(self.config.accounts), clock_skew_seconds=self.config.clock_skew_seconds)

    # --- inspection, for tests -------------------------------------------------------------------------

    def reset(self) -> None:
        self.__post_init__()

    def state(self) -> JsonBody:
        return {
            "webhooks": {
                f"{space}/{number}": hook.as_json() for (space, number), hook in self.webhooks.items()
            },
            "calls": {f"{action}/{code}": count for (action, code), count in sorted(self.codes.items())},
            "totalCalls": len(self.calls),
        }

    def calls_of(self, phone_number: str | None = None) -> list[JsonBody]:
        """The calls made, oldest first, optionally for one phone number (or space, for queries)."""
        return [
            {
                "at": c.at,
                "action": c.action,
                "code": c.code,
                "accessKeyId": c.access_key_id,
                "params": dict(c.params),
            }
            for c in self.calls
            if phone_number is None or c.params.get("PhoneNumber") == phone_number
        ]

    def set_webhook(self, space_id: str, phone_number: str, fields: Mapping[str, str]) -> None:
        """Change a webhook behind the operator's back, as someone in the Alibaba Cloud console would, or
        a number's health, as WhatsApp would (QualityRating, Status, MessagingLimitTier, NameStatus ...)."""
        hook = self.webhooks.setdefault((space_id, phone_number), Webhook())
        hook.status_callback_url = fields.get("StatusCallbackUrl", hook.status_callback_url)
        hook.up_callback_url = fields.get("UpCallbackUrl", hook.up_callback_url)
        hook.health.update({k: v for k, v in fields.items() if k in HEALTHY_NUMBER})

    def set_faults(
        self,
        *,
        fail_rate: float | None = None,
        latency_ms: float | None = None,
        failure: Failure | None = None,
        empty_means_not_given: bool | None = None,
    ) -> None:
        wanted = {
            "fail_rate": fail_rate,
            "latency_ms": latency_ms,
            "failure": failure,
            "empty_means_not_given": empty_means_not_given,
        }
        self.config = self.config.model_copy(update={k: v for k, v in wanted.items() if v is not None})

    # --- serving ---------------------------------------------------------------------------------------

    def handle(
        self, request: Request, *, now: datetime, monotonic: float
    ) -> tuple[int, Body, dict[str, str]]:
        """The answer to one signed call: HTTP status, body and headers."""
        request_id = str(uuid.UUID(int=self.rng.getrandbits(128))).upper()
        action = request.headers.get("x-acs-action", "")
        access_key_id: str | None = None
        headers: dict[str, str] = {}
        try:
            account = self.gateway.authenticate(request, now=now)
            access_key_id = account.access_key_id
            self._flow_control(account, action, monotonic)
            if self.rng.random() < self.config.fail_rate:
                raise InjectedFailureError
            found = self._dispatch(account, action, request.query)
            status, code = 200, "OK"
            # STS's success answers carry no Code; CAMS's say "OK".
            said = {} if action == GET_CALLER_IDENTITY else {"Code": "OK"}
            body: Body = {"RequestId": request_id, **said, **found}
        except InjectedFailureError:
            failure = self.config.failure
            status, body, headers = failed_answer(failure, request_id)
            code = "ServiceUnavailable" if isinstance(body, dict) else failure
        except CamsError as error:
            status, code, headers = error.http_status, error.code, error.headers
            body = {
                "RequestId": request_id,
                "HostId": self.host_id,
                "Code": error.code,
                "Message": error.message,
                "Recommend": f"https://api.aliyun.com/troubleshoot?q={error.code}",
                **error.extra,
            }
        self.codes[(action, code)] += 1
        self.calls.append(CallRecord(monotonic, action, access_key_id, code, dict(request.query)))
        return status, body, headers

    def assume_role_with_oidc(
        self, form: Mapping[str, str], *, now: datetime, monotonic: float
    ) -> tuple[int, JsonBody]:
        """STS AssumeRoleWithOIDC: an anonymous call; the OIDC token is the proof."""
        request_id = str(uuid.UUID(int=self.rng.getrandbits(128))).upper()
        role = next((r for r in self.config.roles if r.role_arn == form.get("RoleArn")), None)
        status, code, body = 200, "OK", {}
        if role is None:
            status, code, message = 404, "EntityNotExist.Role", "The role does not exist."
        elif form.get("OIDCProviderArn") != role.oidc_provider_arn:
            status, code, message = 404, "EntityNotExist.OIDCProvider", "The OIDC provider does not exist."
        elif form.get("OIDCToken") not in role.oidc_tokens:
            status, code, message = 400, "AuthenticationFail.OIDCToken.Invalid", "The OIDC token is invalid."
        else:
            try:
                duration = int(form.get("DurationSeconds", "3600"))
            except ValueError:
                duration = -1
            if not self.config.sts_min_duration_seconds <= duration <= role.max_duration_seconds:
                status, code, message = (
                    400,
                    "InvalidParameter.DurationSeconds",
                    "DurationSeconds is out of range.",
                )
            else:
                body = self._issue(role, form.get("RoleSessionName", ""), duration, now)
        if code != "OK":
            body = {"Code": code, "Message": message, "HostId": "sts.simulator.local"}
        self.codes[("AssumeRoleWithOIDC", code)] += 1
        # Recorded without the token: the log of calls is for tests to read.
        self.calls.append(
            CallRecord(monotonic, "AssumeRoleWithOIDC", None, code, {"RoleArn": form.get("RoleArn", "")})
        )
        return status, {"RequestId": request_id, **body}

    def _issue(self, role: RoleConfig, session: str, duration: int, now: datetime) -> JsonBody:
        """AssumeRoleWithOIDC's answer: temporary credentials for `role`."""
        credentials = self.issue(role.uid, role.spaces, role.issued_lifetime_seconds or duration, now)
        return {"Credentials": credentials, "AssumedRoleUser": {"Arn": f"{role.role_arn}/{session}"}}

    def issue(self, uid: str, spaces: list[SpaceConfig], lifetime: int, now: datetime) -> JsonBody:
        """STS credentials of account `uid`: a key the gateway knows from now on, until they expire."""
        key = f"STS.{self.rng.getrandbits(64):016x}"
        account = AccountConfig(
            access_key_id=key,
            access_key_secret=f"{self.rng.getrandbits(128):032x}",
            security_token=f"{self.rng.getrandbits(256):064x}",
            uid=uid,
            spaces=spaces,
        )
        self.gateway.accounts[key] = account
        expires = self.gateway.expires[key] = now + timedelta(seconds=lifetime)
        return {
            "AccessKeyId": key,
            "AccessKeySecret": account.access_key_secret,
            "SecurityToken": account.security_token,
            "Expiration": expires.strftime(DATE_FORMAT),
        }

    def _flow_control(self, account: AccountConfig, action: str, monotonic: float) -> None:
        key = (account.uid, action)
        bucket = self._buckets.get(key)
        if bucket is None:
            burst = self.config.burst or self.config.qps
            bucket = TokenBucket.full(rate=self.config.qps, burst=max(1.0, burst), now=monotonic)
            self._buckets[key] = bucket
        if not bucket.try_take(monotonic):
            wait_ms = math.ceil(max(0.001, (1 - bucket.tokens) / bucket.rate) * 1000)
            if self.config.throttle_code == "Throttling.User":
                status, message = 429, "Request was denied due to user flow control."
            else:
                status, message = 400, "The system is under flow control."
            raise CamsError(
                status, self.config.throttle_code, message, headers={"x-acs-retry-after": str(wait_ms)}
            )

    def _dispatch(self, account: AccountConfig, action: str, query: Mapping[str, str]) -> JsonBody:
        if action == GET_CALLER_IDENTITY:  # STS: any valid credentials may ask, whatever their rights
            kind = "AssumedRoleUser" if account.security_token else "RAMUser"
            return {
                "AccountId": account.uid,
                "IdentityType": kind,
                "Arn": f"acs:ram::{account.uid}:user/{account.access_key_id}",
                "PrincipalId": account.access_key_id,
            }
        if action not in ACTIONS:
            raise CamsError(404, "InvalidAction.NotFound", f"Specified api is not found: {action}")
        if not account.subscribed:
            raise CamsError(400, "Product.Unsubscript", "You have not subscribed to the specified product.")
        if not account.permitted:
            raise CamsError(
                400,
                "Ram.PermissionDeny",
                "You are not authorized to perform the operation.",
                AccessDeniedDetail=f'{{"AuthAction":"cams:{action}","PolicyType":"AccountLevelIdentityBasedPolicy",'
                f'"NoPermissionType":"ImplicitDeny","AuthPrincipalOwnerId":"{account.uid}"}}',
            )
        space_id = query.get("CustSpaceId")
        if not space_id:
            raise CamsError(400, "MissingCustSpaceId", "CustSpaceId is mandatory for this action.")
        space = next((s for s in account.spaces if s.id == space_id), None)
        if space is None:
            raise CamsError(
                400, "Unknown.ResourceOwnerId", "The resource does not belong to the current user."
            )
        if action == QUERY_PHONE_NUMBERS:
            return {"PhoneNumbers": self._numbers_of(space_id, space.phone_numbers)}
        return self._update(space_id, space.phone_numbers, query)

    def _numbers_of(self, space_id: str, configured: list[str] | None) -> list[JsonBody]:
        numbers = configured if configured is not None else [n for (s, n) in self.webhooks if s == space_id]
        out = []
        for number in sorted(numbers):
            hook = self.webhooks.get((space_id, number), Webhook())
            out.append(
                {
                    "PhoneNumber": number,
                    "StatusCallbackUrl": hook.status_callback_url,
                    "UpCallbackUrl": hook.up_callback_url,
                    "StatusQueue": "",
                    "UpQueue": "",
                    **hook.health,
                }
            )
        return out

    def _update(self, space_id: str, configured: list[str] | None, query: Mapping[str, str]) -> JsonBody:
        number = query.get("PhoneNumber")
        if not number:
            raise CamsError(400, "MissingPhoneNumber", "PhoneNumber is mandatory for this action.")
        if configured is not None and number not in configured:
            raise CamsError(
                400, "InvalidParameter", f"The phone number {number} does not belong to the space."
            )
        for flag in ("HttpFlag", "QueueFlag"):
            if flag in query and query[flag] not in ("Y", "N"):
                raise CamsError(400, "InvalidParameter", f"{flag} must be Y or N.")
        hook = self.webhooks.setdefault((space_id, number), Webhook())
        keep_on_empty = self.config.empty_means_not_given
        hook.status_callback_url = _given(query, "StatusCallbackUrl", hook.status_callback_url, keep_on_empty)
        hook.up_callback_url = _given(query, "UpCallbackUrl", hook.up_callback_url, keep_on_empty)
        hook.http_flag = query.get("HttpFlag", hook.http_flag)
        hook.queue_flag = query.get("QueueFlag", hook.queue_flag)
        return {}


def _given(query: Mapping[str, str], name: str, held: str, keep_on_empty: bool) -> str:
    """The value a call sets for `name`: the one it sends, unless it sends none (or an empty one, in the
    mode where empty means not given)."""
    value = query.get(name, held)
    return held if value == "" and keep_on_empty else value
