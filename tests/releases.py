"""The releases the repository records (docs/releases.md: version and commit), the version the working
tree carries, and a release installed the way its Dockerfile builds the image."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
RELEASES = REPO / "docs" / "releases.md"
ROW = re.compile(r"^\|\s*(?P<version>\d+\.\d+\.\d+)\s*\|\s*(?P<commit>[0-9a-f]{40})\s*\|", re.MULTILINE)
CACHE = Path(
    os.environ.get("CAMS_OPERATOR_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "cams-webhook-operator"
)


@dataclass(frozen=True)
class Release:
    version: str
    commit: str


def releases() -> list[Release]:
    """Every release in docs/releases.md, oldest first."""
    found = [Release(m["version"], m["commit"]) for m in ROW.finditer(RELEASES.read_text())]
    return sorted(found, key=lambda r: Version(r.version))


def current_version() -> str:
    return str(tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"])


def previous_release() -> Release:
    """The newest release older than the version in the working tree: what users upgrade from."""
    older = [r for r in releases() if Version(r.version) < Version(current_version())]
    assert older, f"docs/releases.md lists no release older than {current_version()}"
    return older[-1]


def git(*args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, timeout=120)


def file_at(release: Release, path: str) -> str:
    """A file as the release's commit has it; fails loudly in a clone without that history."""
    shown = git("show", f"{release.commit}:{path}")
    assert shown.returncode == 0, (
        f"commit {release.commit} of release {release.version} is not in this clone "
        f"(a shallow clone? `git fetch --unshallow`): {shown.stderr.decode()}"
    )
    return shown.stdout.decode()


def source(release: Release, into: Path) -> Path:
    """The release's files, extracted from its commit."""
    archive = git("archive", "--format=tar", release.commit)
    assert archive.returncode == 0, f"git archive {release.commit}: {archive.stderr.decode()}"
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(*args: str | Path) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def install_like_the_image(project: Path, venv: Path, wheels: Path) -> None:
    """The Dockerfile's build stage: a virtual environment, requirements.lock with --require-hashes, the
    project's wheel without dependencies, and `pip check`."""
    run(sys.executable, "-m", "venv", venv)
    run(venv / "bin" / "pip", "install", "--require-hashes", "--no-deps", "-r", project / "requirements.lock")
    run(venv / "bin" / "pip", "wheel", "--no-deps", "--wheel-dir", wheels, project)
    wheel = next(wheels.glob("cams_webhook_operator-*.whl"))
    run(venv / "bin" / "pip", "install", "--no-deps", wheel)
    assert "No broken requirements" in run(venv / "bin" / "pip", "check")


def installed(release: Release) -> Path:
    """The release's source and its installed virtual environment, built once per commit and cached."""
    home = CACHE / "releases" / f"{release.version}-{release.commit[:12]}"
    if not (home / "complete").exists():
        subprocess.run(["rm", "-rf", str(home)], check=True)
        source(release, home / "src")
        install_like_the_image(home / "src", home / "venv", home / "dist")
        (home / "complete").write_text(release.commit + "\n")
    return home
