"""Runs the shipped Argo CD health check (helm/cams-webhook-operator/files/argocd-health.lua) the way
Argo CD does: `obj` is the live object, the script returns {status, message}."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lupa import LuaRuntime

SCRIPT = (
    Path(__file__).resolve().parents[1] / "helm" / "cams-webhook-operator" / "files" / "argocd-health.lua"
).read_text()


def argocd_health(obj: dict[str, Any], script: str = SCRIPT) -> tuple[str, str]:
    """`script`: another version of the check (an earlier release's)."""
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = lua.table_from(obj, recursive=True)
    result = lua.execute(script)
    return str(result["status"]), str(result["message"])
