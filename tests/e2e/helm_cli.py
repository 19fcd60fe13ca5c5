"""helm (built by scripts/gotools.sh) against a test's cluster, with its cache and config of its own, and
the docs' pasted blocks run by a reader's shell."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .harness import REPO


@dataclass
class Helm:
    """helm against the test's cluster, with its cache and config in `home` (never the user's)."""

    binary: Path
    kubeconfig: Path
    home: Path

    def _env(self) -> dict[str, str]:
        homes = {f"HELM_{kind}_HOME": str(self.home / kind.lower()) for kind in ("CACHE", "CONFIG", "DATA")}
        return {**os.environ, **homes}

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), "--kubeconfig", str(self.kubeconfig), *args],
            capture_output=True,
            text=True,
            timeout=300,
            env=self._env(),
        )
        if check:
            assert result.returncode == 0, f"helm {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
        return result

    def shell(
        self,
        script: str,
        *,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        timeout: float = 300,
        cwd: Path = REPO,
    ) -> subprocess.CompletedProcess[str]:
        """A pasted block, run by bash in the repository's root with this helm and kubectl on the PATH and
        the cluster as KUBECONFIG, as a reader's shell would run it."""
        path = f"{self.binary.parent}:{os.environ['PATH']}"
        result = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=cwd,
            env={**self._env(), "PATH": path, "KUBECONFIG": str(self.kubeconfig), **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check:
            assert result.returncode == 0, f"{script}\n--- failed:\n{result.stdout}\n{result.stderr}"
        return result
