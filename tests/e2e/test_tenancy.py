"""Two teams on one Alibaba account, on the real API server: each team's numbers converge, and every way
of reaching the other team's numbers is refused with its own reason before any CAMS call (the simulator's
call log is the witness)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from cams_webhook_operator.kube import client as kube_client
from cams_webhook_operator.kube.api import KubeApi
from tests.releases import file_at, previous_release

from .harness import (
    DEFAULT_ACCOUNT_NAME,
    REPO,
    Kubectl,
    OperatorProcess,
    SimulatorProcess,
    simulator_in,
    start_operator,
    wait_for,
)

SHARED_SECRET = "e2e-shared-secret-Hq30"
SIMULATOR_CONFIG = {
    "qps": 10,
    "accounts": [
        {
            "accessKeyId": "LTAI-shared",
            "accessKeySecret": SHARED_SECRET,
            "uid": "7",
            "spaces": [{"id": "space-a"}, {"id": "space-b"}],
        },
        {  # a second AccessKey of the shared Alibaba account (the same uid: one quota)
            "accessKeyId": "LTAI-shared-second",
            "accessKeySecret": "second-key-secret",
            "uid": "7",
            "spaces": [{"id": "space-a"}, {"id": "space-b"}],
        },
        {  # another Alibaba account: its key is real, but it does not own space-a or space-b
            "accessKeyId": "LTAI-other-account",
            "accessKeySecret": "other-account-secret",
            "uid": "8",
            "spaces": [{"id": "space-other"}],
        },
    ],
}
DEFAULT_MARK = "camswebhook.io/default-account"
CRD_NAMES = [
    f"{plural}.camswebhook.io" for plural in ("phonewebhooks", "camsaccounts", "clustercamsaccounts")
]


@dataclass
class Teams:
    kubectl: Kubectl
    ops: str  # the operator's namespace, where the platform team keeps the shared key
    team_a: str
    team_b: str
    suffix: str
    simulator: SimulatorProcess
    operator: OperatorProcess

    def apply(self, obj: dict[str, Any]) -> None:
        self.kubectl.apply(json.dumps(obj))

    def phone_webhook(self, namespace: str, name: str, space: str, number: str, **spec: Any) -> None:
        self.apply(
            {
                "apiVersion": "camswebhook.io/v1alpha1",
                "kind": "PhoneWebhook",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {
                    "custSpaceId": space,
                    "phoneNumber": number,
                    "statusCallbackUrl": f"https://{name}.example.com/status",
                    **spec,
                },
            }
        )

    def condition(self, namespace: str, name: str, kind: str) -> dict[str, Any] | None:
        obj = self.kubectl.json("get", "phonewebhook", name, "-n", namespace)
        return next((c for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)

    def wait(self, namespace: str, name: str, kind: str, reason: str) -> dict[str, Any]:
        def holds() -> dict[str, Any] | None:
            found = self.condition(namespace, name, kind)
            return found if found and found["status"] == "True" and found["reason"] == reason else None

        return wait_for(holds, timeout=30, what=f"{kind}={reason} on {namespace}/{name}")

    def events(self, namespace: str, name: str) -> list[str]:
        items = self.kubectl.json(
            "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
        )["items"]
        return [event["reason"] for event in items]


def _secret(
    name: str, namespace: str, key_id: str = "LTAI-shared", secret: str = SHARED_SECRET
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "stringData": {"accessKeyId": key_id, "accessKeySecret": secret},
    }


def _cluster_account(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "ClusterCamsAccount",
        "metadata": {"name": name},
        "spec": spec,
    }


@pytest.fixture
def teams(kubectl: Kubectl, namespace: str, tmp_path: Path) -> Iterator[Teams]:
    suffix = namespace.removeprefix("e2e-")
    ops, team_a, team_b = namespace, f"team-a-{suffix}", f"team-b-{suffix}"
    kubectl.run("create", "namespace", team_a)
    kubectl.run("create", "namespace", team_b)
    kubectl.run("label", "namespace", team_a, f"tenant=a-{suffix}")
    simulator = simulator_in(tmp_path, SIMULATOR_CONFIG)
    # For this run there is no default account: objects that name none must be refused.
    kubectl.run("annotate", "clustercamsaccount", DEFAULT_ACCOUNT_NAME, f"{DEFAULT_MARK}-")
    operator = start_operator(
        kubeconfig=kubectl.kubeconfig,
        endpoint=simulator.endpoint,
        namespace=[team_a, team_b],
        log=tmp_path / "operator.log",
        # The operator's own identity is not the shared account: nothing may fall back to it.
        extra_env={
            "CAMS_OPERATOR_NAMESPACE": ops,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAI-operator-own",
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "operator-own-secret",
        },
    )
    running = Teams(kubectl, ops, team_a, team_b, suffix, simulator, operator)
    try:
        yield running
        running.operator.scrape()
    finally:
        operator.stop()
        simulator.stop()
        kubectl.run("annotate", "clustercamsaccount", DEFAULT_ACCOUNT_NAME, f"{DEFAULT_MARK}=true")
        kubectl.run("delete", "clustercamsaccount", "-l", f"e2e-run={suffix}", check=False)
    assert SHARED_SECRET not in operator.output()


def test_two_teams_on_one_account_reach_only_their_own_numbers(teams: Teams) -> None:
    kubectl, suffix = teams.kubectl, teams.suffix
    # The platform team: the shared key in the operator's namespace, one ClusterCamsAccount per team.
    teams.apply(_secret("shared-key", teams.ops))
    shared_key = {"secretRef": {"name": "shared-key", "namespace": teams.ops}}
    for account in (
        _cluster_account(
            f"for-a-{suffix}",
            credentials=shared_key,
            spaces=["space-a"],
            namespaceSelector={"matchLabels": {"tenant": f"a-{suffix}"}},
        ),
        _cluster_account(
            f"for-b-{suffix}", credentials=shared_key, spaces=["space-b"], namespaces=[teams.team_b]
        ),
        _cluster_account(
            f"misplaced-{suffix}",
            credentials={"secretRef": {"name": "shared-key", "namespace": teams.team_a}},
            namespaces=[teams.team_a],
        ),
    ):
        account["metadata"]["labels"] = {"e2e-run": suffix}
        teams.apply(account)
    # Team B also brings an account of its own, for its own space.
    teams.apply(_secret("b-key", teams.team_b))
    teams.apply(
        {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "CamsAccount",
            "metadata": {"name": "own", "namespace": teams.team_b},
            "spec": {"credentials": {"secretRef": {"name": "b-key"}}, "spaces": ["space-b"]},
        }
    )
    a_account = {"kind": "ClusterCamsAccount", "name": f"for-a-{suffix}"}
    b_account = {"kind": "ClusterCamsAccount", "name": f"for-b-{suffix}"}
    own_account = {"kind": "CamsAccount", "name": "own"}
    missing_account = {"kind": "CamsAccount", "name": "nope"}

    # Each team's own numbers converge.
    teams.phone_webhook(teams.team_a, "a-line", "space-a", "6590000001", accountRef=a_account)
    teams.phone_webhook(teams.team_b, "b-line", "space-b", "6590000002", accountRef=b_account)
    teams.phone_webhook(teams.team_b, "b-own-line", "space-b", "6590000003", accountRef=own_account)
    for namespace, name in ((teams.team_a, "a-line"), (teams.team_b, "b-line"), (teams.team_b, "b-own-line")):
        teams.wait(namespace, name, "Ready", "Applied")

    # Every route to team A's numbers from team B, refused with its reason.
    refused: dict[str, tuple[str, dict[str, Any], str]] = {
        "b-uses-a-account": ("AccountNotAllowed", {"accountRef": a_account}, "6590000011"),
        "b-foreign-space": ("SpaceNotAllowed", {"accountRef": own_account}, "6590000012"),
        "b-no-account": ("NoAccount", {}, "6590000013"),
        "b-missing-account": ("AccountNotFound", {"accountRef": missing_account}, "6590000014"),
        "b-observes-a": (
            "SpaceNotAllowed",
            {"accountRef": b_account, "managementMode": "Observe"},
            "6590000001",  # team A's number
        ),
    }
    for name, (_, spec, number) in refused.items():
        teams.phone_webhook(teams.team_b, name, "space-a", number, **spec)
    for name, (reason, _, _) in refused.items():
        stalled = teams.wait(teams.team_b, name, "Stalled", reason)
        assert teams.team_a not in stalled["message"], "a refusal never names another team's namespace"
        assert teams.events(teams.team_b, name) == [reason]
    observer = kubectl.json("get", "phonewebhook", "b-observes-a", "-n", teams.team_b)
    assert "live" not in observer["status"], "an observer of a foreign space reads nothing"

    # Observe -> Manage on team A's number: still refused, and team A's webhook is untouched.
    teams.phone_webhook(
        teams.team_b, "b-observes-a", "space-a", "6590000001", accountRef=b_account, managementMode="Manage"
    )
    wait_for(
        lambda: (
            kubectl.json("get", "phonewebhook", "b-observes-a", "-n", teams.team_b)["status"].get(
                "observedGeneration"
            )
            == 2
        ),
        what="the switch to Manage to be decided",
    )
    teams.wait(teams.team_b, "b-observes-a", "Stalled", "SpaceNotAllowed")
    assert teams.simulator.webhook("space-a", "6590000001")["StatusCallbackUrl"] == (  # type: ignore[index]
        "https://a-line.example.com/status"
    )
    for _, _, number in refused.values():
        expected = 1 if number == "6590000001" else 0  # a-line's own call
        assert len(teams.simulator.calls(number)) == expected, number
    reads = [c for c in teams.simulator.get("/_simulator/calls") if c["action"] == "QueryChatappPhoneNumbers"]
    assert sorted(c["params"]["CustSpaceId"] for c in reads) == ["space-a", "space-b"], (
        "one read of each allowed space, proving the shared key before its first claim there; no read of "
        "any space on behalf of a refused object"
    )

    # The accounts say whether their credentials can be used.
    def ready(name: str) -> tuple[str, str] | None:
        conditions = kubectl.json("get", "clustercamsaccount", name).get("status", {}).get("conditions", [])
        found = next((c for c in conditions if c["type"] == "Ready"), None)
        return (found["status"], found["reason"]) if found else None

    wait_for(lambda: ready(f"for-a-{suffix}") == ("True", "CredentialsFound"), what="team A's account Ready")
    wait_for(lambda: ready(f"misplaced-{suffix}") == ("False", "AccountNotReady"), what="misplaced refused")

    # A decision is taken again as soon as a namespace's labels change: team B joins team A's tenancy.
    kubectl.run("label", "namespace", teams.team_b, f"tenant=a-{suffix}")
    teams.wait(teams.team_b, "b-uses-a-account", "Ready", "Applied")
    assert len(teams.simulator.calls("6590000011")) == 1


def _accepted(kubectl: Kubectl, manifest: str) -> bool:
    return kubectl.apply(manifest, check=False).returncode == 0


def _refused_by_the_current_crds(kubectl: Kubectl, manifest: str) -> bool:
    return kubectl.run("apply", "--dry-run=server", "-f", "-", stdin=manifest, check=False).returncode != 0


def test_a_secret_name_that_is_a_path_reaches_no_other_namespace(teams: Teams) -> None:
    """The three routes of issue 28, each naming another namespace's Secret through `../`: today's CRDs
    refuse them; stored as 0.2.0's CRDs allowed, the operator refuses them without reading the Secret, and
    CAMS never hears of the numbers."""
    kubectl, team_a, team_b = teams.kubectl, teams.team_a, teams.team_b
    # What a tenant would want: team A's key, the platform's shared key, team A's URL with its token.
    teams.apply(_secret("a-key", team_a))
    teams.apply(_secret("shared-key", teams.ops))
    token_url = "https://a-private.example.com/in?token=a-team-token-77"
    teams.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "a-hooks", "namespace": team_a},
            "stringData": {"inbound": token_url},
        }
    )
    # Team B's own key is real, so that only the name stands between it and team A's URL.
    teams.apply(_secret("b-key", team_b))
    stolen_account = {
        "apiVersion": "camswebhook.io/v1alpha1",
        "kind": "CamsAccount",
        "metadata": {"name": "stolen", "namespace": team_b},
        "spec": {"credentials": {"secretRef": {"name": f"../../{teams.ops}/secrets/shared-key"}}},
    }
    routes: dict[str, tuple[str, dict[str, Any]]] = {
        "b-steals-a-key": ("6590000021", {"credentialsSecretRef": {"name": f"../../{team_a}/secrets/a-key"}}),
        "b-steals-platform-key": ("6590000022", {"accountRef": {"kind": "CamsAccount", "name": "stolen"}}),
        "b-steals-a-url": (
            "6590000023",
            {
                "credentialsSecretRef": {"name": "b-key"},
                "upCallbackUrlFrom": {
                    "secretKeyRef": {"name": f"../../{team_a}/secrets/a-hooks", "key": "inbound"}
                },
            },
        ),
    }

    def phone_webhook(name: str) -> str:
        number, spec = routes[name]
        body: dict[str, Any] = {"custSpaceId": "space-a", "phoneNumber": number, **spec}
        if "upCallbackUrlFrom" not in spec:
            body["statusCallbackUrl"] = f"https://{name}.example.com/status"
        return json.dumps(
            {
                "apiVersion": "camswebhook.io/v1alpha1",
                "kind": "PhoneWebhook",
                "metadata": {"name": name, "namespace": team_b},
                "spec": body,
            }
        )

    manifests = [json.dumps(stolen_account), *(phone_webhook(name) for name in routes)]
    hostile = [m for m in manifests if "../" in m]  # the object of the account route names it validly
    assert len(hostile) == 3
    # Today's CRDs refuse every route, saying what a name may be.
    for manifest in hostile:
        refused = kubectl.apply(manifest, check=False)
        assert refused.returncode != 0
        assert "must be the name of a Secret" in refused.stderr, refused.stderr

    # 0.2.0's CRDs accepted them: store them so, then put today's CRDs back (as an upgrade does).
    release = previous_release()
    crds = [file_at(release, f"crds/{name}.yaml") for name in CRD_NAMES]
    try:
        for crd in crds:
            kubectl.apply(crd)
        for manifest in manifests:  # until the API server serves the old schema
            wait_for(partial(_accepted, kubectl, manifest), what="0.2.0's schema to accept it")
    finally:
        kubectl.run("apply", "-f", str(REPO / "crds"))
        probe = hostile[0].replace('"stolen"', '"not-stored"')  # a new object: no ratcheting for it
        wait_for(lambda: _refused_by_the_current_crds(kubectl, probe), what="today's schema again")

    teams.wait(team_b, "b-steals-a-key", "Stalled", "InvalidName")
    teams.wait(team_b, "b-steals-a-url", "Stalled", "InvalidName")
    stalled = teams.wait(team_b, "b-steals-platform-key", "Stalled", "AccountInvalid")
    assert "credentials.secretRef.name must be the name of a Secret" in stalled["message"]
    account = kubectl.json("get", "camsaccount", "stolen", "-n", team_b)
    ready = next(c for c in account["status"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidName")
    assert teams.simulator.get("/_simulator/calls") == [], "CAMS heard nothing: no update, no read"
    assert token_url not in teams.operator.output()

    # CRD validation ratcheting keeps them readable and writable as long as the bad name is left alone;
    # a new bad value is refused.
    kubectl.run("label", "phonewebhook", "b-steals-a-key", "-n", team_b, "reviewed=true")
    changed = kubectl.run(
        "patch", "phonewebhook", "b-steals-a-key", "-n", team_b, "--type=merge",
        "-p", json.dumps({"spec": {"credentialsSecretRef": {"name": "../other"}}}), check=False,
    )  # fmt: skip
    assert changed.returncode != 0
    assert "must be the name of a Secret" in changed.stderr


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
    kubectl.apply(json.dumps(_secret("key", victim)))
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


def test_a_key_that_does_not_reach_the_space_never_keeps_a_number_from_its_owner(teams: Teams) -> None:
    """Team B names team A's numbers first, with a made-up key and with a real key of another Alibaba
    account: its objects are refused with the reason CAMS gave and hold no claim; team A's objects,
    created after, converge."""
    kubectl, team_a, team_b = teams.kubectl, teams.team_a, teams.team_b
    for name, key_id, secret in (
        ("made-up", "LTAI-made-up", "anything"),
        ("other-account", "LTAI-other-account", "other-account-secret"),
    ):
        teams.apply(_secret(name, team_b, key_id, secret))
    squats = {"squat-made-up": ("6590000031", "made-up"), "squat-other": ("6590000032", "other-account")}
    for name, (number, secret) in squats.items():
        teams.phone_webhook(team_b, name, "space-a", number, credentialsSecretRef={"name": secret})
    made_up = teams.wait(team_b, "squat-made-up", "Stalled", "InvalidCredentials")
    other = teams.wait(team_b, "squat-other", "Stalled", "ResourceNotOwned")
    for refused in (made_up, other):
        assert "space-a" in refused["message"]
        assert team_a not in refused["message"]

    teams.apply(_secret("a-key", team_a))
    for name, (number, _) in squats.items():
        teams.phone_webhook(team_a, f"a-{name}", "space-a", number, credentialsSecretRef={"name": "a-key"})
    for name, (number, _) in squats.items():
        teams.wait(team_a, f"a-{name}", "Ready", "Applied")
        assert teams.simulator.webhook("space-a", number)["StatusCallbackUrl"] == (  # type: ignore[index]
            f"https://a-{name}.example.com/status"
        )
        assert [c["accessKeyId"] for c in teams.simulator.calls(number)] == ["LTAI-shared"]
    claims = kubectl.json("get", "leases", "-n", teams.ops, "-l", "camswebhook.io/claim=true")["items"]
    holders = sorted(lease["spec"]["holderIdentity"] for lease in claims)
    assert holders == sorted(f"{team_a}/a-{name}" for name in squats)
    still = teams.condition(team_b, "squat-made-up", "Stalled")
    assert still is not None
    assert still["reason"] == "InvalidCredentials"


def test_a_tenant_saying_a_tiny_qps_slows_only_itself(teams: Teams) -> None:
    """The slow-qps attack of issue 28: team B knows the shared key's ID (not its secret) and also has a
    real second key of the same Alibaba account; both its accounts say `qps: 0.01`. Team A's 100 objects on
    the shared key still converge at the account's quota, with no call throttled."""
    kubectl, suffix, team_a, team_b = teams.kubectl, teams.suffix, teams.team_a, teams.team_b
    teams.apply(_secret("shared-key", teams.ops))
    account = _cluster_account(
        f"for-a-{suffix}",
        credentials={"secretRef": {"name": "shared-key", "namespace": teams.ops}},
        namespaceSelector={"matchLabels": {"tenant": f"a-{suffix}"}},
    )
    account["metadata"]["labels"] = {"e2e-run": suffix}
    teams.apply(account)
    for name, key_id, secret in (
        ("spoofed", "LTAI-shared", "not-the-secret"),
        ("second", "LTAI-shared-second", "second-key-secret"),
    ):
        teams.apply(_secret(name, team_b, key_id, secret))
        teams.apply(
            {
                "apiVersion": "camswebhook.io/v1alpha1",
                "kind": "CamsAccount",
                "metadata": {"name": f"slow-{name}", "namespace": team_b},
                "spec": {"credentials": {"secretRef": {"name": name}}, "qps": 0.01},
            }
        )
    for i, name in enumerate(("spoofed", "second", "second", "second")):
        ref = {"kind": "CamsAccount", "name": f"slow-{name}"}
        teams.phone_webhook(team_b, f"b-{i}", "space-b", f"659000005{i}", accountRef=ref)
    teams.wait(team_b, "b-0", "Stalled", "InvalidCredentials")
    teams.wait(team_b, "b-1", "Ready", "Applied")  # the first of its share: the others wait 100 s each

    numbers = [f"65910{i:05d}" for i in range(100)]
    objects = [
        {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {"name": f"a-{i}", "namespace": team_a},
            "spec": {
                "custSpaceId": "space-a",
                "phoneNumber": number,
                "statusCallbackUrl": f"https://a.example.com/{i}",
                "accountRef": {"kind": "ClusterCamsAccount", "name": f"for-a-{suffix}"},
            },
        }
        for i, number in enumerate(numbers)
    ]
    kubectl.apply(json.dumps({"apiVersion": "v1", "kind": "List", "items": objects}))

    def ready(obj: dict[str, Any]) -> bool:
        conditions = obj.get("status", {}).get("conditions", [])
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def converged() -> bool:
        items = kubectl.json("get", "phonewebhooks", "-n", team_a)["items"]
        return len(items) == 100 and all(ready(o) for o in items)

    wait_for(converged, timeout=60, what="team A's 100 objects Ready")
    calls = [c for c in teams.simulator.get("/_simulator/calls") if c["action"] == "UpdatePhoneWebhook"]
    a_times = [c["at"] for c in calls if c["params"].get("PhoneNumber") in set(numbers)]
    assert len(a_times) == 100
    span = max(a_times) - min(a_times)
    assert span <= 1.1 * 100 / 10, f"team A's 100 calls took {span:.1f} s"
    assert not [c for c in calls if c["code"] != "OK"], "no call throttled or refused"
    assert len([c for c in calls if c["params"].get("PhoneNumber", "").startswith("659000005")]) == 1, (
        "team B's own share: one call, the next one 100 s later"
    )
