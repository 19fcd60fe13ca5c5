"""Callback URLs as a call sends them: from the spec, or from a key of a Secret in the object's namespace
(`statusCallbackUrlFrom.secretKeyRef`), for URLs that carry a token. A URL read from a Secret is never
shown: problems name the Secret and the key, and `redact` is how a URL CAMS holds appears in status.
Pure; the resolver reads the Secrets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from cams_webhook_operator.api.models import PhoneWebhookSpec, UrlSource
from cams_webhook_operator.tenancy.credentials import CredentialProblem, SecretData

REDACTED = "redacted"
FROM_FIELDS = ("statusCallbackUrlFrom", "upCallbackUrlFrom")  # in the order of `sources`


@dataclass(frozen=True, slots=True)
class CallbackUrls:
    """The URLs a call sends (None: leave what CAMS holds)."""

    status_callback_url: str | None
    up_callback_url: str | None


def sources(spec: PhoneWebhookSpec) -> tuple[UrlSource | None, UrlSource | None]:
    return spec.status_callback_url_from, spec.up_callback_url_from


def secret_names(spec: PhoneWebhookSpec) -> set[str]:
    """The Secrets (in the object's namespace) that the spec's URLs come from."""
    return {source.secret_key_ref.name for source in sources(spec) if source is not None}


def literal(spec: PhoneWebhookSpec) -> CallbackUrls:
    """The URLs of a spec that names no Secret for them."""
    return CallbackUrls(spec.status_callback_url, spec.up_callback_url)


def resolve(
    spec: PhoneWebhookSpec, namespace: str, secrets: Mapping[str, SecretData | None]
) -> CallbackUrls | CredentialProblem:
    """The URLs to send, with those named by a Secret's key read from `secrets` (by name; None: the
    Secret does not exist). A problem says which Secret and key, never the value."""
    urls: list[str | None] = [spec.status_callback_url, spec.up_callback_url]
    for index, source in enumerate(sources(spec)):
        if source is None:
            continue
        ref, field = source.secret_key_ref, FROM_FIELDS[index]
        where = f"Secret {namespace}/{ref.name} named in spec.{field}"
        secret = secrets.get(ref.name)
        if secret is None:
            return CredentialProblem("CallbackUrlSecretNotFound", f"{where} was not found")
        value = secret.data.get(ref.key)
        if value is None:
            return CredentialProblem("CallbackUrlKeyNotFound", f"{where} has no key {ref.key}")
        value = value.strip()
        if not _is_http_url(value):
            return CredentialProblem(
                "InvalidCallbackUrl",
                f"The value of key {ref.key} in {where} is not an http(s) URL with a host "
                "(the value is not shown: it may carry a token)",
            )
        urls[index] = value
    return CallbackUrls(urls[0], urls[1])


def _is_http_url(value: str) -> bool:
    try:
        parts = urlsplit(value)
        return parts.scheme in ("http", "https") and bool(parts.hostname) and value.isprintable()
    except ValueError:  # an invalid port or IPv6 address
        return False


def _path_shown(path: str) -> bool:
    """Whether a path may be shown: only an empty one or '/'. Receivers put tokens in paths too (Slack's
    /services/T000/B000/XXXX), and no rule tells a token from a route."""
    return path in ("", "/")


def carries_token(url: str) -> bool:
    """Whether a URL has a path, a query string or user-info: where receivers put the token that
    authenticates CAMS (import writes such URLs into Secrets when asked)."""
    parts = urlsplit(url)
    return bool(parts.query) or "@" in parts.netloc or not _path_shown(parts.path)


def redact(url: str) -> str:
    """A URL as status may show it: scheme, host and port; user-info, path, query string and fragment,
    where tokens travel, read 'redacted'."""
    if not url:
        return url
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return REDACTED  # not a URL we can take apart: show none of it
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{REDACTED}@{host}" if "@" in parts.netloc else host
    if port is not None:
        netloc += f":{port}"
    path = parts.path if _path_shown(parts.path) else f"/{REDACTED}"
    query = REDACTED if parts.query else ""
    fragment = REDACTED if parts.fragment else ""
    return urlunsplit((parts.scheme, netloc, path, query, fragment))
