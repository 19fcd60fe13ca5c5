"""The V3 signer: Alibaba's official test vector, and agreement with the official SDK's signer."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cams_webhook_operator.cams.signing import (
    RequestToSign,
    canonical_request,
    parse_authorization,
    percent_encode,
    sign_headers,
)

VECTOR_QUERY = {
    "ImageId": "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
    "RegionId": "cn-shanghai",
}
VECTOR_HEADERS = {
    "host": "ecs.cn-shanghai.aliyuncs.com",
    "x-acs-action": "RunInstances",
    "x-acs-version": "2014-05-26",
    "x-acs-date": "2023-10-26T10:22:32Z",
    "x-acs-signature-nonce": "3156853299f313e23d1673dc12e1703d",
}


def test_official_test_vector_canonical_request_hash() -> None:
    headers = {**VECTOR_HEADERS, "x-acs-content-sha256": hashlib.sha256(b"").hexdigest()}
    canonical = canonical_request(
        method="POST",
        path="/",
        query=VECTOR_QUERY,
        headers=headers,
        signed_headers=sorted(headers),
        payload_sha256=hashlib.sha256(b"").hexdigest(),
    )
    assert hashlib.sha256(canonical.encode()).hexdigest() == (
        "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
    )


def test_official_test_vector_signature() -> None:
    headers = sign_headers(
        RequestToSign(method="POST", path="/", query=VECTOR_QUERY, headers=VECTOR_HEADERS),
        access_key_id="YourAccessKeyId",
        access_key_secret="YourAccessKeySecret",
    )
    assert headers["Authorization"] == (
        "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,"
        "SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,"
        "Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
    )


def test_percent_encoding_matches_the_sdk_example() -> None:
    assert percent_encode("a b*c~d/e:f+g=h&i") == "a%20b%2Ac~d%2Fe%3Af%2Bg%3Dh%26i"


def test_security_token_is_signed() -> None:
    headers = sign_headers(
        RequestToSign(
            method="POST",
            path="/",
            query={},
            headers={**VECTOR_HEADERS, "x-acs-security-token": "token-value"},
        ),
        access_key_id="STS.id",
        access_key_secret="secret",
    )
    authorization = parse_authorization(headers["Authorization"])
    assert authorization is not None
    assert "x-acs-security-token" in authorization.signed_headers


@pytest.mark.parametrize(
    "header",
    [
        "",
        "Bearer x",
        "ACS3-HMAC-SHA256 Credential=a",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=h,Signature=s",
    ],
    ids=["empty", "other-scheme", "missing-parts", "empty-credential"],
)
def test_malformed_authorization_is_rejected(header: str) -> None:
    assert parse_authorization(header) is None


def _official_authorization(query: dict[str, str], headers: dict[str, str], ak: str, secret: str) -> str:
    from alibabacloud_tea_openapi.utils import Utils
    from darabonba.request import DaraRequest

    request = DaraRequest()
    request.method = "POST"
    request.pathname = "/"
    request.query = dict(query)
    request.headers = dict(headers)
    return str(
        Utils.get_authorization(request, "ACS3-HMAC-SHA256", hashlib.sha256(b"").hexdigest(), ak, secret)
    )


# Text that stresses the encoder: non-ASCII, spaces, and every character the SDK encodes specially.
_tricky_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(list(" *~/+=&%:?#@!$'()[],;中文é😀-_.")),
        st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(
    query=st.dictionaries(
        st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefgh", min_size=1, max_size=12),
        _tricky_text,
        max_size=6,
    ),
    nonce=st.text(alphabet="0123456789abcdef", min_size=8, max_size=32),
    secret=st.text(
        alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", min_size=1, max_size=30
    ),
    token=st.one_of(st.none(), st.text(alphabet="abcdefABCDEF0123456789+/=", min_size=1, max_size=40)),
)
def test_signature_agrees_with_the_official_sdk(
    query: dict[str, str], nonce: str, secret: str, token: str | None
) -> None:
    headers = {
        "host": "cams.ap-southeast-1.aliyuncs.com",
        "x-acs-action": "UpdatePhoneWebhook",
        "x-acs-version": "2020-06-06",
        "x-acs-date": "2026-11-27T10:00:00Z",
        "x-acs-signature-nonce": nonce,
        "x-acs-content-sha256": hashlib.sha256(b"").hexdigest(),
    }
    if token is not None:
        headers["x-acs-security-token"] = token
    ours = sign_headers(
        RequestToSign(method="POST", path="/", query=query, headers=headers),
        access_key_id="LTAI-test",
        access_key_secret=secret,
    )["Authorization"]
    assert ours == _official_authorization(query, headers, "LTAI-test", secret)
