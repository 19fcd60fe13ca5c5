"""A request as the simulator receives it, and a refusal as CAMS (or its gateway) answers it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


class CamsError(Exception):
    def __init__(self, http_status: int, code: str, message: str, **extra: str) -> None:
        super().__init__(code)
        self.http_status = http_status
        self.code = code
        self.message = message
        self.extra = extra


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]  # names in lower case
    body: bytes = b""
