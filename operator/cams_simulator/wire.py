"""A request as the simulator receives it, and a refusal as CAMS (or its gateway) answers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


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
