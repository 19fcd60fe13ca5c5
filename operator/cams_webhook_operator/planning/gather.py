"""The facts a plan of manifests needs, as the controller gathers them (planning/run.py reads them).

Per object, the operator's own planner (decisions/reconcile.plan) decides, on the facts the controller
would give it: the credentials the object may use (tenancy/resolver.py with the cluster's accounts,
namespace labels and the Secrets the caller may read; without `--cluster`, the caller's credentials stand
for every object's and no tenancy applies), who holds its number (the cluster's claims, and the objects
planned before it), the URLs from its Secrets, what CAMS holds (one QueryChatappPhoneNumbers per space),
and, for an object that exists, the status the operator wrote. Nothing is written anywhere: no claim, no
status, no UpdatePhoneWebhook.

The status's fingerprints are digests of what was sent and as whom; the caller does not know the key the
operator used for objects on its own identity. So a fingerprint of an object that is in sync (or refused
for good) at its generation is re-made here from the object's current spec with the caller's view of its
credentials: the planner then compares like with like, and says "in sync" exactly when the manifest would
send what the object already sends, as the same account.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from cams_webhook_operator.api.models import API_VERSION, KIND
from cams_webhook_operator.api.status_models import PhoneWebhookStatus
from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.decisions.plans import Facts, Priority, fingerprint, webhook_update
from cams_webhook_operator.decisions.state import Claimant, DriftReport, ObjectState, Snapshot, holder_id
from cams_webhook_operator.tenancy.callback_urls import CallbackUrls
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved


def read_manifests(paths: list[str]) -> list[dict[str, Any]]:
    """The PhoneWebhooks among the YAML documents of these files, of the files under these directories
    (*.yaml, *.yml, *.json), or of standard input ("-", e.g. `kustomize build . | ... -f -`)."""
    texts: list[tuple[str, str]] = []
    for path in paths:
        if path == "-":
            texts.append(("<stdin>", sys.stdin.read()))
            continue
        found = Path(path)
        files = (
            sorted(p for p in found.rglob("*") if p.suffix in (".yaml", ".yml", ".json"))
            if found.is_dir()
            else [found]
        )
        texts += [(str(f), f.read_text()) for f in files]
    objects = []
    for source, text in texts:
        try:
            documents = list(yaml.safe_load_all(text))
        except yaml.YAMLError as bad:
            raise ValueError(f"{source}: not YAML ({bad})") from None
        for document in documents:
            items = (
                document.get("items", [])
                if isinstance(document, dict) and "items" in document
                else [document]
            )
            objects += [
                o
                for o in items
                if isinstance(o, dict) and (o.get("apiVersion"), o.get("kind")) == (API_VERSION, KIND)
            ]
    return objects


def as_object(body: Mapping[str, Any], *, default_namespace: str) -> dict[str, Any]:
    """A manifest as the watch would show it once created: a namespace, a uid, generation 1."""
    meta = dict(body.get("metadata") or {})
    meta.setdefault("namespace", default_namespace)
    meta.setdefault("uid", f"plan:{meta['namespace']}/{meta.get('name', '')}")
    meta.setdefault("generation", 1)
    return {**body, "metadata": meta}


def status_of(body: Mapping[str, Any]) -> PhoneWebhookStatus:
    """The status the operator wrote on an object that exists (an unreadable one: none)."""
    try:
        return PhoneWebhookStatus.model_validate(body.get("status") or {})
    except ValueError:
        return PhoneWebhookStatus()


def settled(status: PhoneWebhookStatus, generation: int) -> str | None:
    """ "applied" or "refused" when the operator's last word on this generation was that CAMS accepted it
    or refused it for good; else None (its fingerprints then say nothing about this generation)."""
    if status.observed_generation != generation:
        return None
    ready = next((c for c in status.conditions if c.type == "Ready"), None)
    if ready is None:
        return None
    if ready.status == "True" and status.applied_fingerprint:
        return "applied"
    if ready.status == "False" and status.failed_fingerprint:
        return "refused"
    return None


def rebased(
    status: PhoneWebhookStatus,
    verdict: str | None,
    *,
    existing: Snapshot,
    urls: CallbackUrls | None,
    as_: Resolved | None,
) -> PhoneWebhookStatus:
    """The status with its settled fingerprint re-made from the existing spec as the caller sees its
    credentials (module docstring); unsettled, or credentials unknown: without fingerprints."""
    if verdict is None or as_ is None or existing.spec is None:
        return status.model_copy(update={"applied_fingerprint": None, "failed_fingerprint": None})
    digest = fingerprint(webhook_update(existing.spec, urls), account=as_.account)
    applied = verdict == "applied"
    return status.model_copy(
        update={
            "applied_fingerprint": digest if applied else None,
            "failed_fingerprint": None if applied else digest,
        }
    )


def object_state(
    snapshot: Snapshot, status: PhoneWebhookStatus, live: LiveNumber | None, read: bool
) -> ObjectState:
    """The record the controller would hold, with what the read of the space showed."""
    state = ObjectState(snapshot=snapshot, status=status)
    if read:  # newer than the last apply (status.lastSyncTime), as a read made now is: drift is judged on it
        state.last_read = DriftReport(checked_at=datetime.now(UTC) + timedelta(seconds=1), live=live)
    return state


def facts(
    *,
    credentials: Resolved | CredentialProblem | None,
    urls: CallbackUrls | CredentialProblem | None,
    owner: Claimant | None,
) -> Facts:
    return Facts(
        now=datetime.now(UTC), priority=Priority.CHANGE, owner=owner, credentials=credentials, urls=urls
    )


def owner_in_plan(snapshot: Snapshot, planned: dict[tuple[str, str], str]) -> Claimant | None:
    """Another object of these manifests that claims the same number before this one (in their order)."""
    claim = snapshot.claim
    if claim is None or (holder := planned.get(claim)) is None or holder == holder_id(snapshot.key):
        return None
    namespace, _, name = holder.partition("/")
    return Claimant("", namespace, name)
