"""The PhoneWebhook API: the pydantic models are the contract, and the CRD is generated from them."""

from cams_webhook_operator.api.models import (
    API_VERSION,
    CATEGORY,
    GROUP,
    KIND,
    PAUSED_ANNOTATION,
    PLURAL,
    RECONCILE_REQUEST_ANNOTATION,
    SHORT_NAME,
    SINGULAR,
    VERSION,
    Condition,
    PhoneWebhook,
    PhoneWebhookSpec,
    PhoneWebhookStatus,
    SecretReference,
)

__all__ = [
    "API_VERSION",
    "CATEGORY",
    "GROUP",
    "KIND",
    "PAUSED_ANNOTATION",
    "PLURAL",
    "RECONCILE_REQUEST_ANNOTATION",
    "SHORT_NAME",
    "SINGULAR",
    "VERSION",
    "Condition",
    "PhoneWebhook",
    "PhoneWebhookSpec",
    "PhoneWebhookStatus",
    "SecretReference",
]
