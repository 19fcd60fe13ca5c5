"""Generate the PhoneWebhook CustomResourceDefinition from the pydantic models.

`python -m cams_webhook_operator.api.crd` rewrites every committed copy of the CRD; `--check` exits 1 when
a copy drifted from the models. Pydantic's JSON schema is not a structural CRD schema as it is, so it is
rewritten here: `$ref`s inlined, titles dropped, `X | None` turned into a plain optional property,
`additionalProperties: false` dropped (the API server prunes unknown fields and kubectl's strict field
validation reports them), and `null` defaults dropped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from cams_webhook_operator.api.models import (
    API_VERSION,
    CATEGORY,
    GROUP,
    KIND,
    PLURAL,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    PhoneWebhookSpec,
    PhoneWebhookStatus,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
CRD_PATHS = (
    REPO_ROOT / "crds" / f"{PLURAL}.{GROUP}.yaml",
    REPO_ROOT / "helm" / "cams-webhook-operator" / "crds" / f"{PLURAL}.{GROUP}.yaml",
)
KIND_DESCRIPTION = (
    "The webhooks (status-report URL, inbound-message URL and delivery flags) of one Alibaba Cloud CAMS "
    "phone number, applied with UpdatePhoneWebhook."
)
_DROPPED_KEYS = {"title", "additionalProperties"}

JsonSchema = dict[str, Any]


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
        if key in _DROPPED_KEYS or key == "$defs" or (key == "default" and value is None):
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        else:
            out[key] = _structural(value, defs)
    return out


def _schema_of(model: type[PhoneWebhookSpec] | type[PhoneWebhookStatus]) -> JsonSchema:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    schema: JsonSchema = _structural(raw, raw.get("$defs", {}))
    schema.pop("default", None)
    return schema


def _status_schema() -> JsonSchema:
    schema = _schema_of(PhoneWebhookStatus)
    # A new object gets status.observedGeneration -1 from the API server, so kstatus reads it as
    # InProgress (generation 1 != -1) until the operator has processed it, never as Current.
    schema["default"] = {"observedGeneration": -1}
    return schema


def build_crd() -> JsonSchema:
    """The CustomResourceDefinition object, as a dict ready to be dumped to YAML."""
    spec_schema = _schema_of(PhoneWebhookSpec)
    ready = '.status.conditions[?(@.type=="Ready")]'
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{PLURAL}.{GROUP}",
            "labels": {"app.kubernetes.io/name": "cams-webhook-operator"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": [SHORT_NAME],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {"name": "Phone", "type": "string", "jsonPath": ".spec.phoneNumber"},
                        {"name": "Ready", "type": "string", "jsonPath": f"{ready}.status"},
                        {"name": "Code", "type": "string", "jsonPath": ".status.code"},
                        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
                        {"name": "Space", "type": "string", "jsonPath": ".spec.custSpaceId", "priority": 1},
                        {"name": "Reason", "type": "string", "jsonPath": f"{ready}.reason", "priority": 1},
                        {"name": "Message", "type": "string", "jsonPath": f"{ready}.message", "priority": 1},
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": KIND_DESCRIPTION,
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": _status_schema(),
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd() -> str:
    header = f"# Generated from the pydantic models of {API_VERSION} {KIND}; do not edit.\n"
    header += "# Regenerate with: python -m cams_webhook_operator.api.crd\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--check", action="store_true", help="fail if a committed CRD differs from the models"
    )
    args = parser.parse_args(argv)
    wanted = render_crd()
    stale = [path for path in CRD_PATHS if not path.exists() or path.read_text() != wanted]
    if args.check:
        for path in stale:
            print(
                f"{path.relative_to(REPO_ROOT)} is out of date: run python -m cams_webhook_operator.api.crd"
            )
        return 1 if stale else 0
    for path in stale:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(wanted)
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
