"""A request as the simulator receives it, and a refusal as CAMS (or its gateway) answers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

# How an injected failure (failRate) is answered: CAMS's usual 503, or one of the answers real clusters
# meet that are not the textbook one.
Failure = Literal["ServiceUnavailable", "error-in-200", "lower-case", "gateway-html", "truncated"]
Body = dict[str, Any] | bytes  # JSON, or the raw bytes of an answer that is not JSON


class CamsError(Exception):
    """A refusal: its HTTP status, Code and Message, `extra` fields of the body, and `headers` of the answer
    (x-acs-retry-after on flow control)."""

    def __init__(
        self,
        http_status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        **extra: str,
    ) -> None:
        super().__init__(code)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.extra = extra


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""


class InjectedFailureError(Exception):
    """A call the configured failRate chose to fail."""


def failed_answer(failure: Failure, request_id: str) -> tuple[int, Body, dict[str, str]]:
    """The HTTP status, body and headers of an injected failure."""
    message = "The request has failed due to a temporary failure."
    if failure == "error-in-200":  # CAMS puts its errors in HTTP 200 answers too
        return 200, {"RequestId": request_id, "Code": "ServiceUnavailable", "Message": message}, {}
    if failure == "lower-case":  # some of Alibaba's gateways name the fields so
        return 503, {"requestId": request_id, "code": "ServiceUnavailable", "message": message}, {}
    if failure == "gateway-html":  # a load balancer's (or a proxy's) own error page
        page = b"<html><head><title>502 Bad Gateway</title></head><body>Bad Gateway</body></html>"
        return 502, page, {"content-type": "text/html"}
    if failure == "truncated":  # the answer cut short
        return 200, b'{"RequestId": "' + request_id.encode() + b'", "Co', {"content-type": "application/json"}
    return 503, {"RequestId": request_id, "Code": "ServiceUnavailable", "Message": message}, {}
