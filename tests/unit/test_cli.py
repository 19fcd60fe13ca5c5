"""The command's pure helpers."""

from __future__ import annotations

import pytest

from cams_webhook_operator.cli import bracketed


@pytest.mark.parametrize(
    ("url", "served"),
    [
        ("http://10.1.2.3:8080/healthz", "http://10.1.2.3:8080/healthz"),
        ("http://fd00:10::1a:8080/healthz", "http://[fd00:10::1a]:8080/healthz"),
        ("http://[fd00::1]:8080/healthz", "http://[fd00::1]:8080/healthz"),
        ("http://0.0.0.0:8080/healthz", "http://0.0.0.0:8080/healthz"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ],
    ids=["ipv4-pod-ip", "ipv6-pod-ip", "already-bracketed", "any", "no-path"],
)
def test_an_ipv6_pod_ip_in_the_liveness_url_gets_its_brackets(url: str, served: str) -> None:
    assert bracketed(url) == served
