"""Generate the CustomResourceDefinitions (PhoneWebhook, CamsAccount, ClusterCamsAccount) from the pydantic
models.

`python -m cams_webhook_operator.api.crd` rewrites every committed copy of the CRDs; `--check` exits 1 when
a copy drifted from the models. Pydantic's JSON schema is not a structural CRD schema as it is, so it is
rewritten here: `$ref`s inlined, titles dropped, `X | None` turned into a plain optional property,
`additionalProperties: false` dropped (the API server prunes unknown fields and kubectl's strict field
validation reports them; a map's `additionalProperties` schema stays), and `null` defaults dropped.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from cams_webhook_operator.api.accounts import AccountStatus, CamsAccountSpec, ClusterCamsAccountSpec
from cams_webhook_operator.api.models import (
    ACCOUNT_KIND,
    ACCOUNT_PLURAL,
    CATEGORY,
    CLUSTER_ACCOUNT_KIND,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    VERSION,
    PhoneWebhookSpec,
)
from cams_webhook_operator.api.status_models import PhoneWebhookStatus

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_DIRS = (REPO_ROOT / "crds", REPO_ROOT / "helm" / "cams-webhook-operator" / "crds")
_DROPPED_KEYS = {"title", "additionalProperties"}
_READY = '.status.conditions[?(@.type=="Ready")]'

JsonSchema = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One custom resource of the API and what its CRD says beyond the schema."""

    kind: str
    plural: str
    scope: str
    spec: type[BaseModel]
    status: type[BaseModel]
    description: str
    short_names: tuple[str, ...]
    columns: tuple[JsonSchema, ...]

    @property
    def name(self) -> str:
        return f"{self.plural}.{GROUP}"


_ACCOUNT_COLUMNS: tuple[JsonSchema, ...] = (
    {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
    {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Spaces", "type": "string", "jsonPath": ".status.spaces", "priority": 1},
    {"name": "Message", "type": "string", "jsonPath": f"{_READY}.message", "priority": 1},
)
KINDS = (
    Kind(
        kind=KIND,
        plural=PLURAL,
        scope="Namespaced",
        spec=PhoneWebhookSpec,
        status=PhoneWebhookStatus,
        description="The webhooks (status-report URL, inbound-message URL and delivery flags) of one Alibaba "
        "Cloud CAMS phone number, applied with UpdatePhoneWebhook.",
        short_names=(SHORT_NAME,),
        columns=(
            # Why an object is not Ready shows by default (REASON); for an Observe object REASON says whether
            # CAMS holds its spec (Observed, Differs, NotFound). CAMS's code and the rest are wide.
            {"name": "Phone", "type": "string", "jsonPath": ".spec.phoneNumber"},
            {"name": "Mode", "type": "string", "jsonPath": ".spec.managementMode"},
            {"name": "Ready", "type": "string", "jsonPath": f"{_READY}.status"},
            {"name": "Reason", "type": "string", "jsonPath": f"{_READY}.reason"},
            {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
            {"name": "Code", "type": "string", "jsonPath": ".status.code", "priority": 1},
            {"name": "Space", "type": "string", "jsonPath": ".spec.custSpaceId", "priority": 1},
            {"name": "Quality", "type": "string", "jsonPath": ".status.live.qualityRating", "priority": 1},
            {"name": "Status", "type": "string", "jsonPath": ".status.live.numberStatus", "priority": 1},
            {"name": "Message", "type": "string", "jsonPath": f"{_READY}.message", "priority": 1},
        ),
    ),
    Kind(
        kind=ACCOUNT_KIND,
        plural=ACCOUNT_PLURAL,
        scope="Namespaced",
        spec=CamsAccountSpec,
        status=AccountStatus,
        description="An Alibaba Cloud account's credentials for the CAMS calls of the PhoneWebhooks of this "
        "namespace, optionally limited to some spaces.",
        short_names=("camsacct",),
        columns=_ACCOUNT_COLUMNS,
    ),
    Kind(
        kind=CLUSTER_ACCOUNT_KIND,
        plural=CLUSTER_ACCOUNT_PLURAL,
        scope="Cluster",
        spec=ClusterCamsAccountSpec,
        status=AccountStatus,
        description="An Alibaba Cloud account that the platform team makes available to chosen namespaces, "
        "optionally limited to some spaces; the only way a PhoneWebhook can use the operator's own identity.",
        short_names=("ccamsacct",),
        columns=(
            {"name": "Credentials", "type": "string", "jsonPath": ".status.credentials"},
            *_ACCOUNT_COLUMNS,
            {"name": "Namespaces", "type": "string", "jsonPath": ".status.namespaces", "priority": 1},
        ),
    ),
)


_EXCLUSIVE_BOUNDS = {"exclusiveMinimum": "minimum", "exclusiveMaximum": "maximum"}


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Rewrite one pydantic JSON-schema node into an OpenAPI v3 structural-schema node."""
    if isinstance(node, list):
        return [_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    any_of = node.get("anyOf")
    if any_of is not None:
        non_null = [branch for branch in any_of if branch.get("type") != "null"]
        if len(non_null) != 1:
            raise ValueError(f"only `X | None` unions map to a CRD schema, got {any_of}")
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        return _structural({**non_null[0], **rest}, defs)
    out: JsonSchema = {}
    for key, value in node.items():
        # additionalProperties stays only where it is a schema: the values of a map (matchLabels).
        droppable = key != "additionalProperties" or not isinstance(value, dict)
        if (key in _DROPPED_KEYS and droppable) or key == "$defs" or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key in _EXCLUSIVE_BOUNDS and not isinstance(value, bool):
            # JSON Schema 2020-12 (pydantic) gives the bound; OpenAPI v3.0 (a CRD) a flag beside it.
            out[_EXCLUSIVE_BOUNDS[key]], out[key] = value, True
        else:
            out[key] = _structural(value, defs)
    return out


def _schema_of(model: type[BaseModel]) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: JsonSchema = _structural(raw, raw.get("$defs", {}))
    schema.pop("default", None)
    return schema


def _status_schema(kind: Kind) -> JsonSchema:
    schema = _schema_of(kind.status)
    # A new object gets status.observedGeneration -1 from the API server, so kstatus reads it as
    # InProgress (generation 1 != -1) until the operator has processed it, never as Current.
    schema["default"] = {"observedGeneration": -1}
    return schema


def build_crd(kind: Kind) -> JsonSchema:
    """The CustomResourceDefinition object, as a dict ready to be dumped to YAML."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": kind.name, "labels": {"app.kubernetes.io/name": "cams-webhook-operator"}},
        "spec": {
            "group": GROUP,
            "scope": kind.scope,
            "names": {
                "kind": kind.kind,
                "listKind": f"{kind.kind}List",
                "plural": kind.plural,
                "singular": kind.kind.lower(),
                "shortNames": list(kind.short_names),
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(kind.columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": kind.description,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": _schema_of(kind.spec),
                                "status": _status_schema(kind),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd(kind: Kind) -> str:
    header = f"# Generated from the pydantic models of {GROUP}/{VERSION} {kind.kind}; do not edit.\n"
    header += "# Regenerate with: python -m cams_webhook_operator.api.crd\n"
    return header + yaml.safe_dump(build_crd(kind), sort_keys=False, width=120)


def rendered() -> dict[Path, str]:
    """Every committed CRD file and what it must hold."""
    return {directory / f"{kind.name}.yaml": render_crd(kind) for directory in CRD_DIRS for kind in KINDS}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed CRD differs from the models"
    )
    args = parser.parse_args(argv)
    wanted = rendered()
    stale = [path for path, text in wanted.items() if not path.exists() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(REPO_ROOT)} is out of date: run python -m cams_webhook_operator.api.crd"
            )
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted[path])
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
