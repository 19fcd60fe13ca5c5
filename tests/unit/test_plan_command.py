"""The plan command's inputs: manifests from files, directories and List objects (only PhoneWebhooks), and
the namespace of manifests that name none, as kubectl apply would take it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cams_webhook_operator.planning.command import context_namespace
from cams_webhook_operator.planning.gather import read_manifests

LINE = {
    "apiVersion": "camswebhook.io/v1alpha1",
    "kind": "PhoneWebhook",
    "metadata": {"name": "a"},
    "spec": {},
}


def test_manifests_come_from_files_directories_and_lists(tmp_path: Path) -> None:
    (tmp_path / "nested").mkdir()
    (tmp_path / "one.yaml").write_text(yaml.safe_dump_all([LINE, {"apiVersion": "v1", "kind": "Secret"}]))
    listed = {"apiVersion": "v1", "kind": "List", "items": [{**LINE, "metadata": {"name": "b"}}]}
    (tmp_path / "nested" / "two.yml").write_text(yaml.safe_dump(listed))
    (tmp_path / "notes.txt").write_text("not a manifest")
    names = [m["metadata"]["name"] for m in read_manifests([str(tmp_path)])]
    assert sorted(names) == ["a", "b"]
    (tmp_path / "bad.yaml").write_text("a: [")
    with pytest.raises(ValueError, match=r"bad\.yaml: not YAML"):
        read_manifests([str(tmp_path / "bad.yaml")])


def test_manifests_without_a_namespace_go_where_kubectl_would_put_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "c",
        "contexts": [{"name": "c", "context": {"cluster": "x", "user": "y", "namespace": "team-q"}}],
        "clusters": [{"name": "x", "cluster": {"server": "https://127.0.0.1:1"}}],
        "users": [{"name": "y", "user": {"token": "t"}}],
    }
    (tmp_path / "kubeconfig").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "kubeconfig"))
    assert context_namespace() == "team-q"
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    assert context_namespace() == "default"
