"""What goes to CAMS and comes back, as plain data: no HTTP here, so the decisions can use it."""

from __future__ import annotations

from dataclasses import dataclass

UPDATE_PHONE_WEBHOOK = "UpdatePhoneWebhook"
QUERY_PHONE_NUMBERS = "QueryChatappPhoneNumbers"


def _flag(value: bool | None) -> str | None:
    return None if value is None else ("Y" if value else "N")


@dataclass(frozen=True)
class WebhookUpdate:
    """The parameters of one UpdatePhoneWebhook call. None leaves a value in CAMS as it is."""

    cust_space_id: str
    phone_number: str
    status_callback_url: str | None = None
    up_callback_url: str | None = None
    http_flag: bool | None = None
    queue_flag: bool | None = None

    def query(self) -> dict[str, str]:
        params = {
            "CustSpaceId": self.cust_space_id,
            "PhoneNumber": self.phone_number,
            "StatusCallbackUrl": self.status_callback_url,
            "UpCallbackUrl": self.up_callback_url,
            "HttpFlag": _flag(self.http_flag),
            "QueueFlag": _flag(self.queue_flag),
        }
        return {name: value for name, value in params.items() if value is not None}


@dataclass(frozen=True)
class LiveNumber:
    """A number as CAMS reports it: its webhook (the read API has no HttpFlag/QueueFlag: only URLs compare)
    and its health, as WhatsApp rates it (observed, never set by the operator)."""

    phone_number: str
    status_callback_url: str
    up_callback_url: str
    status: str = ""  # CONNECTED, FLAGGED, RATE_LIMITED, PENDING, OFFLINE, PAUSED, DELETED ...
    quality_rating: str = ""  # GREEN, YELLOW, RED, UNKNOWN
    messaging_limit_tier: str = ""
    name_status: str = ""  # the verified name's review: Approval, Pending_Review, Rejected
    code_verification_status: str = ""
    verified_name: str = ""
    is_official: str = ""
