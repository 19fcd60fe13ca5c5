"""The PhoneWebhook API: the pydantic models are the contract, and the CRD is generated from them."""

from cams_webhook_operator.api.models import (
    API_VERSION,
    CATEGORY,
    CLEAR_FINALIZER,
    DRIFT_INTERVAL_ANNOTATION,
    GROUP,
    KIND,
    PAUSED_ANNOTATION,
    PLURAL,
    RECONCILE_REQUEST_ANNOTATION,
    RELEASE_ANNOTATION,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    PhoneWebhookSpec,
    SecretReference,
)
from cams_webhook_operator.api.status_models import Condition, PhoneWebhookStatus

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "CLEAR_FINALIZER",
    "DRIFT_INTERVAL_ANNOTATION",
    "GROUP",
    "KIND",
    "PAUSED_ANNOTATION",
    "PLURAL",
    "RECONCILE_REQUEST_ANNOTATION",
    "RELEASE_ANNOTATION",
    "SHORT_NAME",
    "SINGULAR",
    "VERSION",
    "Condition",
    "PhoneWebhookSpec",
    "PhoneWebhookStatus",
    "SecretReference",
]
