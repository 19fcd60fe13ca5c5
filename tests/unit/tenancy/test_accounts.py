"""Who may act on which number: every route to an account, allowed or refused, as a table."""

from __future__ import annotations

from typing import Any

import pytest

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.tenancy.accounts import Account, AccountKey, Choice, choose
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Quota

DEFAULT = {"camswebhook.io/default-account": "true"}


def _account(
    kind: str, name: str, spec: dict[str, Any], namespace: str = "", annotations: Any = None
) -> Account:
    meta = {"name": name, "uid": f"u-{name}", "generation": 1, "annotations": annotations or {}}
    if namespace:
        meta["namespace"] = namespace
    return Account.of({"metadata": meta, "spec": spec}, kind)


TEAM_A_SECRET = {"credentials": {"secretRef": {"name": "team-a-key"}}}
ACCOUNTS = {
    a.key: a
    for a in [
        _account("CamsAccount", "team-a", {**TEAM_A_SECRET, "spaces": ["space-a"]}, namespace="team-a"),
        _account("CamsAccount", "anything", TEAM_A_SECRET, namespace="team-a"),
        _account(
            "ClusterCamsAccount",
            "shared",
            {
                "credentials": {"secretRef": {"name": "shared-key", "namespace": "cams-system"}},
                "namespaces": ["team-a"],
            },
        ),
        _account(
            "ClusterCamsAccount",
            "labelled",
            {
                "credentials": {"operatorIdentity": {}},
                "namespaceSelector": {"matchLabels": {"cams.example.com/tier": "gold"}},
                "qps": 20,
            },
        ),
    ]
}
WITH_DEFAULT = {
    **ACCOUNTS,
    **{
        a.key: a
        for a in [
            _account(
                "ClusterCamsAccount",
                "fallback",
                {"credentials": {"operatorIdentity": {}}, "namespaces": ["team-a"]},
                annotations=DEFAULT,
            )
        ]
    },
}


def _spec(space: str = "space-a", **extra: Any) -> PhoneWebhookSpec:
    return PhoneWebhookSpec.model_validate({"custSpaceId": space, "phoneNumber": "8613800001234", **extra})


def _ref(kind: str, name: str) -> dict[str, Any]:
    return {"accountRef": {"kind": kind, "name": name}}


CASES: list[tuple[str, str, dict[str, Any], Any, dict[str, str], object]] = [
    (
        "own-secret-shorthand",
        "team-b",
        {"credentialsSecretRef": {"name": "mine"}},
        ACCOUNTS,
        {},
        Choice(None, ("team-b", "mine")),
    ),
    (
        "own-account-own-space",
        "team-a",
        _ref("CamsAccount", "team-a"),
        ACCOUNTS,
        {},
        Choice(AccountKey("CamsAccount", "team-a", "team-a"), ("team-a", "team-a-key")),
    ),
    (
        "own-account-foreign-space",
        "team-a",
        {**_ref("CamsAccount", "team-a")},
        ACCOUNTS,
        {},
        "SpaceNotAllowed",
    ),
    ("other-teams-account", "team-b", _ref("CamsAccount", "team-a"), ACCOUNTS, {}, "AccountNotFound"),
    (
        "missing-cluster-account",
        "team-a",
        _ref("ClusterCamsAccount", "nope"),
        ACCOUNTS,
        {},
        "AccountNotFound",
    ),
    (
        "cluster-account-listed-namespace",
        "team-a",
        _ref("ClusterCamsAccount", "shared"),
        ACCOUNTS,
        {},
        Choice(
            AccountKey("ClusterCamsAccount", "", "shared"),
            ("cams-system", "shared-key"),
            quota=Quota("ClusterCamsAccount shared", None, shared=True),
        ),
    ),
    (
        "cluster-account-unlisted-namespace",
        "team-b",
        _ref("ClusterCamsAccount", "shared"),
        ACCOUNTS,
        {},
        "AccountNotAllowed",
    ),
    (
        "cluster-account-selected-by-label",
        "team-c",
        _ref("ClusterCamsAccount", "labelled"),
        ACCOUNTS,
        {"cams.example.com/tier": "gold"},
        Choice(
            AccountKey("ClusterCamsAccount", "", "labelled"),
            None,
            operator_identity=True,
            quota=Quota("ClusterCamsAccount labelled", 20, shared=True),
        ),
    ),
    (
        "cluster-account-label-missing",
        "team-c",
        _ref("ClusterCamsAccount", "labelled"),
        ACCOUNTS,
        {},
        "AccountNotAllowed",
    ),
    ("no-account-no-default", "team-a", {}, ACCOUNTS, {}, "NoAccount"),
    (
        "no-account-default",
        "team-a",
        {},
        WITH_DEFAULT,
        {},
        Choice(
            AccountKey("ClusterCamsAccount", "", "fallback"),
            None,
            operator_identity=True,
            quota=Quota("ClusterCamsAccount fallback", None, shared=True),
        ),
    ),
    ("no-account-default-not-for-this-namespace", "team-b", {}, WITH_DEFAULT, {}, "AccountNotAllowed"),
]


@pytest.mark.parametrize(
    ("namespace", "spec", "accounts", "labels", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_choose(
    namespace: str, spec: dict[str, Any], accounts: Any, labels: dict[str, str], expected: object
) -> None:
    space = "space-b" if "foreign-space" in str(spec) or expected == "SpaceNotAllowed" else "space-a"
    choice = choose(namespace=namespace, spec=_spec(space, **spec), accounts=accounts, labels=labels)
    if isinstance(expected, str):
        assert isinstance(choice, CredentialProblem)
        assert choice.reason == expected, choice.message
    else:
        assert choice == expected


def test_two_defaults_are_refused_with_what_to_do() -> None:
    second = _account(
        "ClusterCamsAccount", "another", {"credentials": {"operatorIdentity": {}}}, annotations=DEFAULT
    )
    problem = choose(
        namespace="team-a", spec=_spec(), accounts={**WITH_DEFAULT, second.key: second}, labels={}
    )
    assert isinstance(problem, CredentialProblem)
    assert problem.reason == "NoAccount"
    assert "another, fallback" in problem.message


def test_refusals_never_name_another_namespace() -> None:
    for namespace, spec in (
        ("team-b", _ref("CamsAccount", "team-a")),
        ("team-b", _ref("ClusterCamsAccount", "shared")),
    ):
        problem = choose(namespace=namespace, spec=_spec(**spec), accounts=ACCOUNTS, labels={})
        assert isinstance(problem, CredentialProblem)
        assert "team-a" not in problem.message.replace("CamsAccount team-b/team-a", ""), problem.message


def test_an_invalid_account_is_refused_with_its_problem() -> None:
    broken = _account(
        "CamsAccount",
        "broken",
        {"credentials": {"secretRef": {"name": "k"}}, "spaces": []},
        namespace="team-a",
    )
    problem = choose(
        namespace="team-a",
        spec=_spec(**_ref("CamsAccount", "broken")),
        accounts={broken.key: broken},
        labels={},
    )
    assert isinstance(problem, CredentialProblem)
    assert (problem.reason, "at least one" in problem.message) == ("AccountInvalid", True)


@pytest.mark.parametrize("operator", ["NotIn", "DoesNotExist"])
def test_a_namespace_whose_labels_are_not_known_yet_is_admitted_by_no_selector(operator: str) -> None:
    """The object's event can come before its new namespace's: a selector that excludes would admit it
    on labels taken as empty. Until the labels are known it waits (transient), then the selector decides."""
    requirement = {
        "key": "tier",
        "operator": operator,
        **({"values": ["banned"]} if operator == "NotIn" else {}),
    }
    excluding = _account(
        "ClusterCamsAccount",
        "excluding",
        {"credentials": {"operatorIdentity": {}}, "namespaceSelector": {"matchExpressions": [requirement]}},
    )
    accounts = {excluding.key: excluding}
    spec = PhoneWebhookSpec.model_validate(
        {"custSpaceId": "s", "phoneNumber": "8613800001234", **_ref("ClusterCamsAccount", "excluding")}
    )
    waiting = choose(namespace="new", spec=spec, accounts=accounts, labels=None)
    assert isinstance(waiting, CredentialProblem)
    assert (waiting.reason, waiting.transient) == ("AccountNotAllowed", True)
    assert "not known yet" in waiting.message
    admitted = choose(namespace="new", spec=spec, accounts=accounts, labels={})
    assert isinstance(admitted, Choice)
    refused = choose(namespace="new", spec=spec, accounts=accounts, labels={"tier": "banned"})
    assert isinstance(refused, CredentialProblem)
    assert not refused.transient


def test_a_missing_account_says_where_the_accounts_are_listed() -> None:
    for spec, listed in (
        (_ref("CamsAccount", "nope"), "kubectl get camsaccounts -n team-a"),
        (_ref("ClusterCamsAccount", "nope"), "kubectl get clustercamsaccounts"),
    ):
        problem = choose(namespace="team-a", spec=_spec(**spec), accounts=ACCOUNTS, labels={})
        assert isinstance(problem, CredentialProblem)
        assert (problem.reason, listed in problem.message) == ("AccountNotFound", True), problem.message
