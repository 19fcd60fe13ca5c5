"""Egress through a proxy, as many clusters reach CAMS's one public endpoint: the simulator serves HTTPS
like CAMS (a certificate the operator trusts through SSL_CERT_FILE), the operator gets HTTPS_PROXY and a
NO_PROXY that leaves the API server direct, and every call to CAMS and STS goes through a CONNECT tunnel
of the local proxy while the API server's calls do not."""

from __future__ import annotations

from pathlib import Path

import yaml

from .connect_proxy import ConnectProxy
from .harness import Kubectl, self_signed, simulator_in, start_operator, wait_for
from .manifests import is_ready, one_account, phone_webhook

KEY, SECRET = "LTAI-proxied", "proxied-secret-Uw2"


def test_calls_to_cams_and_sts_go_through_the_proxy_and_the_api_server_does_not(
    kubectl: Kubectl, namespace: str, tmp_path: Path
) -> None:
    cert, key = self_signed(tmp_path)
    simulator = simulator_in(tmp_path, one_account(KEY, SECRET, "proxied"), tls=(cert, key))
    # By name, not by address: NO_PROXY below names 127.0.0.1, where the API server listens.
    endpoint = f"https://localhost:{simulator.port}"
    proxy = ConnectProxy().start()
    operator = None
    try:
        operator = start_operator(
            kubeconfig=kubectl.kubeconfig,
            endpoint=endpoint,
            namespace=namespace,
            log=tmp_path / "operator.log",
            extra_env={
                "ALIBABA_CLOUD_ACCESS_KEY_ID": KEY,
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET": SECRET,
                "ALIBABA_CLOUD_STS_ENDPOINT": endpoint,
                "CAMS_ALLOW_HTTP": "false",
                "SSL_CERT_FILE": str(cert),
                "HTTPS_PROXY": proxy.url,
                "NO_PROXY": "127.0.0.1",
            },
        )
        body = phone_webhook(
            "proxied", namespace, custSpaceId="proxied", phoneNumber="8613800003201", httpFlag=True
        )
        kubectl.apply(yaml.safe_dump(body))
        wait_for(
            lambda: is_ready(kubectl.json("get", "phonewebhook", "proxied", "-n", namespace)),
            timeout=60,
            what=f"Ready through the proxy:\n{operator.output()}",
        )
        actions = {c["action"] for c in simulator.get("/_simulator/calls")}
        assert {"GetCallerIdentity", "QueryChatappPhoneNumbers", "UpdatePhoneWebhook"} <= actions
        assert set(proxy.tunnels) == {f"localhost:{simulator.port}"}, (
            f"CAMS and STS through the proxy, the API server (127.0.0.1) not: {proxy.tunnels}"
        )
        operator.scrape()
    finally:
        if operator is not None:
            operator.stop()
        proxy.stop()
        simulator.stop()
