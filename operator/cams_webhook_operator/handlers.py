"""Under kopf: the controller started in one startup handler and stopped in the cleanup one, the informers
(informer.py) wired to it, leadership, and the health probe. kopf watches nothing itself any more: its
watches give no signal that an initial listing is over, which the controller waits for.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from typing import Any

import kopf

from cams_webhook_operator.api.models import ACCOUNT_KIND, CLUSTER_ACCOUNT_KIND
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.controller import Controller
from cams_webhook_operator.informer import (
    CAMS_ACCOUNTS,
    CLUSTER_CAMS_ACCOUNTS,
    NAMESPACES,
    PHONEWEBHOOKS,
    Informer,
    Resource,
)
from cams_webhook_operator.kube import KubeApi, load_api_client
from cams_webhook_operator.kube_http import KubeHttp
from cams_webhook_operator.leader import KubeLeaseApi, LeaderElector
from cams_webhook_operator.settings import OperatorSettings

logger = logging.getLogger(__name__)


def _configure_kopf(settings: kopf.OperatorSettings) -> None:
    # kopf would turn its own log lines into Events; the controller posts the Events that matter.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    # Without a client-side timeout, a connection dropped without a word (a NAT, a proxy) leaves a watch
    # waiting forever while the Lease is still renewed: the operator would see no change again.
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60


def _rrsa_provider(operator_settings: OperatorSettings) -> RrsaProvider | None:
    config = operator_settings.rrsa_config()
    if config is None:
        return None
    return RrsaProvider(
        config,
        timeout_seconds=operator_settings.timeout_seconds,
        retry_base_seconds=operator_settings.retry_base_seconds,
        retry_max_seconds=operator_settings.retry_max_seconds,
    )


def _elector(operator_settings: OperatorSettings, api_client: Any, identity: str) -> LeaderElector | None:
    if not operator_settings.leader_election:
        return None
    namespace = operator_settings.leader_election_namespace or operator_settings.operator_namespace
    return LeaderElector(
        KubeLeaseApi(api_client, namespace=namespace, name=operator_settings.leader_election_id),
        identity=identity,
        lease_seconds=operator_settings.lease_seconds,
    )


@kopf.on.startup()
async def start_controller(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **_: Any,
) -> None:
    _configure_kopf(settings)
    operator_settings = OperatorSettings()
    api_client = load_api_client()
    cams = CamsClient(
        endpoint=operator_settings.endpoint,
        timeout_seconds=operator_settings.timeout_seconds,
        sts_endpoint=operator_settings.sts_host,  # where the Alibaba account of credentials is asked
    )
    memo.rrsa = rrsa = _rrsa_provider(operator_settings)
    memo.elector = elector = _elector(operator_settings, api_client, memo.identity)
    memo.kube_http = kube_http = KubeHttp(api_client.configuration)
    controller = Controller(
        settings=operator_settings,
        cams=cams,
        kube=KubeApi(kube_http, namespace=operator_settings.operator_namespace),
        rrsa=rrsa,
        # Asked right before every CAMS call and every write: a leader whose lease may have run out
        # (a paused or partitioned process that resumes) acts no more.
        leading=elector.leading if elector else None,
        wait_for_listing=True,
    )
    if operator_settings.metrics_port:
        controller.metrics.serve(host=operator_settings.metrics_host, port=operator_settings.metrics_port)
    memo.controller = controller
    memo.cams = cams
    memo.informer_task = asyncio.create_task(
        _inform(controller, kube_http, memo.namespaces), name="informers"
    )
    # Followers watch and keep their snapshots warm, but only the leader's workers act.
    memo.controller_task = asyncio.create_task(_lead(controller, elector), name="controller")
    logger.info(
        "Started; CAMS endpoint %s at %.1f calls/s per account; %s",
        operator_settings.endpoint,
        operator_settings.qps,
        f"leader election on Lease {operator_settings.leader_election_id}"
        if elector
        else "no leader election",
    )


async def _inform(controller: Controller, http: KubeHttp, namespaces: list[str]) -> None:
    """PhoneWebhooks, accounts and namespaces, listed and watched by the operator itself (informer.py), not
    by kopf: the controller decides once all of them are listed, so that no object is decided before the
    account it uses is known (kopf's watches give no such signal)."""
    unlisted = {PHONEWEBHOOKS, CAMS_ACCOUNTS, CLUSTER_CAMS_ACCOUNTS, NAMESPACES}

    def listed(resource: Resource) -> Callable[[], None]:
        def done() -> None:
            unlisted.discard(resource)
            if not unlisted:
                controller.listed.set()

        return done

    def accounts(resource: Resource, kind: str) -> Informer:
        return Informer(
            http,
            resource=resource,
            namespaces=namespaces,
            seen=lambda body: controller.observe_account(body, kind),
            gone=lambda namespace, name: controller.forget_account(kind, namespace, name),
            listed=listed(resource),
            known=lambda: controller.known_accounts(kind),
        )

    informers = [
        Informer(
            http,
            namespaces=namespaces,
            seen=controller.observe,
            gone=controller.forget,
            listed=listed(PHONEWEBHOOKS),
            known=controller.known,
        ),
        accounts(CAMS_ACCOUNTS, ACCOUNT_KIND),
        accounts(CLUSTER_CAMS_ACCOUNTS, CLUSTER_ACCOUNT_KIND),
        # Namespace labels decide which ClusterCamsAccounts admit a namespace (spec.namespaceSelector).
        Informer(
            http,
            resource=NAMESPACES,
            namespaces=[],
            seen=lambda body: controller.namespace_changed(
                body["metadata"]["name"],
                body["metadata"].get("labels") or {},
                terminating=body["metadata"].get("deletionTimestamp") is not None,
            ),
            gone=lambda _, name: controller.namespace_changed(name, None),
            listed=listed(NAMESPACES),
            known=controller.known_namespaces,
        ),
    ]
    async with asyncio.TaskGroup() as tasks:
        for informer in informers:
            tasks.create_task(informer.run())


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
    state = controller_state(getattr(memo, "controller_task", None))
    if state == "stopped":
        raise kopf.PermanentError("the controller's workers have stopped")
    return state


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    for name in ("controller_task", "informer_task"):
        task: asyncio.Task[None] | None = getattr(memo, name, None)
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    elector: LeaderElector | None = getattr(memo, "elector", None)
    if elector is not None:
        await elector.release()
    for client in (getattr(memo, "cams", None), getattr(memo, "kube_http", None)):
        if client is not None:
            await client.aclose()
    rrsa: RrsaProvider | None = getattr(memo, "rrsa", None)
    if rrsa is not None:
        await rrsa.aclose()
