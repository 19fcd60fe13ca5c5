"""Alibaba Cloud credentials: an AccessKey pair, or an STS triple with its security token."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Credentials:
    access_key_id: str
    # repr=False: a Credentials object must never print its secret or token in a log or a traceback.
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)

    @property
    def is_temporary(self) -> bool:
        """STS credentials are issued anew on every refresh; their key ID does not name an account."""
        return self.security_token is not None
