"""A name is a name, not a path: a tenant who writes `../../victim/secrets/key` where a Secret's name goes
must never make the operator read another namespace's Secret (issue 28, the security review's finding 1).

Every route a user can name an object by is tried with every hostile name: the models refuse it with a
message that says what a name may be, the generated CRD carries the same rule, an object stored before the
rule existed is refused without reading anything, and a path built from such a name (should one ever get
past validation) reaches the server as one segment."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from cams_webhook_operator.api import PhoneWebhookSpec
from cams_webhook_operator.api.accounts import CamsAccountSpec, ClusterCamsAccountSpec
from cams_webhook_operator.api.crd import KINDS, build_crd
from cams_webhook_operator.api.names import problem_of
from cams_webhook_operator.kube.api import KubeApi
from tests.unit.fake_api_server import FakeApiServer, api_client
from tests.unit.fakes import (
    FakeCams,
    FakeKube,
    make_controller,
    make_settings,
    pwh_body,
    settle,
)

# The names of the issue, each with why it is hostile.
HOSTILE = {
    "../x": "a step up the path",
    "a/b": "a path of two segments",
    "..": "the parent",
    ".": "the current directory",
    "%2e%2e": "the parent, percent-encoded",
    "Upper": "upper case, which no Kubernetes name has",
    "a" * 254: "one character longer than any name",
    "": "empty",
    "../../victim/secrets/shared-key": "the attack of the review",
}
# Upper case is allowed in a Secret's key (as in a container's env valueFrom.secretKeyRef).
HOSTILE_KEYS = {name: why for name, why in HOSTILE.items() if name != "Upper"}
VALID = {"custSpaceId": "space", "phoneNumber": "8613800001234"}


def _with(path: str, value: str) -> dict[str, Any]:
    """`value` at the dotted `path`, the rest of the reference filled in validly."""
    fill = {"accountRef": {"kind": "CamsAccount"}, "secretKeyRef": {"name": "hooks", "key": "inbound"}}
    root: dict[str, Any] = {}
    node = root
    *parents, leaf = path.split(".")
    for part in parents:
        node = node.setdefault(part, dict(fill.get(part, {})))
    node[leaf] = value
    return root


# (model, its valid remainder, the field's path): every field that names a Kubernetes object.
ROUTES: list[tuple[type[BaseModel], dict[str, Any], str]] = [
    (PhoneWebhookSpec, VALID, "credentialsSecretRef.name"),
    (PhoneWebhookSpec, VALID, "statusCallbackUrlFrom.secretKeyRef.name"),
    (PhoneWebhookSpec, VALID, "upCallbackUrlFrom.secretKeyRef.name"),
    (PhoneWebhookSpec, VALID, "upCallbackUrlFrom.secretKeyRef.key"),
    (PhoneWebhookSpec, VALID, "accountRef.name"),
    (CamsAccountSpec, {}, "credentials.secretRef.name"),
    (
        ClusterCamsAccountSpec,
        {"credentials": {"secretRef": {"namespace": "ops"}}},
        "credentials.secretRef.name",
    ),
    (
        ClusterCamsAccountSpec,
        {"credentials": {"secretRef": {"name": "k"}}},
        "credentials.secretRef.namespace",
    ),
]


def _cases() -> list[Any]:
    cases = []
    for model, valid, path in ROUTES:
        names = HOSTILE_KEYS if path.endswith(".key") else HOSTILE
        if path.endswith(".namespace"):  # a namespace is a DNS label: a '.' is refused too
            names = {**names, "a.b": "a dot, which a namespace's name never has", "a" * 64: "too long"}
        for name in names:
            cases.append(pytest.param(model, valid, path, name, id=f"{model.__name__}.{path}={name[:20]!r}"))
    return cases


def _merged(valid: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(valid)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merged(merged[key], value)
        else:
            merged[key] = value
    return merged


@pytest.mark.parametrize(("model", "valid", "path", "name"), _cases())
def test_a_hostile_name_is_refused_by_the_model_as_an_invalid_name(
    model: type[BaseModel], valid: dict[str, Any], path: str, name: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(_merged(valid, _with(path, name)))
    reason, message = problem_of(refused.value)
    assert reason == "InvalidName"
    assert message.startswith(f"{path} must be ")
    assert "as Kubernetes allows it" in message


@pytest.mark.parametrize(("model", "valid", "path"), [pytest.param(*r, id=r[2]) for r in ROUTES])
def test_a_valid_name_passes_on_every_route(model: type[BaseModel], valid: dict[str, Any], path: str) -> None:
    longest = 63 if path.endswith("namespace") else 253
    for name in ("k", "team-a" if path.endswith("namespace") else "team-a.credentials", "a" * longest):
        model.model_validate(_merged(valid, _with(path, name)))


def _schema_at(kind_index: int, path: str) -> dict[str, Any]:
    crd = build_crd(KINDS[kind_index])
    node = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    for part in path.split("."):
        node = node["properties"][part]
    return node  # type: ignore[no-any-return]


def _crd_admits(schema: dict[str, Any], value: str) -> bool:
    """The CRD's own rules for a string, evaluated here: its lengths and each CEL rule of the forms this
    project writes (`self.matches('...')`, optionally `&& self != '...'`)."""
    if not schema["minLength"] <= len(value) <= schema["maxLength"]:
        return False
    for rule in schema["x-kubernetes-validations"]:
        pattern = re.fullmatch(r"self\.matches\('([^']*)'\)((?: && self != '[^']*')*)", rule["rule"])
        assert pattern, f"a rule this test cannot evaluate: {rule['rule']}"
        excluded = re.findall(r"self != '([^']*)'", pattern.group(2))
        if not re.fullmatch(pattern.group(1), value) or value in excluded:
            return False
    return True


_KIND_OF = {PhoneWebhookSpec: 0, CamsAccountSpec: 1, ClusterCamsAccountSpec: 2}


@pytest.mark.parametrize(("model", "valid", "path", "name"), _cases())
def test_the_crd_refuses_what_the_model_refuses_with_the_same_message(
    model: type[BaseModel], valid: dict[str, Any], path: str, name: str
) -> None:
    schema = _schema_at(_KIND_OF[model], path)
    assert not _crd_admits(schema, name)
    with pytest.raises(ValidationError) as refused:
        model.model_validate(_merged(valid, _with(path, name)))
    assert refused.value.errors()[0]["msg"] in {r["message"] for r in schema["x-kubernetes-validations"]}


# --- an object stored before the rule: refused, never resolved ----------------------------------------


@pytest.fixture
def kube() -> FakeKube:
    return FakeKube()


def _stalled(kube: FakeKube, name: str) -> tuple[str, str]:
    stalled = next(c for c in kube.statuses[name].conditions if c.type == "Stalled")
    assert stalled.status == "True"
    return stalled.reason, stalled.message


SPEC_ROUTES: dict[str, Callable[[str], dict[str, Any]]] = {
    "credentialsSecretRef": lambda name: {"credentialsSecretRef": {"name": name}},
    "statusCallbackUrlFrom": lambda name: {
        "statusCallbackUrlFrom": {"secretKeyRef": {"name": name, "key": "k"}}
    },
    "upCallbackUrlFrom": lambda name: {"upCallbackUrlFrom": {"secretKeyRef": {"name": name, "key": "k"}}},
    "upCallbackUrlFrom-key": lambda name: {
        "upCallbackUrlFrom": {"secretKeyRef": {"name": "hooks", "key": name}}
    },
    "accountRef": lambda name: {"accountRef": {"kind": "CamsAccount", "name": name}},
}


@pytest.mark.looptime
@pytest.mark.parametrize("route", sorted(SPEC_ROUTES))
@pytest.mark.parametrize("name", ["../../victim/secrets/shared-key", "..", "a/b"])
async def test_an_object_stored_with_a_hostile_name_is_refused_without_reading_or_calling(
    kube: FakeKube, route: str, name: str
) -> None:
    kube.secrets[("victim", "shared-key")] = {"accessKeyId": "LTAI-victim", "accessKeySecret": "S"}
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    controller.intake.observe(pwh_body(**SPEC_ROUTES[route](name)))
    await settle(controller, lambda: "pwh" in kube.statuses)
    reason, message = _stalled(kube, "pwh")
    assert reason == "InvalidName"
    assert "as Kubernetes allows it" in message
    assert (kube.secret_reads, cams.calls, cams.queries, kube.records) == (0, [], [], {})
    assert [r for _, r, _ in kube.events] == ["InvalidName"]


@pytest.mark.looptime
async def test_an_account_stored_with_a_hostile_secret_name_refuses_its_objects_and_says_why(
    kube: FakeKube,
) -> None:
    cams = FakeCams()
    controller = make_controller(settings=make_settings(), cams=cams, kube=kube)
    hostile = {
        "metadata": {"name": "team", "namespace": "ns", "uid": "uid-team", "generation": 1},
        "spec": {"credentials": {"secretRef": {"name": "../../victim/secrets/shared-key"}}},
    }
    controller.intake.observe_account(hostile, "CamsAccount")
    controller.intake.observe(pwh_body(accountRef={"kind": "CamsAccount", "name": "team"}))
    account_key = ("CamsAccount", "ns", "team")
    await settle(controller, lambda: "pwh" in kube.statuses and account_key in kube.account_statuses)
    reason, message = _stalled(kube, "pwh")
    assert reason == "AccountInvalid"
    assert "credentials.secretRef.name must be the name of a Secret" in message
    account = kube.account_statuses[account_key].conditions[0]
    assert (account.status, account.reason) == ("False", "InvalidName")
    assert (kube.secret_reads, cams.calls, kube.records) == (0, [], {})


# --- paths: the official client encodes every name whole; a name of dots only never goes out -------------


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("../../victim/secrets/k", "..%2F..%2Fvictim%2Fsecrets%2Fk"),
        ("a/b", "a%2Fb"),
        ("%2e%2e", "%252e%252e"),
        ("a b?c#d", "a%20b%3Fc%23d"),
        ("plain-name.x", "plain-name.x"),
    ],
)
async def test_a_hostile_name_reaches_the_server_as_one_segment_of_the_tenants_path(
    name: str, encoded: str
) -> None:
    """What the server receives, byte for byte: the client must not decode or normalise the path."""
    server = FakeApiServer()
    async with api_client(server) as api:
        assert await KubeApi(api).read_secret("tenant", name) is None  # 404
    assert [path for _, path, _ in server.requests] == [f"/api/v1/namespaces/tenant/secrets/{encoded}"]


@pytest.mark.parametrize("name", ["..", ".", ""])
async def test_a_name_that_no_encoding_keeps_a_name_is_refused_before_any_request(name: str) -> None:
    server = FakeApiServer()
    async with api_client(server) as api:
        with pytest.raises(ValueError, match="not a name"):
            await KubeApi(api).read_secret("tenant", name)
        with pytest.raises(ValueError, match="not a name"):
            await KubeApi(api).read_secret(name, "key")
    assert server.requests == []
