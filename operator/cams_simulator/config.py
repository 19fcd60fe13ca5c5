"""The simulator's accounts and spaces, from a YAML or JSON file."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from cams_simulator.wire import Failure


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")


class SpaceConfig(_Model):
    id: str
    # None: any phone number belongs to the space (handy for benchmarks with thousands of numbers).
    phone_numbers: list[str] | None = None


class AccountConfig(_Model):
    access_key_id: str
    access_key_secret: str
    # Set for an STS triple: calls must then carry exactly this token, signed.
    security_token: str | None = None
    uid: str = Field(description="The account; flow control is counted per account.")
    subscribed: bool = True
    permitted: bool = True
    spaces: list[SpaceConfig] = Field(default_factory=list)


class RoleConfig(_Model):
    """A RAM role that RRSA assumes: STS issues temporary credentials of the role's account for it."""

    role_arn: str
    oidc_provider_arn: str
    # The OIDC tokens STS accepts for this role (the simulator cannot check a real JWT's signature).
    oidc_tokens: list[str]
    uid: str
    spaces: list[SpaceConfig] = Field(default_factory=list)
    max_duration_seconds: int = 3600
    # A test knob STS does not have: issue credentials that expire this many seconds after issue, whatever
    # DurationSeconds asked (which must still be valid), so refreshing is tested in seconds, not minutes.
    issued_lifetime_seconds: int | None = Field(default=None, ge=1)


class InstanceRoleConfig(_Model):
    """The RAM role of the (simulated) ECS instance the operator runs on: the metadata server's stand-in
    (metadata.py) hands out STS credentials of the role's account, as does the credentials URI."""

    role_name: str
    uid: str
    spaces: list[SpaceConfig] = Field(default_factory=list)
    issued_lifetime_seconds: int = Field(default=3600, ge=1)
    # The hardened mode only (IMDSv2): a read without a session token is refused, as a hardened instance does.
    require_token: bool = True
    # False: an older metadata server, without IMDSv2's token endpoint (plain reads only).
    offers_token: bool = True


class SimulatorConfig(_Model):
    accounts: list[AccountConfig]
    roles: list[RoleConfig] = Field(default_factory=list)
    instance_role: InstanceRoleConfig | None = None
    sts_min_duration_seconds: int = Field(default=900, ge=1, description="STS's floor for DurationSeconds.")
    qps: float = Field(default=10.0, gt=0, description="Calls per second per account and action.")
    burst: float | None = Field(default=None, description="Token-bucket size; default: qps.")
    # How flow control answers: CAMS's business code with HTTP 400, or the API gateway's own with HTTP 429.
    # Both carry x-acs-retry-after (milliseconds until a call would pass), which the official SDK obeys.
    throttle_code: Literal["System.LimitControl", "Throttling.User"] = "System.LimitControl"
    fail_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls that fail.")
    failure: Failure = Field(default="ServiceUnavailable", description="How a failed call is answered.")
    latency_ms: float = Field(default=0.0, ge=0)
    # Nothing documents that an empty callback URL clears one: in this mode CAMS takes an empty value as
    # "not given" and keeps the URL it holds (the operator must notice that a clear did not take).
    empty_means_not_given: bool = False
    clock_skew_seconds: int = Field(default=900, description="Accepted distance of x-acs-date from now.")

    @classmethod
    def load(cls, path: Path) -> SimulatorConfig:
        return cls.model_validate(yaml.safe_load(path.read_text()))


DEMO_ACCESS_KEY_ID = "demo-access-key-id"
DEMO_ACCESS_KEY_SECRET = "demo-access-key-secret"  # a simulator-only key, worthless anywhere else
DEMO_SPACE_ID = "demo-space"


def demo_config() -> SimulatorConfig:
    """One subscribed account with one space that holds any number: enough for the demo."""
    return SimulatorConfig(
        accounts=[
            AccountConfig(
                access_key_id=DEMO_ACCESS_KEY_ID,
                access_key_secret=DEMO_ACCESS_KEY_SECRET,
                uid="1000000000000001",
                spaces=[SpaceConfig(id=DEMO_SPACE_ID)],
            )
        ]
    )
