"""The release workflow publishes what the chart's defaults pull: the image under the repository the values
name, tagged with the version that is the chart's appVersion, for both architectures, with provenance and an
SBOM; and the oldest Kubernetes the chart claims is the one the e2e tier runs its schema tests on.
(actionlint checks the workflows' syntax and scripts in scripts/test.sh.)"""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import yaml

from tests.releases import REPO, current_version

CHART = REPO / "helm" / "cams-webhook-operator"
WORKFLOWS = REPO / ".github" / "workflows"


def _workflow(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((WORKFLOWS / name).read_text())
    assert isinstance(loaded, dict)
    loaded["on"] = loaded.pop(True, loaded.get("on"))  # YAML 1.1 reads the key `on` as true
    return {str(key): value for key, value in loaded.items()}


def _step(job: dict[str, Any], action: str) -> dict[str, Any]:
    (found,) = [s for s in job["steps"] if s.get("uses", "").startswith(f"{action}@")]
    return dict(found)


def test_the_chart_pulls_by_default_the_image_a_release_of_this_version_pushes() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    release = _workflow("release.yml")
    assert (values["image"]["tag"], values["image"]["digest"]) == ("", "")  # so appVersion is the tag
    assert release["env"]["IMAGE"] == values["image"]["repository"]
    assert chart["appVersion"] == current_version()
    build = _step(release["jobs"]["image"], "docker/build-push-action")["with"]
    assert build["tags"] == "${{ env.IMAGE }}:${{ needs.version.outputs.version }}"
    assert set(build["platforms"].split(",")) == {"linux/amd64", "linux/arm64"}
    assert (build["push"], build["provenance"], build["sbom"]) == (True, "mode=max", True)


def test_a_release_is_made_only_from_a_version_tag_after_the_whole_ci_passed() -> None:
    release = _workflow("release.yml")
    assert release["on"] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}
    jobs = release["jobs"]
    assert jobs["test"]["uses"] == "./.github/workflows/ci.yml"
    assert set(jobs["image"]["needs"]) == {"version", "test"}
    assert "image" in jobs["chart"]["needs"]
    ci = _workflow("ci.yml")
    assert "workflow_call" in ci["on"]
    assert any(step.get("run") == "bash .ci/run" for step in ci["jobs"]["test"]["steps"])


def test_the_tag_must_be_the_version_of_the_package_and_the_chart() -> None:
    script = [sys.executable, str(REPO / "scripts" / "release_version.py")]
    ok = subprocess.run([*script, "--check", current_version()], capture_output=True, text=True)
    assert (ok.returncode, ok.stdout.strip()) == (0, current_version())
    wrong = subprocess.run([*script, "--check", "99.0.0"], capture_output=True, text=True)
    assert wrong.returncode == 1
    assert f"pyproject.toml version is {current_version()}" in wrong.stderr


def test_the_oldest_kubernetes_the_chart_claims_is_the_one_the_schema_tests_run_on() -> None:
    claimed = yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"]
    script = (REPO / "scripts" / "controlplane.sh").read_text()
    match = re.search(r'^OLDEST_K8S_VERSION="v(\d+)\.(\d+)\.\d+"', script, flags=re.MULTILINE)
    assert match, "scripts/controlplane.sh names no OLDEST_K8S_VERSION"
    assert claimed == f">={match.group(1)}.{match.group(2)}.0-0"
