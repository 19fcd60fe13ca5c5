"""Operator settings, from the environment. Every one is documented in docs/settings.md with its unit."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from cams_webhook_operator.cams.credentials import DEFAULT_STS_ENDPOINT, Credentials, RrsaConfig
from cams_webhook_operator.cams.proxies import Proxies


def _own_namespace() -> str:
    path = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    return path.read_text().strip() if path.exists() else "default"


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CAMS_", frozen=True)

    endpoint: str = Field(
        default="https://cams.ap-southeast-1.aliyuncs.com",
        description="CAMS API endpoint (CAMS_ENDPOINT). An operator setting, never a field of the resource.",
    )
    allow_http: bool = Field(
        default=False,
        description="Accept plain-http CAMS and STS endpoints (CAMS_ALLOW_HTTP): for the simulator and local "
        "tests only, since every call carries credentials.",
    )
    qps: float = Field(default=10.0, gt=0, description="CAMS calls per second per account (CAMS_QPS).")
    burst: int = Field(
        default=1, ge=1, description="Calls per account that may be sent back to back (CAMS_BURST)."
    )
    adaptive: bool = Field(
        default=True,
        description="Slow down on CAMS flow-control answers, wait as long as they ask (x-acs-retry-after), "
        "and recover after (CAMS_ADAPTIVE). Turn off only to reproduce a fixed-rate client, as the "
        "benchmark's baselines do.",
    )
    retry_jitter: bool = Field(
        default=True,
        description="Spread retry delays randomly over 50-100 % of their value (CAMS_RETRY_JITTER).",
    )
    timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one CAMS call, in seconds.")
    retry_base_seconds: float = Field(
        default=1.0, gt=0, description="First retry delay after a throttled or transient failure, in seconds."
    )
    retry_max_seconds: float = Field(default=300.0, gt=0, description="Longest retry delay, in seconds.")
    permanent_retry_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="When CAMS refused for good, try the same request again after this many seconds.",
    )
    drift_interval_seconds: float = Field(
        default=600.0,
        ge=0,
        description="How often CAMS's live webhooks are compared with the specs (one read per space), in "
        "seconds, spread by +-10 %; 0 turns drift checks off. Per object: the drift-check-interval "
        "annotation.",
    )
    min_drift_interval_seconds: float = Field(
        default=30.0,
        ge=1,
        description="The shortest drift-check-interval an object's annotation may ask for, in seconds; a "
        "shorter one is raised to it.",
    )
    secret_refresh_seconds: float = Field(
        default=60.0,
        gt=0,
        description="How often the Secrets that accounts and objects name are read again, in seconds: the "
        "operator gets them by name and watches no Secret, so a rotated key is seen within this time (and "
        "at once when CAMS refuses the key it holds).",
    )
    claim_grace_seconds: float = Field(
        default=300.0,
        ge=0,
        description="After the object that manages a number is deleted, how long only an object of the same "
        "namespace and name (re-created: an Argo CD Replace, a restore) may take the number, in seconds.",
    )
    workers: int = Field(
        default=16,
        ge=1,
        description="Objects decided concurrently (Secret reads, status writes). CAMS calls wait in their "
        "account's lane, not in a worker.",
    )
    max_in_flight: int = Field(
        default=20,
        ge=1,
        description="CAMS calls in flight per account at most: enough for the whole quota even when CAMS "
        "takes 2 s to answer at 10 calls/s.",
    )
    circuit_breaker: bool = Field(
        default=True,
        description="Hold an account's objects while CAMS fails every call, with one probe every 2 s, and "
        "release them when it answers (CAMS_CIRCUIT_BREAKER). Turn off only to reproduce a client without "
        "one, as the benchmark's baselines do.",
    )
    metrics_host: str = Field(default="127.0.0.1", description="Address the /metrics endpoint listens on.")
    metrics_port: int = Field(
        default=8081, ge=0, le=65535, description="Port of the Prometheus /metrics endpoint; 0 turns it off."
    )
    leader_election: bool = Field(
        default=True,
        description="Take a Lease before acting, so that of several replicas exactly one calls CAMS.",
    )
    leader_election_id: str = Field(
        default="cams-webhook-operator", description="Name of the Lease; one per operator deployment."
    )
    operator_namespace: str = Field(
        default_factory=_own_namespace,
        description="The operator's namespace: ClusterCamsAccounts may name Secrets here only, and its "
        "Leases live here. Default: the pod's own, or 'default' outside a cluster.",
    )
    leader_election_namespace: str | None = Field(
        default=None, description="Namespace of the Lease; default: the operator's namespace."
    )
    lease_seconds: float = Field(
        default=15.0, ge=3, description="How long a leader's lease lasts without renewal, in seconds."
    )
    liveness_endpoint: str = Field(
        default="http://127.0.0.1:8080/healthz", description="Where the liveness probe is served."
    )

    access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_ACCESS_KEY_ID")
    )
    access_key_secret: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    )
    security_token: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_SECURITY_TOKEN")
    )

    role_arn: str | None = Field(default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_ROLE_ARN"))
    oidc_provider_arn: str | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_OIDC_PROVIDER_ARN")
    )
    oidc_token_file: Path | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_OIDC_TOKEN_FILE")
    )
    sts_endpoint: str | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_STS_ENDPOINT")
    )
    # As the official credentials provider reads them: a region picks sts.<region>.aliyuncs.com, or the
    # VPC endpoint sts-vpc.<region>.aliyuncs.com when enabled; an explicit endpoint wins over both.
    sts_region: str | None = Field(default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_STS_REGION"))
    vpc_endpoint_enabled: bool = Field(
        default=False, validation_alias=AliasChoices("ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED")
    )
    role_session_name: str = Field(
        default="cams-webhook-operator",
        pattern=r"^[A-Za-z0-9.@_-]{2,64}$",
        validation_alias=AliasChoices("ALIBABA_CLOUD_ROLE_SESSION_NAME"),
        description="RRSA's RoleSessionName: 2 to 64 of letters, digits and . @ _ -",
    )
    # The end of the official default chain, for an operator with neither an AccessKey nor RRSA: the
    # node's RAM role (unless disabled), then a credentials URI.
    ecs_metadata_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
    )
    ecs_role_name: str | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_ECS_METADATA")
    )
    imdsv1_disabled: bool = Field(
        default=False, validation_alias=AliasChoices("ALIBABA_CLOUD_IMDSV1_DISABLED")
    )
    credentials_uri: str | None = Field(
        default=None, validation_alias=AliasChoices("ALIBABA_CLOUD_CREDENTIALS_URI")
    )
    # The standard proxy variables (either case), for every call to Alibaba Cloud (cams/proxies.py).
    https_proxy: str | None = Field(default=None, validation_alias=AliasChoices("HTTPS_PROXY"))
    http_proxy: str | None = Field(default=None, validation_alias=AliasChoices("HTTP_PROXY"))
    no_proxy: str | None = Field(default=None, validation_alias=AliasChoices("NO_PROXY"))
    metadata_endpoint: str = Field(
        default="http://100.100.100.200",
        description="The ECS metadata server the node's RAM role is read from (CAMS_METADATA_ENDPOINT).",
    )
    rrsa_duration_seconds: int = Field(
        default=3600,
        description="Lifetime asked of RRSA's temporary credentials: 900 (STS's minimum) up to the role's "
        "maximum.",
    )

    @field_validator("rrsa_duration_seconds")
    @classmethod
    def _sts_minimum(cls, value: int) -> int:
        if value < 900:
            raise ValueError(
                f"CAMS_RRSA_DURATION_SECONDS is {value}: STS issues credentials for 900 seconds at least"
            )
        return value

    @property
    def sts_host(self) -> str:
        """Where RRSA's exchange goes."""
        if self.sts_endpoint:
            return self.sts_endpoint
        if self.sts_region:
            prefix = "sts-vpc" if self.vpc_endpoint_enabled else "sts"
            return f"{prefix}.{self.sts_region}.aliyuncs.com"
        return DEFAULT_STS_ENDPOINT

    @model_validator(mode="after")
    def _endpoints_are_safe(self) -> OperatorSettings:
        """Refused at start-up: an endpoint without a scheme (every call would fail as unreachable) and,
        unless asked for, plain http (the signed request carries the STS token; STS gets the OIDC token)."""
        for variable, value, host_alone_ok in (
            ("CAMS_ENDPOINT", self.endpoint, False),
            ("ALIBABA_CLOUD_STS_ENDPOINT", self.sts_host, True),
        ):
            if host_alone_ok and "://" not in value:
                continue  # a host name: https is implied
            url = urlsplit(value)
            if url.scheme == "https" and url.hostname:
                continue
            if url.scheme == "http" and url.hostname:
                if self.allow_http:
                    continue
                raise ValueError(
                    f"{variable} is plain http ({value}), and every call carries credentials: use https://, "
                    "or set CAMS_ALLOW_HTTP=true for a local simulator"
                )
            raise ValueError(
                f"{variable} must be an https:// URL with a host, for example "
                f"https://cams.ap-southeast-1.aliyuncs.com (got {value!r})"
            )
        return self

    def rrsa_config(self) -> RrsaConfig | None:
        """RRSA (pod identity on ACK), when the webhook injected its three variables."""
        if not (self.role_arn and self.oidc_provider_arn and self.oidc_token_file):
            return None
        return RrsaConfig(
            role_arn=self.role_arn,
            oidc_provider_arn=self.oidc_provider_arn,
            token_file=self.oidc_token_file,
            sts_endpoint=self.sts_host,
            session_name=self.role_session_name,
            duration_seconds=self.rrsa_duration_seconds,
        )

    def proxies(self) -> Proxies:
        return Proxies.of(https=self.https_proxy, http=self.http_proxy, no_proxy=self.no_proxy)

    def operator_credentials(self) -> Credentials | None:
        """The operator's own credentials (for ClusterCamsAccounts with operatorIdentity), read as a Secret's
        are: surrounding whitespace (a trailing newline from a file) dropped, an empty value unset."""
        key_id = (self.access_key_id or "").strip()
        secret = self.access_key_secret.get_secret_value().strip() if self.access_key_secret else ""
        if not key_id or not secret:
            return None
        token = self.security_token.get_secret_value().strip() if self.security_token else ""
        return Credentials(access_key_id=key_id, access_key_secret=secret, security_token=token or None)


class SettingsError(ValueError):
    """Settings the operator cannot start with: one line per variable, what it must be."""


def load_settings() -> OperatorSettings:
    """The settings from the environment; a bad one is a SettingsError naming the variable (CAMS_QPS, not
    the field qps) and what it must be, one line each, never the value of a secret."""
    try:
        return OperatorSettings()
    except ValidationError as exc:
        raise SettingsError("\n".join(_explained(error) for error in exc.errors())) from None


def _explained(error: ErrorDetails) -> str:
    """`CAMS_QPS='-1': must be greater than 0`: the variable as it is set (a field read from an alias,
    ALIBABA_CLOUD_..., is reported under it), what it must be, and its value unless it is a secret."""
    name = str(error["loc"][0]) if error["loc"] else ""
    fields = OperatorSettings.model_fields
    info = fields.get(name) or next(
        (
            f
            for f in fields.values()
            if isinstance(f.validation_alias, AliasChoices) and name in f.validation_alias.choices
        ),
        None,
    )
    variable = name if name.isupper() else f"CAMS_{name.upper()}"
    secret = info is not None and SecretStr in getattr(info.annotation, "__args__", (info.annotation,))
    value = "" if secret or "input" not in error or not name else f"={error['input']!r}"
    message = str(error["msg"]).removeprefix("Value error, ")
    message = message.replace("Input should be", "must be").replace("String should", "must")
    return f"{variable}{value}: {message}" if name else message
