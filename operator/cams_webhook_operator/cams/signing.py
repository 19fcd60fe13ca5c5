"""Alibaba Cloud API signature V3 (`ACS3-HMAC-SHA256`) for RPC calls sent as `POST /` with a query string.

Written here rather than taken from `alibabacloud-tea-openapi`: that SDK is synchronous at heart, pulls in
a large dependency tree, and hides the canonical request we need to verify signatures in the simulator.
The official signer is used in the tests as an independent check of this one.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

ALGORITHM = "ACS3-HMAC-SHA256"
DATE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def percent_encode(value: str) -> str:
    """RFC 3986 encoding: only A-Z a-z 0-9 - _ . ~ stay as they are; everything else is %XX of UTF-8."""
    return quote(value, safe="-_.~", encoding="utf-8")


def canonical_query_string(params: Mapping[str, str]) -> str:
    return "&".join(f"{percent_encode(name)}={percent_encode(params[name])}" for name in sorted(params))


def _signed_header_names(headers: Mapping[str, str]) -> list[str]:
    """Every header we send that the gateway wants signed: host, content-type and all x-acs-*."""
    names = {name.lower() for name in headers}
    return sorted(n for n in names if n in ("host", "content-type") or n.startswith("x-acs-"))


def canonical_request(
    *,
    method: str,
    path: str,
    query: Mapping[str, str],
    headers: Mapping[str, str],
    signed_headers: list[str],
    payload_sha256: str,
) -> str:
    lowered = {name.lower(): value for name, value in headers.items()}
    canonical_headers = "".join(f"{name}:{lowered[name].strip()}\n" for name in signed_headers)
    return "\n".join(
        [
            method.upper(),
            path,
            canonical_query_string(query),
            canonical_headers,
            ";".join(signed_headers),
            payload_sha256,
        ]
    )


def string_to_sign(canonical: str) -> str:
    return f"{ALGORITHM}\n{hashlib.sha256(canonical.encode()).hexdigest()}"


def signature(*, secret: str, canonical: str) -> str:
    return hmac.new(secret.encode(), string_to_sign(canonical).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class RequestToSign:
    """One RPC request before signing. `headers` must hold host and every x-acs-* header except the
    signature itself; `sign_headers` adds x-acs-content-sha256 when it is missing."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""


def sign_headers(request: RequestToSign, *, access_key_id: str, access_key_secret: str) -> dict[str, str]:
    """The request's headers plus `x-acs-content-sha256` and `Authorization`."""
    headers = dict(request.headers)
    payload_sha256 = hashlib.sha256(request.body).hexdigest()
    headers.setdefault("x-acs-content-sha256", payload_sha256)
    signed = _signed_header_names(headers)
    canonical = canonical_request(
        method=request.method,
        path=request.path,
        query=request.query,
        headers=headers,
        signed_headers=signed,
        payload_sha256=payload_sha256,
    )
    headers["Authorization"] = (
        f"{ALGORITHM} Credential={access_key_id},SignedHeaders={';'.join(signed)},"
        f"Signature={signature(secret=access_key_secret, canonical=canonical)}"
    )
    return headers


@dataclass(frozen=True)
class Authorization:
    """The parts of an `Authorization: ACS3-HMAC-SHA256 ...` header."""

    access_key_id: str
    signed_headers: list[str]
    signature: str


def parse_authorization(value: str) -> Authorization | None:
    """Parse an Authorization header; None when it is not a well-formed V3 one."""
    algorithm, _, rest = value.strip().partition(" ")
    if algorithm != ALGORITHM:
        return None
    parts: dict[str, str] = {}
    for item in rest.split(","):
        key, sep, val = item.strip().partition("=")
        if not sep:
            return None
        parts[key] = val
    if not {"Credential", "SignedHeaders", "Signature"} <= parts.keys() or not parts["Credential"]:
        return None
    return Authorization(
        access_key_id=parts["Credential"],
        signed_headers=[h for h in parts["SignedHeaders"].split(";") if h],
        signature=parts["Signature"],
    )
