"""Two teams on one Alibaba account, on the real API server: each team's numbers converge, and every way
of reaching the other team's numbers is refused with its own reason before any CAMS call (the simulator's
call log is the witness). The routes through a Secret's name are in test_tenancy_names.py."""

from __future__ import annotations

from typing import Any

from .harness import wait_for
from .manifests import cams_account, phone_webhook
from .teams import Teams, shared_key_secret

A_NUMBER = "6590000001"


def test_two_teams_on_one_account_reach_only_their_own_numbers(teams: Teams) -> None:
    refs = _platform_and_team_accounts(teams)
    # Each team's own numbers converge.
    teams.phone_webhook(teams.team_a, "a-line", "space-a", A_NUMBER, accountRef=refs["for-a"])
    teams.phone_webhook(teams.team_b, "b-line", "space-b", "6590000002", accountRef=refs["for-b"])
    teams.phone_webhook(teams.team_b, "b-own-line", "space-b", "6590000003", accountRef=refs["own"])
    for namespace, name in ((teams.team_a, "a-line"), (teams.team_b, "b-line"), (teams.team_b, "b-own-line")):
        teams.wait(namespace, name, "Ready", "Applied")

    refused = _every_route_to_team_a_is_refused(teams, refs)
    _an_observer_turned_manager_is_still_refused(teams, refs)
    for _, _, number in refused.values():
        expected = 1 if number == A_NUMBER else 0  # a-line's own call
        assert len(teams.simulator.calls(number)) == expected, number
    assert sorted(c["params"]["CustSpaceId"] for c in teams.simulator.reads()) == ["space-a", "space-b"], (
        "one read of each allowed space, proving the shared key before its first claim there; no read of "
        "any space on behalf of a refused object"
    )
    _the_accounts_say_whether_their_credentials_can_be_used(teams)

    # A decision is taken again as soon as a namespace's labels change: team B joins team A's tenancy.
    teams.kubectl.run("label", "namespace", teams.team_b, f"tenant=a-{teams.suffix}")
    teams.wait(teams.team_b, "b-uses-a-account", "Ready", "Applied")
    assert len(teams.simulator.calls("6590000011")) == 1


def _platform_and_team_accounts(teams: Teams) -> dict[str, dict[str, str]]:
    """The platform team: the shared key in the operator's namespace, one ClusterCamsAccount per team (and
    one that names a Secret outside the operator's namespace); team B's own account for its own space.
    Returns the accountRefs, by short name."""
    suffix = teams.suffix
    teams.apply(shared_key_secret("shared-key", teams.ops))
    shared_key = {"secretRef": {"name": "shared-key", "namespace": teams.ops}}
    teams.apply_cluster_account(
        f"for-a-{suffix}",
        credentials=shared_key,
        spaces=["space-a"],
        namespaceSelector={"matchLabels": {"tenant": f"a-{suffix}"}},
    )
    teams.apply_cluster_account(
        f"for-b-{suffix}", credentials=shared_key, spaces=["space-b"], namespaces=[teams.team_b]
    )
    teams.apply_cluster_account(
        f"misplaced-{suffix}",
        credentials={"secretRef": {"name": "shared-key", "namespace": teams.team_a}},
        namespaces=[teams.team_a],
    )
    teams.apply(shared_key_secret("b-key", teams.team_b))
    teams.apply(
        cams_account("own", teams.team_b, credentials={"secretRef": {"name": "b-key"}}, spaces=["space-b"])
    )
    return {
        "for-a": {"kind": "ClusterCamsAccount", "name": f"for-a-{suffix}"},
        "for-b": {"kind": "ClusterCamsAccount", "name": f"for-b-{suffix}"},
        "own": {"kind": "CamsAccount", "name": "own"},
        "missing": {"kind": "CamsAccount", "name": "nope"},
    }


def _every_route_to_team_a_is_refused(
    teams: Teams, refs: dict[str, dict[str, str]]
) -> dict[str, tuple[str, dict[str, Any], str]]:
    """Each route from team B to team A's space, refused with its reason and one Event, naming no other
    team's namespace. Returns the routes: name -> (reason, spec, number)."""
    refused: dict[str, tuple[str, dict[str, Any], str]] = {
        "b-uses-a-account": ("AccountNotAllowed", {"accountRef": refs["for-a"]}, "6590000011"),
        "b-foreign-space": ("SpaceNotAllowed", {"accountRef": refs["own"]}, "6590000012"),
        "b-no-account": ("NoAccount", {}, "6590000013"),
        "b-missing-account": ("AccountNotFound", {"accountRef": refs["missing"]}, "6590000014"),
        "b-observes-a": (
            "SpaceNotAllowed",
            {"accountRef": refs["for-b"], "managementMode": "Observe"},
            A_NUMBER,
        ),
    }
    for name, (_, spec, number) in refused.items():
        teams.phone_webhook(teams.team_b, name, "space-a", number, **spec)
    for name, (reason, _, _) in refused.items():
        stalled = teams.wait(teams.team_b, name, "Stalled", reason)
        assert teams.team_a not in stalled["message"], "a refusal never names another team's namespace"
        assert teams.events(teams.team_b, name) == [reason]
    assert "live" not in teams.get(teams.team_b, "b-observes-a")["status"], (
        "an observer of a foreign space reads nothing"
    )
    return refused


def _an_observer_turned_manager_is_still_refused(teams: Teams, refs: dict[str, dict[str, str]]) -> None:
    """Observe -> Manage on team A's number: still refused, and team A's webhook is untouched."""
    teams.phone_webhook(
        teams.team_b, "b-observes-a", "space-a", A_NUMBER, accountRef=refs["for-b"], managementMode="Manage"
    )
    wait_for(
        lambda: teams.get(teams.team_b, "b-observes-a")["status"].get("observedGeneration") == 2,
        what="the switch to Manage to be decided",
    )
    teams.wait(teams.team_b, "b-observes-a", "Stalled", "SpaceNotAllowed")
    assert (teams.simulator.webhook("space-a", A_NUMBER) or {}).get("StatusCallbackUrl") == (
        "https://a-line.example.com/status"
    )


def _the_accounts_say_whether_their_credentials_can_be_used(teams: Teams) -> None:
    def ready(name: str) -> tuple[str, str] | None:
        account = teams.kubectl.json("get", "clustercamsaccount", name)
        found = next(
            (c for c in (account.get("status") or {}).get("conditions", []) if c["type"] == "Ready"), None
        )
        return (found["status"], found["reason"]) if found else None

    suffix = teams.suffix
    wait_for(lambda: ready(f"for-a-{suffix}") == ("True", "CredentialsFound"), what="team A's account Ready")
    wait_for(lambda: ready(f"misplaced-{suffix}") == ("False", "AccountNotReady"), what="misplaced refused")
    # kubectl's wide columns say what an account admits, "all" where its spec leaves a list out (issue 32)
    columns = "-o=custom-columns=NAME:.metadata.name,SPACES:.status.spaces,NAMESPACES:.status.namespaces"
    listed = teams.kubectl.run("get", "ccamsacct", columns, "-l", f"e2e-run={suffix}", "--no-headers").stdout
    rows = {line.split()[0]: line.split()[1:] for line in listed.splitlines()}
    assert rows[f"misplaced-{suffix}"] == ["all", teams.team_a]
    assert rows[f"for-b-{suffix}"] == ["space-b", teams.team_b]
    wide = teams.kubectl.run("get", "ccamsacct", f"misplaced-{suffix}", "-o", "wide").stdout.splitlines()
    at = wide[0].index("SPACES")  # columns by position: CREDENTIALS and MESSAGE hold spaces
    assert wide[1][at:].split()[0] == "all"


def test_a_key_that_does_not_reach_the_space_never_keeps_a_number_from_its_owner(teams: Teams) -> None:
    """Team B names team A's numbers first, with a made-up key and with a real key of another Alibaba
    account: its objects are refused with the reason CAMS gave and hold no claim; team A's objects,
    created after, converge."""
    kubectl, team_a, team_b = teams.kubectl, teams.team_a, teams.team_b
    for name, key_id, secret in (
        ("made-up", "LTAI-made-up", "anything"),
        ("other-account", "LTAI-other-account", "other-account-secret"),
    ):
        teams.apply(shared_key_secret(name, team_b, key_id, secret))
    squats = {"squat-made-up": ("6590000031", "made-up"), "squat-other": ("6590000032", "other-account")}
    for name, (number, secret) in squats.items():
        teams.phone_webhook(team_b, name, "space-a", number, credentialsSecretRef={"name": secret})
    made_up = teams.wait(team_b, "squat-made-up", "Stalled", "InvalidCredentials")
    other = teams.wait(team_b, "squat-other", "Stalled", "ResourceNotOwned")
    for refused in (made_up, other):
        assert "space-a" in refused["message"]
        assert team_a not in refused["message"]

    teams.apply(shared_key_secret("a-key", team_a))
    for name, (number, _) in squats.items():
        teams.phone_webhook(team_a, f"a-{name}", "space-a", number, credentialsSecretRef={"name": "a-key"})
    for name, (number, _) in squats.items():
        teams.wait(team_a, f"a-{name}", "Ready", "Applied")
        assert (teams.simulator.webhook("space-a", number) or {}).get("StatusCallbackUrl") == (
            f"https://a-{name}.example.com/status"
        )
        assert [c["accessKeyId"] for c in teams.simulator.calls(number)] == ["LTAI-shared"]
    assert kubectl.claim_holders(teams.ops) == sorted(f"{team_a}/a-{name}" for name in squats)
    still = teams.condition(team_b, "squat-made-up", "Stalled")
    assert still is not None
    assert still["reason"] == "InvalidCredentials"


def test_a_tenant_saying_a_tiny_qps_slows_only_itself(teams: Teams) -> None:
    """The slow-qps attack of issue 28: team B knows the shared key's ID (not its secret) and also has a
    real second key of the same Alibaba account; both its accounts say `qps: 0.01`. Team A's 100 objects on
    the shared key still converge at the account's quota, with no call throttled."""
    _team_b_says_a_tiny_qps(teams)
    numbers = [f"65910{i:05d}" for i in range(100)]
    account_ref = {"kind": "ClusterCamsAccount", "name": f"for-a-{teams.suffix}"}
    status_url = "https://a.example.com/{}"
    teams.kubectl.apply_objects(
        *(
            phone_webhook(
                f"a-{i}",
                teams.team_a,
                custSpaceId="space-a",
                phoneNumber=number,
                statusCallbackUrl=status_url.format(i),
                accountRef=account_ref,
            )
            for i, number in enumerate(numbers)
        )
    )
    wait_for(
        lambda: teams.kubectl.all_ready(teams.team_a, 100), timeout=60, what="team A's 100 objects Ready"
    )
    calls = teams.simulator.updates()
    a_times = [c["at"] for c in calls if c["params"].get("PhoneNumber") in set(numbers)]
    assert len(a_times) == 100
    span = max(a_times) - min(a_times)
    assert span <= 1.1 * 100 / 10, f"team A's 100 calls took {span:.1f} s"
    assert not [c for c in calls if c["code"] != "OK"], "no call throttled or refused"
    assert len([c for c in calls if c["params"].get("PhoneNumber", "").startswith("659000005")]) == 1, (
        "team B's own share: one call, the next one 100 s later"
    )


def _team_b_says_a_tiny_qps(teams: Teams) -> None:
    """Team A's account on the shared key; team B's two accounts at qps 0.01 (one with the shared key's ID
    and a wrong secret, one with a real second key) and four objects on them."""
    teams.apply(shared_key_secret("shared-key", teams.ops))
    teams.apply_cluster_account(
        f"for-a-{teams.suffix}",
        credentials={"secretRef": {"name": "shared-key", "namespace": teams.ops}},
        namespaceSelector={"matchLabels": {"tenant": f"a-{teams.suffix}"}},
    )
    for name, key_id, secret in (
        ("spoofed", "LTAI-shared", "not-the-secret"),
        ("second", "LTAI-shared-second", "second-key-secret"),
    ):
        teams.apply(shared_key_secret(name, teams.team_b, key_id, secret))
        teams.apply(
            cams_account(f"slow-{name}", teams.team_b, credentials={"secretRef": {"name": name}}, qps=0.01)
        )
    for i, name in enumerate(("spoofed", "second", "second", "second")):
        ref = {"kind": "CamsAccount", "name": f"slow-{name}"}
        teams.phone_webhook(teams.team_b, f"b-{i}", "space-b", f"659000005{i}", accountRef=ref)
    teams.wait(teams.team_b, "b-0", "Stalled", "InvalidCredentials")
    teams.wait(teams.team_b, "b-1", "Ready", "Applied")  # the first of its share: the others wait 100 s each
