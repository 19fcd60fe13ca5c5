"""What the watches tell, turned into keys to decide: PhoneWebhooks seen, changed and gone; accounts,
namespaces and Secrets that change which credentials objects may use; STS answering again. Each such
change updates the state records and queues the objects it concerns; the controller's workers decide them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from cams_webhook_operator.api.refs import Key, ObjectRef
from cams_webhook_operator.decisions.plans import Priority
from cams_webhook_operator.decisions.state import ObjectState, Snapshot, States, status_of
from cams_webhook_operator.engine.account_status import AccountStatusWriter
from cams_webhook_operator.engine.drift_checks import DriftChecker
from cams_webhook_operator.engine.lanes import Lanes
from cams_webhook_operator.engine.ownership import Ownership
from cams_webhook_operator.engine.workqueue import WorkQueue
from cams_webhook_operator.tenancy.accounts import Account, AccountKey
from cams_webhook_operator.tenancy.resolver import CredentialResolver


class Intake:
    def __init__(
        self,
        *,
        states: States,
        queue: WorkQueue[Key],
        resolver: CredentialResolver,
        ownership: Ownership,
        lanes: Lanes,
        drift: DriftChecker,
        account_status: AccountStatusWriter,
    ) -> None:
        self._states = states
        self._queue = queue
        self._resolver = resolver
        self._ownership = ownership
        self._lanes = lanes
        self._drift = drift
        self._account_status = account_status

    def observe(self, body: Mapping[str, Any]) -> None:
        """A PhoneWebhook was listed, added or modified."""
        meta = body["metadata"]
        state = self._states.get((meta["namespace"], meta["name"]))
        if state is not None and state.snapshot.resource_version == meta.get("resourceVersion"):
            return  # seen already (listed at start-up, then listed again by kopf)
        snapshot = Snapshot.of(body)
        key = snapshot.key
        if state is not None and state.snapshot.ref.uid != snapshot.ref.uid:
            self.forget(*key)  # deleted and created again under the same name
            state = None
        if state is None:
            self._states[key] = ObjectState(snapshot, status_of(body))
            self._queue.add(key, Priority.CHANGE)
            return
        released, changed = self._states.seen_again(key, snapshot, status_of(body))
        if released is not None:
            self._ownership.release_soon(released, key)
        if changed:
            self._drift.retry_refused(state)
            self._queue.add(key, Priority.CHANGE)

    def gone(self, ref: ObjectRef) -> None:
        """A write found the object deleted: forgotten once the reconcile that wrote has ended, unless it
        was created again since (another uid)."""

        def forget() -> None:
            state = self._states.get((ref.namespace, ref.name))
            if state is not None and state.snapshot.ref.uid == ref.uid:
                self.forget(ref.namespace, ref.name)

        asyncio.get_running_loop().call_soon(forget)

    def known(self) -> list[Key]:
        """The objects seen and not deleted (a new listing is compared with them: kube/watched.py)."""
        return list(self._states)

    def forget(self, namespace: str, name: str) -> None:
        """A PhoneWebhook was deleted."""
        key = (namespace, name)
        self._queue.forget(key)
        if (state := self._states.pop(key, None)) is None:
            return
        self._resolver.forget(key)
        if state.held_by is not None:
            self._lanes.forget_held(state.held_by, key)
        if (claim := state.snapshot.claim) is not None:
            self._ownership.release_soon(claim, key)
            # Those waiting for the claim are decided again: after the grace, unless this one comes back.
            for waiting in self._ownership.waiting_for(claim, key):
                self._queue.add(waiting, Priority.CHANGE)

    def secret_changed(self, namespace: str, name: str, resource_version: str | None) -> None:
        """A Secret was read again (resource_version None: it does not exist)."""
        dependents, changed = self._resolver.secret_changed(namespace, name, resource_version)
        self._requeue(dependents, secret_changed=changed)
        self._account_status.secret_changed(namespace, name)

    def observe_account(self, body: Mapping[str, Any], kind: str) -> None:
        """A CamsAccount or ClusterCamsAccount was listed, added or modified."""
        account = Account.of(body, kind)
        self._account_changed(account.key, account)
        self._account_status.changed(account, body.get("status"))

    def known_accounts(self, kind: str) -> list[Key]:
        """The accounts of this kind seen and not deleted (a new listing is compared with them)."""
        return [(key.namespace, key.name) for key in self._resolver.accounts if key.kind == kind]

    def known_namespaces(self) -> list[Key]:
        return [("", name) for name in self._resolver.namespaces()]

    def forget_account(self, kind: str, namespace: str, name: str) -> None:
        self._account_changed(key := AccountKey(kind, namespace, name), None)
        self._account_status.forget(key)

    def _account_changed(self, key: AccountKey, account: Account | None) -> None:
        """Decide again the objects that used the account, name it, or name none while it is (or was)
        the default."""
        default = any(a is not None and a.default for a in (self._resolver.accounts.get(key), account))
        users = self._resolver.observe_account(account) if account else self._resolver.forget_account(key)
        self._lanes.forget_owner(str(key))  # its qps, as its objects' next calls say it again
        self._requeue(users | self._states.referring(key, default=default))

    def namespace_changed(
        self, name: str, labels: Mapping[str, str] | None, *, terminating: bool = False
    ) -> None:
        """A namespace's labels (None: the namespace is gone): they decide which accounts admit it; and
        whether it is being deleted (its Clear objects may then clear with the credentials they had)."""
        if self._resolver.namespace_labels(name, labels, terminating=terminating):
            self._requeue(self._states.in_namespace(name))

    def identity_recovered(self) -> None:
        """STS answers again: the objects that were refused RRSA credentials try again now."""
        self._requeue(self._states.with_reason("RRSAFailed"))

    def _requeue(self, keys: Iterable[Key], *, secret_changed: bool = False) -> None:
        for key in keys:
            if (state := self._states.get(key)) is not None:
                self._drift.retry_refused(state)
                state.attempts, state.epoch = 0, state.epoch + 1
                state.secret_changed |= secret_changed
                self._queue.add(key, Priority.CHANGE)
