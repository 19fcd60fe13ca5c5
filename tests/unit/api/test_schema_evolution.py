"""The CRDs grow only: whatever the previous release stored stays valid, and nothing it served goes away.

Compared with the previous release's CRDs (from its commit, docs/releases.md): no version removed and the
same storage version; every field it had is still there with its type; nothing newly required; enums,
lengths and ranges not narrowed; patterns unchanged. A new validation rule on a field that existed then
may refuse what was stored then: each one is listed below with why it cannot, or what happens to such
objects (docs/upgrading.md says it to users)."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from cams_webhook_operator.api import names
from tests.releases import REPO, file_at, git, previous_release

_NAMES_ARE_NAMES = (
    "refuses a name that is not a Kubernetes name (such as '../other/secrets/key'), which 0.2.0 allowed: an "
    "object stored then stays readable by CRD validation ratcheting and is refused by the operator "
    "(reason InvalidName, or AccountInvalid for an object using such an account), never resolved; "
    "tests/e2e/test_tenancy.py"
)
_SUBDOMAIN = f"self.matches('{names.DNS_SUBDOMAIN_PATTERN}')"
_KEY = f"self.matches('{names.SECRET_KEY_PATTERN}') && self != '.' && self != '..'"
_SECRET_REFS = (
    ".spec.credentialsSecretRef",
    ".spec.statusCallbackUrlFrom.secretKeyRef",
    ".spec.upCallbackUrlFrom.secretKeyRef",
    ".spec.credentials.secretRef",  # CamsAccount and ClusterCamsAccount
)
# (path, rule) -> why objects stored by the previous release are not refused by it.
REVIEWED_RULES = {
    (
        ".spec",
        "!(has(self.accountRef) && has(self.credentialsSecretRef))",
    ): "accountRef is new: never set then",
    (
        ".spec",
        "!(has(self.statusCallbackUrl) && has(self.statusCallbackUrlFrom))",
    ): "the ...From field is new",
    (".spec", "!(has(self.upCallbackUrl) && has(self.upCallbackUrlFrom))"): "the ...From field is new",
    (".spec.statusCallbackUrl", "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')"): (
        "refuses a URL with user:password@, which 0.1.0 allowed: a stored one is kept by CRD validation "
        "ratcheting (unchanged values are not validated again) and still applied, with a Warning Event; "
        "docs/upgrading.md and tests/e2e/test_upgrade.py"
    ),
    (".spec.upCallbackUrl", "!self.matches('^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]*@')"): "as statusCallbackUrl",
    **{
        (path, rule): _NAMES_ARE_NAMES
        for path, rule in [
            *((f"{ref}.name", _SUBDOMAIN) for ref in _SECRET_REFS),
            *((f"{ref}.key", _KEY) for ref in _SECRET_REFS if "From" in ref),
            (".spec.accountRef.name", _SUBDOMAIN),
            (".spec.credentials.secretRef.namespace", f"self.matches('{names.DNS_LABEL_PATTERN}')"),
        ]
    },
}
NARROWER_IF_LOWER = ("maxLength", "maximum", "maxItems", "maxProperties")
NARROWER_IF_HIGHER = ("minLength", "minimum", "minItems", "minProperties")


def _previous_crds() -> dict[str, dict[str, Any]]:
    release = previous_release()
    listed = git("ls-tree", "--name-only", release.commit, "crds/").stdout.decode().split()
    assert listed, f"no CRDs at {release.commit}"
    return {path.split("/", 1)[1]: yaml.safe_load(file_at(release, path)) for path in listed}


def _differences(old: dict[str, Any], new: dict[str, Any], path: str = "") -> list[str]:
    found = []
    if old.get("type") != new.get("type"):
        found.append(f"{path}: type {old.get('type')} -> {new.get('type')}")
    if new.get("pattern") is not None and old.get("pattern") != new.get("pattern"):
        found.append(f"{path}: pattern changed")  # dropped is fine: it only allows more
    if "enum" in new and not set(old.get("enum") or new["enum"]) <= set(new["enum"]):
        found.append(f"{path}: enum lost {set(old['enum']) - set(new['enum'])}")
    if "enum" in new and "enum" not in old:
        found.append(f"{path}: an enum where any value was allowed")
    for key in NARROWER_IF_LOWER:
        if key in new and new[key] < old.get(key, float("inf")):
            found.append(f"{path}: {key} {old.get(key)} -> {new[key]}")
    for key in NARROWER_IF_HIGHER:
        if key in new and new[key] > old.get(key, float("-inf")):
            found.append(f"{path}: {key} {old.get(key)} -> {new[key]}")
    if newly_required := set(new.get("required") or ()) - set(old.get("required") or ()):
        found.append(f"{path}: newly required {sorted(newly_required)}")
    old_rules = {rule["rule"] for rule in old.get("x-kubernetes-validations") or ()}
    for rule in new.get("x-kubernetes-validations") or ():
        if rule["rule"] not in old_rules and (path, rule["rule"]) not in REVIEWED_RULES:
            found.append(f"{path}: a new rule that may refuse stored objects: {rule['rule']}")
    for name, sub in (old.get("properties") or {}).items():
        if name not in (new.get("properties") or {}):
            found.append(f"{path}.{name}: removed")
        else:
            found += _differences(sub, new["properties"][name], f"{path}.{name}")
    if "items" in old:
        found += _differences(old["items"], new.get("items") or {}, f"{path}[]")
    return found


@pytest.mark.parametrize("name", sorted(_previous_crds()))
def test_the_crd_only_grows(name: str) -> None:
    old = _previous_crds()[name]
    new = yaml.safe_load((REPO / "crds" / name).read_text())
    assert (new["spec"]["group"], new["spec"]["scope"], new["spec"]["names"]["plural"]) == (
        old["spec"]["group"],
        old["spec"]["scope"],
        old["spec"]["names"]["plural"],
    )
    versions = {v["name"]: v for v in new["spec"]["versions"]}
    for version in old["spec"]["versions"]:
        assert versions.get(version["name"], {}).get("served"), (
            f"{version['name']} is no longer served: migrate the stored objects first (docs/upgrading.md)"
        )
        assert versions[version["name"]]["storage"] == version["storage"], "the storage version moved"
        differences = _differences(
            version["schema"]["openAPIV3Schema"], versions[version["name"]]["schema"]["openAPIV3Schema"]
        )
        assert not differences, "\n".join(differences)


def _rules_at(schema: dict[str, Any], path: str) -> set[str]:
    node = schema
    for name in path.strip(".").split("."):
        node = (node.get("properties") or {}).get(name) or {}
    return {r["rule"] for r in node.get("x-kubernetes-validations") or ()}


def test_every_reviewed_rule_is_still_in_the_crd() -> None:
    """A rule reviewed here and gone from the CRDs is a stale entry: the list says only what is true."""
    schemas = [
        yaml.safe_load(crd.read_text())["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for crd in sorted((REPO / "crds").glob("*.yaml"))
    ]
    for path, rule in REVIEWED_RULES:
        assert any(rule in _rules_at(schema, path) for schema in schemas), (path, rule)
