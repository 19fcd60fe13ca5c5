"""Every manifest the docs show of this project's kinds (and the Secrets and Namespaces beside them) is
accepted by the real API server as written, with its CRDs, CEL rules included: applied with a server-side
dry run, so nothing is stored (namespaces they name are created for it and deleted after)."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml

from .harness import REPO, Kubectl

OURS = {"PhoneWebhook", "CamsAccount", "ClusterCamsAccount", "Secret", "Namespace"}
_YAML = re.compile(r"^( *)```yaml\n(.*?)^\1```", re.DOTALL | re.MULTILINE)


def _manifests() -> list[tuple[str, list[dict[str, Any]]]]:
    found = []
    for page in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        for indent, body in _YAML.findall(page.read_text()):
            documents = [d for d in yaml.safe_load_all(re.sub(f"^{indent}", "", body, flags=re.M)) if d]
            kinds = {d.get("kind") for d in documents if isinstance(d, dict)}
            if documents and kinds <= OURS and kinds & (OURS - {"Secret", "Namespace"}):
                found.append((page.name, documents))
    return found


def test_the_docs_show_manifests_of_every_kind() -> None:
    kinds = {d["kind"] for _, documents in _manifests() for d in documents}
    assert {"PhoneWebhook", "CamsAccount", "ClusterCamsAccount"} <= kinds
    assert len(_manifests()) >= 8


@pytest.mark.parametrize(("page", "documents"), _manifests(), ids=lambda v: v if isinstance(v, str) else "")
def test_a_manifest_of_the_docs_is_accepted_as_written(
    kubectl: Kubectl, page: str, documents: list[dict[str, Any]]
) -> None:
    namespaces = {d["metadata"]["namespace"] for d in documents if "namespace" in d.get("metadata", {})}
    made = [n for n in sorted(namespaces) if not kubectl.exists("namespace", n)]
    for namespace in made:
        kubectl.run("create", "namespace", namespace)
    try:
        result = kubectl.run(
            "apply", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump_all(documents), check=False
        )
        assert result.returncode == 0, f"{page}: {result.stderr}"
    finally:
        for namespace in made:
            kubectl.delete_namespace(namespace)
