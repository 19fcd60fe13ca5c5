"""kopf wiring only: settings in one startup handler, and watch events handed to the controller.

Handlers here never call CAMS and never sleep: they record what they saw and return, so kopf's watch
streams keep flowing while the controller's workers do the slow part at the pace of the CAMS quota.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import kopf

from cams_webhook_operator.api.models import GROUP, PLURAL, VERSION
from cams_webhook_operator.cams.client import CamsClient
from cams_webhook_operator.controller import Controller
from cams_webhook_operator.kube import KubeApi, load_api_client
from cams_webhook_operator.reconcile import Claimant
from cams_webhook_operator.settings import OperatorSettings


@kopf.index(GROUP, VERSION, PLURAL)
def phonewebhook_claims(spec: kopf.Spec, meta: kopf.Meta, namespace: str | None, name: str, **_: Any) -> Any:
    """Who claims which number. kopf fills indexes from the initial listing before it invokes any other
    handler, so the controller never mistakes a later claimant for the first after a restart."""
    space, number = spec.get("custSpaceId"), spec.get("phoneNumber")
    if not isinstance(space, str) or not isinstance(number, str):
        return None
    return {(space, number): Claimant(str(meta.get("creationTimestamp", "")), namespace or "", name)}


@kopf.on.startup()
async def start_controller(
    settings: kopf.OperatorSettings,
    memo: kopf.Memo,
    logger: kopf.Logger,
    **kwargs: Any,
) -> None:
    # kopf passes indexes by name as keyword arguments; its typing of startup handlers does not list them.
    claims: kopf.Index[tuple[str, str], Claimant] = kwargs["phonewebhook_claims"]
    # kopf's bookkeeping lives under our group, not kopf.zalando.org.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    # kopf would turn its own log lines into Events; the controller posts the Events that matter.
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 300
    settings.networking.request_timeout = 60

    operator_settings = OperatorSettings()
    cams = CamsClient(endpoint=operator_settings.endpoint, timeout_seconds=operator_settings.timeout_seconds)
    controller = Controller(
        settings=operator_settings,
        cams=cams,
        kube=KubeApi(load_api_client()),
        claimants_of=lambda claim: list(claims.get(claim, ())),
    )
    if operator_settings.metrics_port:
        controller.metrics.serve(host=operator_settings.metrics_host, port=operator_settings.metrics_port)
    memo.controller = controller
    memo.cams = cams
    memo.controller_task = asyncio.create_task(controller.run(), name="controller")
    logger.info(
        "Started %d workers; CAMS endpoint %s at %.1f calls/s per account",
        operator_settings.workers,
        operator_settings.endpoint,
        operator_settings.qps,
    )


@kopf.on.cleanup()
async def stop_controller(memo: kopf.Memo, **_: Any) -> None:
    task: asyncio.Task[None] | None = getattr(memo, "controller_task", None)
    if task is not None:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    cams: CamsClient | None = getattr(memo, "cams", None)
    if cams is not None:
        await cams.aclose()


@kopf.on.event(GROUP, VERSION, PLURAL)
def phonewebhook_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    controller: Controller = memo.controller
    body = event["object"]
    if event.get("type") == "DELETED":
        controller.forget(body["metadata"]["namespace"], body["metadata"]["name"])
    else:
        controller.observe(body)


@kopf.on.event("", "v1", "secrets")
def secret_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    # A rotated or newly created Secret re-reconciles exactly the objects that name it, at once.
    controller: Controller = memo.controller
    meta = event["object"]["metadata"]
    deleted = event.get("type") == "DELETED"
    controller.secret_changed(
        meta["namespace"], meta["name"], None if deleted else meta.get("resourceVersion")
    )
