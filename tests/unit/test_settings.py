"""Settings refused at start-up with a message that says what to do, and environment credentials read as
a Secret's are. Each of these was accepted as it came before."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from cams_webhook_operator.settings import OperatorSettings


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
