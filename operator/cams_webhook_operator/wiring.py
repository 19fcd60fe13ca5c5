"""Construction, apart from behaviour: every part of the operator built once and wired to the others.

`build_controller` makes a controller and its parts (work queue, lanes, writer, claims, resolver, drift
loop, Secret refresh, metrics), `build` adds what the kopf start-up needs around it (the CAMS and STS
clients, the RRSA provider, the leader election, the four followed resources). The classes themselves
build nothing of each other: a test swaps a part on the part (`controller.ownership.claimants_of`), not
through a parameter of the controller.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cams_webhook_operator.api.models import (
    ACCOUNT_KIND,
    ACCOUNT_PLURAL,
    CLUSTER_ACCOUNT_KIND,
    CLUSTER_ACCOUNT_PLURAL,
    GROUP,
    PLURAL,
    VERSION,
)
from cams_webhook_operator.api.refs import Key
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.decisions.plans import Priority
from cams_webhook_operator.decisions.state import States
from cams_webhook_operator.engine.account_status import AccountStatusWriter
from cams_webhook_operator.engine.background import Background
from cams_webhook_operator.engine.controller import Controller, Parts, credentials_named
from cams_webhook_operator.engine.drift_checks import CamsApi, DriftChecker
from cams_webhook_operator.engine.lanes import Lanes, OwnShares
from cams_webhook_operator.engine.metrics import Metrics, objects_by_condition
from cams_webhook_operator.engine.ownership import Ownership
from cams_webhook_operator.engine.secret_refresh import SecretRefresh
from cams_webhook_operator.engine.workqueue import WorkQueue
from cams_webhook_operator.engine.writer import Kube, ObjectWriter
from cams_webhook_operator.kube.api import KubeApi
from cams_webhook_operator.kube.leader import KubeLeaseApi, LeaderElector
from cams_webhook_operator.kube.watched import Followed, Following
from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.account_ids import AccountIds
from cams_webhook_operator.tenancy.claims import ClaimStore
from cams_webhook_operator.tenancy.resolver import CredentialResolver, TemporaryCredentialSource
from cams_webhook_operator.tenancy.space_access import SpaceAccess


def utc_seconds() -> datetime:
    """The wall clock of status timestamps: UTC, to the second."""
    return datetime.now(UTC).replace(microsecond=0)


def build_controller(
    *,
    settings: OperatorSettings,
    cams: CamsApi,
    kube: Kube,
    rrsa: TemporaryCredentialSource | None = None,
    leading: Callable[[], bool] = lambda: True,
    wall_clock: Callable[[], datetime] = utc_seconds,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
) -> Controller:
    """A controller and its parts. `leading`: the leader election's verdict, asked before every call and
    write. The parts that call the controller back (a write that finds its object gone, a changed Secret,
    STS answering again, a lane's answer) look it up when they call, once it exists."""
    controller: Controller
    rng = rng or random.Random()  # noqa: S311 -- jitter, not cryptography
    metrics = metrics or Metrics()
    states = States()
    # Namespaces take turns; within a namespace's turns, the credentials its objects name.
    queue: WorkQueue[Key] = WorkQueue(
        flow=lambda key: key[0], within=lambda key: credentials_named(states, key)
    )
    writer = ObjectWriter(kube, gone=lambda ref: controller.gone(ref))
    resolver = CredentialResolver.of(settings, rrsa=rrsa, read_secret=kube.read_secret)
    account_ids = AccountIds(ask=cams.caller_identity)
    background = Background()
    ownership = Ownership(
        ClaimStore(kube, grace=timedelta(seconds=settings.claim_grace_seconds), now=wall_clock),
        states=states,
        recheck_after=queue.add_after,
        may_write=lambda: controller.acting and leading(),  # only the leader's workers write claims
        background=background,
        wall_clock=wall_clock,
    )
    drift = DriftChecker(
        states=states,
        cams=cams,
        resolver=resolver,
        settings=settings,
        metrics=metrics,
        requeue=lambda key: queue.add(key, Priority.ROUTINE),
        wall_clock=wall_clock,
        rng=rng,
        lane_of=account_ids.lane_of,
        leading=leading,
    )
    lanes = Lanes(settings)
    controller = Controller(
        Parts(
            settings=settings,
            cams=cams,
            states=states,
            queue=queue,
            writer=writer,
            lanes=lanes,
            shares=OwnShares(),
            account_ids=account_ids,
            resolver=resolver,
            ownership=ownership,
            secrets=SecretRefresh(
                read_secret=kube.read_secret,
                to_refresh=resolver.secrets_to_refresh,
                changed=lambda *secret: controller.secret_changed(*secret),
                every=settings.secret_refresh_seconds,
                background=background,
            ),
            account_status=AccountStatusWriter(
                resolver=resolver, kube=kube, wall_clock=wall_clock, leading=leading
            ),
            drift=drift,
            access=SpaceAccess(
                read=drift.read_space,
                renew=resolver.renew,
                now=wall_clock,
                refusal_seconds=settings.permanent_retry_seconds,
            ),
            metrics=metrics,
            leading=leading,
            wall_clock=wall_clock,
            rng=rng,
        )
    )
    lanes.owner = controller
    if rrsa is not None:
        rrsa.on_recovered = controller.rrsa_recovered
    # Read in the metrics server's thread: each map is copied in one step (tuple() holds the GIL).
    metrics.watch_state(
        objects_by_condition=lambda: objects_by_condition(s.status for s in tuple(states.values())),
        queue_depth=lambda: len(queue),
        calls_waiting=lanes.waiting,
        accounts_unavailable=lanes.unavailable,
        leading=lambda: controller.acting and leading(),
        rrsa_failing=lambda: rrsa is not None and rrsa.failing,
        numbers=states.numbers,
    )
    return controller


@dataclass
class Wiring:
    """What the kopf handlers share: kopf copies the memo into every object's memory, so it holds only
    this."""

    controller: Controller
    following: Following
    followed: Mapping[str, Followed]
    api: Any
    cams: CamsClient
    rrsa: RrsaProvider | None
    elector: LeaderElector | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    controller_task: asyncio.Task[None] | None = None


def build(settings: OperatorSettings, api: Any, *, namespaces: list[str], identity: str) -> Wiring:
    """Everything the kopf start-up runs, on the API client `api` (kube/client.py's `connect`)."""
    cams = CamsClient(
        endpoint=settings.endpoint,
        timeout_seconds=settings.timeout_seconds,
        sts_endpoint=settings.sts_host,  # where the Alibaba account of credentials is asked
    )
    rrsa = _rrsa_provider(settings)
    elector = _elector(settings, api, identity)
    controller = build_controller(
        settings=settings,
        cams=cams,
        kube=KubeApi(api, namespace=settings.operator_namespace),
        rrsa=rrsa,
        # Asked right before every CAMS call and every write: a leader whose lease may have run out
        # (a paused or partitioned process that resumes) acts no more.
        leading=elector.leading if elector else lambda: True,
    )
    following = Following(api, namespaces=namespaces)
    return Wiring(controller, following, followed(controller), api, cams, rrsa, elector)


def _rrsa_provider(settings: OperatorSettings) -> RrsaProvider | None:
    config = settings.rrsa_config()
    if config is None:
        return None
    return RrsaProvider(
        config,
        timeout_seconds=settings.timeout_seconds,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
    )


def _elector(settings: OperatorSettings, api_client: Any, identity: str) -> LeaderElector | None:
    if not settings.leader_election:
        return None
    namespace = settings.leader_election_namespace or settings.operator_namespace
    return LeaderElector(
        KubeLeaseApi(api_client, namespace=namespace, name=settings.leader_election_id),
        identity=identity,
        lease_seconds=settings.lease_seconds,
    )


def followed(controller: Controller) -> dict[str, Followed]:
    """The four resources the operator follows, by plural, with what the controller does with them."""

    def accounts(plural: str, kind: str) -> Followed:
        return Followed(
            GROUP,
            VERSION,
            plural,
            namespaced=kind == ACCOUNT_KIND,
            seen=lambda body: controller.observe_account(body, kind),
            gone=lambda namespace, name: controller.forget_account(kind, namespace, name),
            known=lambda: controller.known_accounts(kind),
        )

    return {
        PLURAL: Followed(
            GROUP,
            VERSION,
            PLURAL,
            namespaced=True,
            seen=controller.observe,
            gone=controller.forget,
            known=controller.known,
        ),
        ACCOUNT_PLURAL: accounts(ACCOUNT_PLURAL, ACCOUNT_KIND),
        CLUSTER_ACCOUNT_PLURAL: accounts(CLUSTER_ACCOUNT_PLURAL, CLUSTER_ACCOUNT_KIND),
        # Namespace labels decide which ClusterCamsAccounts admit a namespace (spec.namespaceSelector).
        "namespaces": Followed(
            "",
            "v1",
            "namespaces",
            namespaced=False,
            seen=lambda body: controller.namespace_changed(
                body["metadata"]["name"],
                body["metadata"].get("labels") or {},
                terminating=body["metadata"].get("deletionTimestamp") is not None,
            ),
            gone=lambda _, name: controller.namespace_changed(name, None),
            known=controller.known_namespaces,
        ),
    }
