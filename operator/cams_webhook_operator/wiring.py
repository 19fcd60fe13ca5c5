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
from functools import cached_property
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
from cams_webhook_operator.cams.instance_identity import (
    CredentialsUriProvider,
    EcsRamRoleProvider,
    FirstWorking,
)
from cams_webhook_operator.cams.refreshing import RefreshingCredentials
from cams_webhook_operator.cams.sts import RrsaProvider
from cams_webhook_operator.decisions.plans import Priority
from cams_webhook_operator.decisions.state import States
from cams_webhook_operator.engine.account_status import AccountStatusWriter
from cams_webhook_operator.engine.background import Background
from cams_webhook_operator.engine.controller import Controller, Parts, credentials_named
from cams_webhook_operator.engine.drift_checks import CamsApi, DriftChecker
from cams_webhook_operator.engine.intake import Intake
from cams_webhook_operator.engine.lanes import Lanes, OwnShares
from cams_webhook_operator.engine.metrics import Metrics, StateViews, objects_by_condition
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
    temporary: TemporaryCredentialSource | None = None,
    leading: Callable[[], bool] = lambda: True,
    wall_clock: Callable[[], datetime] = utc_seconds,
    rng: random.Random | None = None,
    metrics: Metrics | None = None,
) -> Controller:
    """A controller and its parts. `leading`: the leader election's verdict, asked before every call and
    write."""
    return _Assembly(
        settings,
        cams,
        kube,
        temporary,
        leading,
        wall_clock,
        rng or random.Random(),  # noqa: S311 -- jitter, not cryptography
        metrics or Metrics(),
    ).controller()


@dataclass
class _Assembly:
    """Each part made once, when first asked for, from the parts it needs: the order of construction
    follows from the dependencies instead of being written out."""

    settings: OperatorSettings
    cams: CamsApi
    kube: Kube
    temporary: TemporaryCredentialSource | None
    leading: Callable[[], bool]
    wall_clock: Callable[[], datetime]
    rng: random.Random
    metrics: Metrics
    built: Controller | None = None  # the parts that ask whether it acts look it up once it exists

    def controller(self) -> Controller:
        self.built = controller = Controller(self.parts)
        self.lanes.owner = controller
        if self.temporary is not None:
            self.temporary.on_recovered = self.intake.identity_recovered
        self._watch_metrics()
        return controller

    def acting(self) -> bool:
        """Whether this replica's workers run and it still leads: only then are claims written."""
        return self.built is not None and self.built.acting and self.leading()

    @cached_property
    def parts(self) -> Parts:
        return Parts(
            settings=self.settings,
            cams=self.cams,
            states=self.states,
            queue=self.queue,
            writer=self.writer,
            lanes=self.lanes,
            shares=OwnShares(),
            account_ids=self.account_ids,
            resolver=self.resolver,
            ownership=self.ownership,
            secrets=self.secrets,
            account_status=self.account_status,
            drift=self.drift,
            access=self.access,
            intake=self.intake,
            metrics=self.metrics,
            leading=self.leading,
            wall_clock=self.wall_clock,
            rng=self.rng,
        )

    @cached_property
    def states(self) -> States:
        return States()

    @cached_property
    def queue(self) -> WorkQueue[Key]:
        # Namespaces take turns; within a namespace's turns, the credentials its objects name.
        states = self.states
        return WorkQueue(flow=lambda key: key[0], within=lambda key: credentials_named(states, key))

    @cached_property
    def writer(self) -> ObjectWriter:
        return ObjectWriter(self.kube, gone=self.intake.gone)

    @cached_property
    def lanes(self) -> Lanes:
        return Lanes(self.settings)

    @cached_property
    def account_ids(self) -> AccountIds:
        return AccountIds(ask=self.cams.caller_identity)

    @cached_property
    def resolver(self) -> CredentialResolver:
        return CredentialResolver.of(
            self.settings, temporary=self.temporary, read_secret=self.kube.read_secret
        )

    @cached_property
    def background(self) -> Background:
        return Background()

    @cached_property
    def ownership(self) -> Ownership:
        grace = timedelta(seconds=self.settings.claim_grace_seconds)
        return Ownership(
            ClaimStore(self.kube, grace=grace, now=self.wall_clock),
            states=self.states,
            recheck_after=self.queue.add_after,
            may_write=self.acting,
            background=self.background,
            wall_clock=self.wall_clock,
        )

    @cached_property
    def secrets(self) -> SecretRefresh:
        return SecretRefresh(
            read_secret=self.kube.read_secret,
            to_refresh=self.resolver.secrets_to_refresh,
            changed=self.intake.secret_changed,
            every=self.settings.secret_refresh_seconds,
            background=self.background,
        )

    @cached_property
    def account_status(self) -> AccountStatusWriter:
        return AccountStatusWriter(
            resolver=self.resolver, kube=self.kube, wall_clock=self.wall_clock, leading=self.leading
        )

    @cached_property
    def drift(self) -> DriftChecker:
        queue = self.queue
        return DriftChecker(
            states=self.states,
            cams=self.cams,
            resolver=self.resolver,
            settings=self.settings,
            metrics=self.metrics,
            requeue=lambda key: queue.add(key, Priority.ROUTINE),
            wall_clock=self.wall_clock,
            rng=self.rng,
            lane_of=self.account_ids.lane_of,
            leading=self.leading,
        )

    @cached_property
    def access(self) -> SpaceAccess:
        return SpaceAccess(
            read=self.drift.read_space,
            renew=self.resolver.renew,
            now=self.wall_clock,
            refusal_seconds=self.settings.permanent_retry_seconds,
        )

    @cached_property
    def intake(self) -> Intake:
        return Intake(
            states=self.states,
            queue=self.queue,
            resolver=self.resolver,
            ownership=self.ownership,
            lanes=self.lanes,
            drift=self.drift,
            account_status=self.account_status,
        )

    def _watch_metrics(self) -> None:
        states, queue, lanes, temporary = self.states, self.queue, self.lanes, self.temporary
        # Read in the metrics server's thread: each map is copied in one step (tuple() holds the GIL).
        self.metrics.watch_state(
            StateViews(
                objects_by_condition=lambda: objects_by_condition(s.status for s in tuple(states.values())),
                queue_depth=lambda: len(queue),
                calls_waiting=lanes.waiting,
                accounts_unavailable=lanes.unavailable,
                leading=self.acting,
                rrsa_failing=lambda: temporary is not None and temporary.failing,
                numbers=states.numbers,
            )
        )


@dataclass
class Wiring:
    """What the kopf handlers share: kopf copies the memo into every object's memory, so it holds only
    this."""

    controller: Controller
    following: Following
    followed: Mapping[str, Followed]
    api: Any
    cams: CamsClient
    temporary: TemporaryIdentitySource | None
    elector: LeaderElector | None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    controller_task: asyncio.Task[None] | None = None


def build(settings: OperatorSettings, api: Any, *, namespaces: list[str], identity: str) -> Wiring:
    """Everything the kopf start-up runs, on the API client `api` (kube/client.py's `connect`)."""
    cams = CamsClient(
        endpoint=settings.endpoint,
        timeout_seconds=settings.timeout_seconds,
        sts_endpoint=settings.sts_host,  # where the Alibaba account of credentials is asked
        proxies=settings.proxies(),
    )
    temporary = temporary_identity(settings)
    elector = _elector(settings, api, identity)
    controller = build_controller(
        settings=settings,
        cams=cams,
        kube=KubeApi(api, namespace=settings.operator_namespace),
        temporary=temporary,
        # Asked right before every CAMS call and every write: a leader whose lease may have run out
        # (a paused or partitioned process that resumes) acts no more.
        leading=elector.leading if elector else lambda: True,
    )
    following = Following(api, namespaces=namespaces)
    return Wiring(controller, following, followed(controller.intake), api, cams, temporary, elector)


TemporaryIdentitySource = RefreshingCredentials | FirstWorking


def temporary_identity(settings: OperatorSettings) -> TemporaryIdentitySource | None:
    """The operator's own temporary credentials, in the official default chain's order after its AccessKey
    (which comes first, and then needs none of these): RRSA; else the node's RAM role (unless
    ALIBABA_CLOUD_ECS_METADATA_DISABLED) and ALIBABA_CLOUD_CREDENTIALS_URI, the first that works. The
    official chain's profile files are left out: nothing writes them in a pod."""
    if settings.operator_credentials() is not None:
        return None
    base, most = settings.retry_base_seconds, settings.retry_max_seconds
    if (config := settings.rrsa_config()) is not None:
        return RrsaProvider(
            config,
            timeout_seconds=settings.timeout_seconds,
            proxies=settings.proxies(),
            retry_base_seconds=base,
            retry_max_seconds=most,
        )
    chain: list[RefreshingCredentials] = []
    if not settings.ecs_metadata_disabled:
        chain.append(
            EcsRamRoleProvider(
                endpoint=settings.metadata_endpoint,
                role_name=settings.ecs_role_name,
                imdsv1_disabled=settings.imdsv1_disabled,
                retry_base_seconds=base,
                retry_max_seconds=most,
            )
        )
    if settings.credentials_uri:
        chain.append(
            CredentialsUriProvider(
                settings.credentials_uri,
                timeout_seconds=settings.timeout_seconds,
                proxies=settings.proxies(),
                retry_base_seconds=base,
                retry_max_seconds=most,
            )
        )
    if len(chain) > 1:
        return FirstWorking(chain)
    return chain[0] if chain else None


def _elector(settings: OperatorSettings, api_client: Any, identity: str) -> LeaderElector | None:
    if not settings.leader_election:
        return None
    namespace = settings.leader_election_namespace or settings.operator_namespace
    return LeaderElector(
        KubeLeaseApi(api_client, namespace=namespace, name=settings.leader_election_id),
        identity=identity,
        lease_seconds=settings.lease_seconds,
    )


def followed(intake: Intake) -> dict[str, Followed]:
    """The four resources the operator follows, by plural, with what the intake does with them."""

    def accounts(plural: str, kind: str) -> Followed:
        return Followed(
            GROUP,
            VERSION,
            plural,
            namespaced=kind == ACCOUNT_KIND,
            seen=lambda body: intake.observe_account(body, kind),
            gone=lambda namespace, name: intake.forget_account(kind, namespace, name),
            known=lambda: intake.known_accounts(kind),
        )

    return {
        PLURAL: Followed(
            GROUP,
            VERSION,
            PLURAL,
            namespaced=True,
            seen=intake.observe,
            gone=intake.forget,
            known=intake.known,
        ),
        ACCOUNT_PLURAL: accounts(ACCOUNT_PLURAL, ACCOUNT_KIND),
        CLUSTER_ACCOUNT_PLURAL: accounts(CLUSTER_ACCOUNT_PLURAL, CLUSTER_ACCOUNT_KIND),
        # Namespace labels decide which ClusterCamsAccounts admit a namespace (spec.namespaceSelector).
        "namespaces": Followed(
            "",
            "v1",
            "namespaces",
            namespaced=False,
            seen=lambda body: intake.namespace_changed(
                body["metadata"]["name"],
                body["metadata"].get("labels") or {},
                terminating=body["metadata"].get("deletionTimestamp") is not None,
            ),
            gone=lambda _, name: intake.namespace_changed(name, None),
            known=intake.known_namespaces,
        ),
    }
