"""Which proxy a call to CAMS or STS goes through, from the standard variables (HTTPS_PROXY, HTTP_PROXY,
NO_PROXY, in either case), read as the official Python SDK's blocking client (requests) reads them, a
leading dot aside: NO_PROXY
is a comma-separated list of `*`, host names and domain suffixes (`.example.com` or `example.com`: a suffix
of the host), `host:port`, IPv4 addresses and IPv4 CIDR ranges. One rule for every call the operator makes
to Alibaba Cloud, whichever client makes it (the official async client reads no NO_PROXY at all). The
metadata server is never proxied (cams/instance_identity.py)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from yarl import URL


@dataclass(frozen=True)
class Proxies:
    https: str | None = None  # for https:// URLs: a CONNECT tunnel through it
    http: str | None = None  # for http:// URLs
    no_proxy: tuple[str, ...] = ()

    @classmethod
    def of(cls, *, https: str | None, http: str | None, no_proxy: str | None) -> Proxies:
        entries = tuple(e for e in (no_proxy or "").replace(" ", "").split(",") if e)
        return cls(https or None, http or None, entries)

    def for_url(self, url: str) -> str | None:
        """The proxy to reach `url` through, or None to connect directly."""
        parsed = URL(url, encoded=True)
        proxy = self.https if parsed.scheme == "https" else self.http if parsed.scheme == "http" else None
        if proxy is None or parsed.host is None or self._bypassed(parsed.host, parsed.port):
            return None
        return proxy

    def _bypassed(self, host: str, port: int | None) -> bool:
        if "*" in self.no_proxy:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            with_port = f"{host}:{port}" if port is not None else host
            return any(host.endswith(e.lstrip(".")) or with_port.endswith(e) for e in self.no_proxy)
        return any(_covers(entry, address) for entry in self.no_proxy)


def _covers(entry: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """An IP entry of NO_PROXY: the address itself, or a CIDR range holding it."""
    try:
        return address in ipaddress.ip_network(entry, strict=False)
    except ValueError:
        return False
