"""Settings refused at start-up with a message that says what to do, and environment credentials read as
a Secret's are. Each of these was accepted as it came before."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cams_webhook_operator.cli import main
from cams_webhook_operator.settings import OperatorSettings, SettingsError, load_settings


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("cams.ap-southeast-1.aliyuncs.com", "CAMS_ENDPOINT must be an https:// URL with a host"),
        ("https://", "CAMS_ENDPOINT must be an https:// URL with a host"),
        ("ftp://cams.example.com", "CAMS_ENDPOINT must be an https:// URL with a host"),
        ("http://cams.example.com", "CAMS_ENDPOINT is plain http"),
    ],
)
def test_an_unsafe_or_unusable_endpoint_is_refused(endpoint: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OperatorSettings(endpoint=endpoint)


def test_plain_http_needs_the_opt_in_for_cams_and_for_sts() -> None:
    assert OperatorSettings(endpoint="http://127.0.0.1:8080", allow_http=True).endpoint.startswith("http:")
    with pytest.raises(ValidationError, match="ALIBABA_CLOUD_STS_ENDPOINT is plain http"):
        OperatorSettings(ALIBABA_CLOUD_STS_ENDPOINT="http://127.0.0.1:9000")
    assert OperatorSettings(ALIBABA_CLOUD_STS_ENDPOINT="sts-vpc.ap-southeast-1.aliyuncs.com")


def test_environment_credentials_are_read_as_a_secrets_are() -> None:
    settings = OperatorSettings(
        ALIBABA_CLOUD_ACCESS_KEY_ID=" STS.key\n",
        ALIBABA_CLOUD_ACCESS_KEY_SECRET="secret\n",
        ALIBABA_CLOUD_SECURITY_TOKEN="token\n",
    )
    credentials = settings.operator_credentials()
    assert credentials is not None
    assert (credentials.access_key_id, credentials.access_key_secret, credentials.security_token) == (
        "STS.key",
        "secret",
        "token",
    )
    empty = OperatorSettings(ALIBABA_CLOUD_ACCESS_KEY_ID="LTAI", ALIBABA_CLOUD_ACCESS_KEY_SECRET="")
    assert empty.operator_credentials() is None, "an empty secret is no secret: unset"


RRSA = {
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1:role/r",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1:oidc-provider/p",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/secrets/tokens/oidc-token",
}


@pytest.mark.parametrize(
    ("env", "host"),
    [
        ({}, "sts.aliyuncs.com"),
        ({"ALIBABA_CLOUD_STS_REGION": "ap-southeast-1"}, "sts.ap-southeast-1.aliyuncs.com"),
        (
            {"ALIBABA_CLOUD_STS_REGION": "ap-southeast-1", "ALIBABA_CLOUD_VPC_ENDPOINT_ENABLED": "true"},
            "sts-vpc.ap-southeast-1.aliyuncs.com",
        ),
        (
            {"ALIBABA_CLOUD_STS_REGION": "cn-hangzhou", "ALIBABA_CLOUD_STS_ENDPOINT": "sts.example.com"},
            "sts.example.com",
        ),
    ],
    ids=["default", "region", "region-vpc", "explicit-endpoint-wins"],
)
def test_the_sts_endpoint_follows_what_the_official_provider_reads(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], host: str
) -> None:
    for name, value in {**RRSA, **env}.items():
        monkeypatch.setenv(name, value)
    config = OperatorSettings().rrsa_config()
    assert config is not None
    assert config.sts_endpoint == host


def test_the_role_session_name_is_honoured_and_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in RRSA.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_SESSION_NAME", "team-a.operator")
    config = OperatorSettings().rrsa_config()
    assert config is not None
    assert config.session_name == "team-a.operator"
    monkeypatch.setenv("ALIBABA_CLOUD_ROLE_SESSION_NAME", "has spaces")
    with pytest.raises(ValidationError, match="ALIBABA_CLOUD_ROLE_SESSION_NAME"):
        OperatorSettings()


def test_an_rrsa_duration_sts_would_refuse_is_refused_at_start_up() -> None:
    with pytest.raises(ValidationError, match="STS issues credentials for 900 seconds at least"):
        OperatorSettings(rrsa_duration_seconds=600)


@pytest.mark.parametrize(
    ("variable", "value", "said"),
    [
        ("CAMS_QPS", "-1", "CAMS_QPS='-1': must be greater than 0"),
        ("CAMS_WORKERS", "many", "CAMS_WORKERS='many': must be a valid integer"),
        ("ALIBABA_CLOUD_ROLE_SESSION_NAME", "no spaces!", "ALIBABA_CLOUD_ROLE_SESSION_NAME='no spaces!': "),
    ],
)
def test_a_bad_setting_names_the_variable_and_what_it_must_be(
    variable: str, value: str, said: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError) as bad:
        load_settings()
    assert str(bad.value).startswith(said), str(bad.value)
    assert "\n" not in str(bad.value), "one line per variable"


def test_the_operator_says_a_bad_setting_in_one_line_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("CAMS_QPS", "0")
    assert main(["--namespace", "team-a"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["cams-webhook-operator: bad setting:", "CAMS_QPS='0': must be greater than 0"]
