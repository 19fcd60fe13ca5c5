"""Which proxy a call to Alibaba Cloud goes through: the standard variables, NO_PROXY read as the official
Python SDK's blocking client (requests) reads it."""

from __future__ import annotations

import pytest

from cams_webhook_operator.cams.proxies import Proxies
from cams_webhook_operator.settings import OperatorSettings

PROXY = "http://proxy.corp:3128"
CAMS = "https://cams.ap-southeast-1.aliyuncs.com/?Action=UpdatePhoneWebhook"


@pytest.mark.parametrize(
    ("no_proxy", "url", "through"),
    [
        ("", CAMS, PROXY),
        ("*", CAMS, None),
        ("aliyuncs.com", CAMS, None),
        (".aliyuncs.com", CAMS, None),
        ("sts.aliyuncs.com", CAMS, PROXY),
        ("cams.ap-southeast-1.aliyuncs.com:443", "https://cams.ap-southeast-1.aliyuncs.com:443/", None),
        ("10.0.0.0/8, 127.0.0.1", "https://10.96.0.1:443/api", None),
        ("10.0.0.0/8", "https://192.168.1.5/api", PROXY),
        ("127.0.0.1", "https://127.0.0.1:6443/", None),
        ("127.0.0.1", "https://localhost:8443/", PROXY),
    ],
)
def test_no_proxy_entries(no_proxy: str, url: str, through: str | None) -> None:
    assert Proxies.of(https=PROXY, http=None, no_proxy=no_proxy).for_url(url) == through


def test_http_urls_use_http_proxy_and_nothing_is_proxied_without_one() -> None:
    proxies = Proxies.of(https=PROXY, http="http://plain:8080", no_proxy=None)
    assert proxies.for_url("http://sim.local:8080/") == "http://plain:8080"
    assert Proxies.of(https=None, http=None, no_proxy=None).for_url(CAMS) is None


def test_the_standard_variables_are_read_in_either_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", PROXY)
    monkeypatch.setenv("NO_PROXY", "sts.aliyuncs.com")
    proxies = OperatorSettings().proxies()
    assert proxies.for_url(CAMS) == PROXY
    assert proxies.for_url("https://sts.aliyuncs.com/") is None
