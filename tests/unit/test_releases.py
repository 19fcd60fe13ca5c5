"""Releases are findable from the repository alone, and the version moves with what users see."""

from __future__ import annotations

import tomllib

import yaml
from packaging.version import Version

import cams_webhook_operator
from tests.releases import REPO, current_version, file_at, git, previous_release, releases

# What a user runs or installs: a change here after a release is a new version.
SHIPPED = ("operator", "crds", "helm", "Dockerfile", "requirements.lock")


def test_the_package_the_chart_and_its_app_carry_one_version() -> None:
    chart = yaml.safe_load((REPO / "helm" / "cams-webhook-operator" / "Chart.yaml").read_text())
    assert {current_version(), chart["version"], chart["appVersion"], cams_webhook_operator.__version__} == {
        current_version()
    }


def test_every_release_names_a_commit_of_this_history_that_carries_its_version() -> None:
    assert releases(), "docs/releases.md lists no release"
    for release in releases():
        pyproject = tomllib.loads(file_at(release, "pyproject.toml"))
        assert pyproject["project"]["version"] == release.version, release
        is_ancestor = git("merge-base", "--is-ancestor", release.commit, "HEAD")
        assert is_ancestor.returncode == 0, f"{release} is not a commit of this branch's history"


def test_what_users_get_changes_only_with_a_newer_version() -> None:
    newest = releases()[-1]
    assert Version(current_version()) >= Version(newest.version)
    if current_version() == newest.version:
        changed = git("diff", "--stat", newest.commit, "--", *SHIPPED).stdout.decode()
        assert not changed, (
            f"{', '.join(SHIPPED)} changed since release {newest.version} ({newest.commit}): "
            f"move the version in pyproject.toml, Chart.yaml and the package\n{changed}"
        )


def test_the_release_upgraded_from_is_the_newest_older_one() -> None:
    previous = previous_release()
    assert Version(previous.version) < Version(current_version())
    assert all(
        Version(r.version) <= Version(previous.version) for r in releases() if r.version != current_version()
    )
