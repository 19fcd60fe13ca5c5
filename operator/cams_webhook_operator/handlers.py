"""Under kopf: its start-up handler lists everything once and starts the controller, its event handlers
hand every watch event of PhoneWebhooks, both account kinds and namespaces to the controller (which
decides), its probe reports the workers, its clean-up handler stops them. kopf's settings are all set in
`configure_kopf`, each with what it saves.

Only `@kopf.on.event` handlers: no index (its wake-ups made a restart quadratic), no create/update/resume
handlers, so kopf writes no finalizer, annotation or diff-base of its own into our objects.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import signal
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import kopf

from cams_webhook_operator.api.models import (
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    PLURAL,
    VERSION,
)
from cams_webhook_operator.engine.controller import Controller
from cams_webhook_operator.kube import client as kube_client
from cams_webhook_operator.kube.leader import LeaderElector
from cams_webhook_operator.kube.watched import has_patterns
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.wiring import Wiring, build

logger = logging.getLogger(__name__)


class NoDiffBase(kopf.DiffBaseStorage):
    """A diff-base that stores nothing and builds an empty essence. kopf computes one for every event even
    when no handler needs it: the default deep-copies each object's spec, labels and annotations and reads
    its last-handled annotation back, per event; event handlers need neither."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class ForEver:
    """kopf's delays between retries of a failed API call: 1, 1, 2, 3, 5, 8, 13, 21 s (its own), then every
    30 s for ever. kopf gives up after its last delay, and a watch that gives up stops the whole operator:
    an API server away for a minute (an upgrade, a restart) would have."""

    def __iter__(self) -> Iterator[float]:
        return itertools.chain((1, 1, 2, 3, 5, 8, 13, 21), itertools.repeat(30))


def configure_kopf(settings: kopf.OperatorSettings, namespaces: Sequence[str], *, streaming: bool) -> None:
    """Every kopf setting the operator changes, and why. `streaming`: the API server streams a watch's
    initial state (kube_client.streams_initial_events)."""
    # kopf would turn its own log lines into Events; the controller posts the Events that matter.
    settings.posting.level = logging.WARNING
    # See NoDiffBase. No progress storage is set: kopf writes progress only for create/update handlers, and
    # per event merely copies NoDiffBase's empty essence through the default one (about 7 us, measured).
    settings.persistence.diffbase_storage = NoDiffBase()
    # kopf keeps one task per object while events arrive, and 5 s after the last one by default: at a
    # listing of 30,000 objects, 30,000 idle tasks and queues at once. One event is handled in well under a
    # millisecond, so a worker may go at once; a burst of events for one object still shares one worker.
    settings.queueing.idle_timeout = 0.1
    # Where the API server can, a watch starts with the objects as events (from its watch cache) instead of
    # a listing: no continue token that could expire (kopf does not list again when one does: its watch
    # would end, and the operator with it), no listing held in memory. Elsewhere the listing comes in
    # pages: one answer with 30,000 objects would hold all their JSON and parsed dicts at once.
    settings.watching.initial_streaming = streaming
    settings.watching.chunk_size = kube_client.PAGE
    settings.networking.error_backoffs = ForEver()  # see ForEver: a watch must never give up
    settings.watching.server_timeout = 300
    # Without a client-side timeout, a connection dropped without a word (a NAT, a proxy) leaves a watch
    # waiting forever while the Lease is still renewed: the operator would see no change again.
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60
    # Scanning follows CRDs and namespaces as they come and go: needed only to match namespace patterns
    # (`-n 'team-*'`). Without patterns it is off, and the operator needs no RBAC on CRDs.
    settings.scanning.disabled = not has_patterns(namespaces)


@kopf.on.startup()
async def start_controller(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    namespaces: list[str] = memo.namespaces
    operator_settings = OperatorSettings()
    api = await kube_client.connect()
    configure_kopf(settings, namespaces, streaming=await kube_client.streams_initial_events(api))
    memo.wiring = wiring = build(operator_settings, api, namespaces=namespaces, identity=memo.identity)
    controller = wiring.controller
    if operator_settings.metrics_port:
        controller.metrics.serve(host=operator_settings.metrics_host, port=operator_settings.metrics_port)
    # kopf starts its watches once this handler has returned: everything is known before they start.
    for resource in wiring.followed.values():
        await wiring.following.list_all(resource)
    controller.listed.set()
    wiring.tasks = [
        asyncio.create_task(wiring.following.catch_up_after_relists(resource), name=f"catch-up-{plural}")
        for plural, resource in wiring.followed.items()
    ]
    # Followers watch and keep their snapshots warm, but only the leader's workers act.
    wiring.controller_task = asyncio.create_task(_lead(controller, wiring.elector), name="controller")
    logger.info(
        "Started; CAMS endpoint %s at %.1f calls/s per account; %s",
        operator_settings.endpoint,
        operator_settings.qps,
        f"leader election on Lease {operator_settings.leader_election_id}"
        if wiring.elector
        else "no leader election",
    )


def _hand(memo: kopf.Memo, plural: str, event: Mapping[str, Any]) -> None:
    """One watch event to the controller. kopf's listing (type None) may follow a gap in its watch, so the
    known objects are compared with a listing once it has settled (kube/watched.py)."""
    wiring: Wiring | None = getattr(memo, "wiring", None)
    if wiring is None:
        return
    followed = wiring.followed[plural]
    body = event["object"]
    if event["type"] == "DELETED":
        meta = body["metadata"]
        followed.gone(meta.get("namespace") or "", meta["name"])
        return
    if event["type"] is None:
        wiring.following.relisted(followed)
    followed.seen(body)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def phone_webhook_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _hand(memo, PLURAL, event)


@kopf.on.event(GROUP, VERSION, ACCOUNT_PLURAL)
async def account_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _hand(memo, ACCOUNT_PLURAL, event)


@kopf.on.event(GROUP, VERSION, CLUSTER_ACCOUNT_PLURAL)
async def cluster_account_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _hand(memo, CLUSTER_ACCOUNT_PLURAL, event)


@kopf.on.event("", "v1", "namespaces")
async def namespace_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    _hand(memo, "namespaces", event)


async def _lead(controller: Controller, elector: LeaderElector | None) -> None:
    """Run the workers while this replica leads. If the workers stop (a bug), the lease is not held on
    for nothing: the task ends, /healthz fails, and the replica is restarted."""
    if elector is None:
        await controller.run()
        return
    await elector.acquire()
    workers = asyncio.create_task(controller.run(), name="reconcilers")
    holding = asyncio.create_task(elector.hold(), name="leader-lease")
    try:
        await asyncio.wait({workers, holding}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (workers, holding):
            task.cancel()
        await asyncio.gather(workers, holding, return_exceptions=True)
    if workers.done() and not workers.cancelled() and workers.exception() is not None:
        logger.error("The workers stopped: %r; releasing the lease", workers.exception())
        await elector.release()
    # Lost the lease, or the workers stopped: stop, and let Kubernetes restart this replica as a follower.
    os.kill(os.getpid(), signal.SIGTERM)


def controller_state(task: asyncio.Task[None] | None) -> str:
    """What /healthz says of the controller; "stopped" once its task has ended (its workers died, or it
    lost the lease and is on its way out)."""
    return "stopped" if task is not None and task.done() else "running"


@kopf.on.probe(id="controller")
async def controller_alive(memo: kopf.Memo, **_: Any) -> str:
    """Part of /healthz: fails (HTTP 500, so Kubernetes restarts the pod) once the controller stopped."""
    wiring: Wiring | None = getattr(memo, "wiring", None)
    state = controller_state(wiring.controller_task if wiring else None)
    if state == "stopped":
        raise kopf.PermanentError("the controller's workers have stopped")
    return state


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    wiring: Wiring | None = getattr(memo, "wiring", None)
    if wiring is None:
        return
    tasks = [*wiring.tasks, *([wiring.controller_task] if wiring.controller_task else [])]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    if wiring.elector is not None:
        await wiring.elector.release()
    await wiring.cams.aclose()
    await wiring.api.close()
    if wiring.temporary is not None:
        await wiring.temporary.aclose()
