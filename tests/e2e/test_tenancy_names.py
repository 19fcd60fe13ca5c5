"""A tenant names another namespace's Secret through a path in a Secret's name (issue 28), on the real API
server: today's CRDs refuse it; objects stored under 0.2.0's CRDs are refused by the operator without
reading the Secret; and the operator's own client, given such a name directly, asks for one Secret of the
tenant's namespace only."""

from __future__ import annotations

import json
from functools import partial
from typing import Any

import pytest

from cams_webhook_operator.kube import client as kube_client
from cams_webhook_operator.kube.api import KubeApi
from tests.releases import file_at, previous_release

from .harness import REPO, Kubectl, wait_for
from .manifests import cams_account, phone_webhook, secret
from .teams import Teams, shared_key_secret

CRD_NAMES = [
    f"{plural}.camswebhook.io" for plural in ("phonewebhooks", "camsaccounts", "clustercamsaccounts")
]
TOKEN_URL = "https://a-private.example.com/in?token=a-team-token-77"


def test_a_secret_name_that_is_a_path_reaches_no_other_namespace(teams: Teams) -> None:
    """The three routes of issue 28, each naming another namespace's Secret through `../`: today's CRDs
    refuse them; stored as 0.2.0's CRDs allowed, the operator refuses them without reading the Secret, and
    CAMS never hears of the numbers."""
    kubectl, team_b = teams.kubectl, teams.team_b
    manifests = _what_team_b_would_steal(teams)
    hostile = [m for m in manifests if "../" in m]  # the object of the account route names it validly
    assert len(hostile) == 3
    # Today's CRDs refuse every route, saying what a name may be.
    for manifest in hostile:
        refused = kubectl.apply(manifest, check=False)
        assert refused.returncode != 0
        assert "must be the name of a Secret" in refused.stderr, refused.stderr
    _store_under_the_previous_crds(kubectl, manifests, probe=hostile[0].replace('"stolen"', '"not-stored"'))

    teams.wait(team_b, "b-steals-a-key", "Stalled", "InvalidName")
    teams.wait(team_b, "b-steals-a-url", "Stalled", "InvalidName")
    stalled = teams.wait(team_b, "b-steals-platform-key", "Stalled", "AccountInvalid")
    assert "credentials.secretRef.name must be the name of a Secret" in stalled["message"]
    account = kubectl.json("get", "camsaccount", "stolen", "-n", team_b)
    ready = next(c for c in account["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidName")
    assert teams.simulator.get("/_simulator/calls") == [], "CAMS heard nothing: no update, no read"
    assert TOKEN_URL not in teams.operator.output()

    # CRD validation ratcheting keeps them readable and writable as long as the bad name is left alone;
    # a new bad value is refused.
    kubectl.run("label", "phonewebhook", "b-steals-a-key", "-n", team_b, "reviewed=true")
    changed = kubectl.run(
        "patch", "phonewebhook", "b-steals-a-key", "-n", team_b, "--type=merge",
        "-p", json.dumps({"spec": {"credentialsSecretRef": {"name": "../other"}}}), check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "must be the name of a Secret" in changed.stderr


def _what_team_b_would_steal(teams: Teams) -> list[str]:
    """Team A's key, the platform's shared key and team A's URL with its token, each in a Secret; team B's
    own real key (so that only the name stands between it and team A's URL). Returns team B's manifests:
    an account and three objects, one route each."""
    team_a, team_b = teams.team_a, teams.team_b
    teams.apply(shared_key_secret("a-key", team_a))
    teams.apply(shared_key_secret("shared-key", teams.ops))
    teams.apply(secret("a-hooks", team_a, inbound=TOKEN_URL))
    teams.apply(shared_key_secret("b-key", team_b))
    stolen_account = cams_account(
        "stolen", team_b, credentials={"secretRef": {"name": f"../../{teams.ops}/secrets/shared-key"}}
    )
    a_hooks = {"secretKeyRef": {"name": f"../../{team_a}/secrets/a-hooks", "key": "inbound"}}
    routes: dict[str, tuple[str, dict[str, Any]]] = {
        "b-steals-a-key": ("6590000021", {"credentialsSecretRef": {"name": f"../../{team_a}/secrets/a-key"}}),
        "b-steals-platform-key": ("6590000022", {"accountRef": {"kind": "CamsAccount", "name": "stolen"}}),
        "b-steals-a-url": (
            "6590000023",
            {"credentialsSecretRef": {"name": "b-key"}, "upCallbackUrlFrom": a_hooks},
        ),
    }
    objects = []
    for name, (number, spec) in routes.items():
        urls: dict[str, Any] = (
            {} if "upCallbackUrlFrom" in spec else {"statusCallbackUrl": f"https://{name}.example.com/status"}
        )
        objects.append(phone_webhook(name, team_b, custSpaceId="space-a", phoneNumber=number, **urls, **spec))
    return [json.dumps(stolen_account), *(json.dumps(o) for o in objects)]


def _store_under_the_previous_crds(kubectl: Kubectl, manifests: list[str], probe: str) -> None:
    """0.2.0's CRDs accepted the manifests: store them so, then put today's CRDs back (as an upgrade does);
    `probe`, a new object that today's CRDs refuse, tells when they are served again."""
    release = previous_release()
    crds = [file_at(release, f"crds/{name}.yaml") for name in CRD_NAMES]
    try:
        for crd in crds:
            kubectl.apply(crd)
        for manifest in manifests:  # until the API server serves the old schema
            wait_for(partial(_accepted, kubectl, manifest), what="0.2.0's schema to accept it")
    finally:
        kubectl.run("apply", "--server-side", "--force-conflicts", "-f", str(REPO / "crds"))
        wait_for(lambda: _refused_by_the_current_crds(kubectl, probe), what="today's schema again")


def _accepted(kubectl: Kubectl, manifest: str) -> bool:
    return kubectl.apply(manifest, check=False).returncode == 0


def _refused_by_the_current_crds(kubectl: Kubectl, manifest: str) -> bool:
    return kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=manifest, check=False).returncode != 0


@pytest.mark.parametrize(
    "name",
    ["../../{victim}/secrets/key", "..", ".", "a/b", "%2e%2e", "..%2f..%2f{victim}%2fsecrets%2fkey"],
)
async def test_a_name_that_holds_a_path_reaches_the_api_server_as_one_segment_and_is_refused(
    kubectl: Kubectl, namespace: str, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Below validation: the operator's own client, given a hostile name directly, asks the real API server
    for exactly one Secret of the tenant's namespace and gets none, or refuses a name of dots only before
    asking (the HTTP client would make it a step up the path)."""
    victim = f"{namespace}-victim"
    kubectl.run("create", "namespace", victim)
    kubectl.apply(json.dumps(shared_key_secret("key", victim)))
    monkeypatch.setenv("KUBECONFIG", str(kubectl.kubeconfig))
    hostile = name.format(victim=victim)
    async with await kube_client.connect() as api:
        try:
            answer: object = await KubeApi(api, namespace=namespace).read_secret(namespace, hostile)
        except kube_client.ApiException as refused:
            answer = refused.status
        except ValueError:
            answer = "refused before asking"
    expected = "refused before asking" if hostile.strip(".") == "" else None
    assert answer in (expected, 400), f"{hostile!r} was answered {answer!r}"  # None: 404, no such Secret
