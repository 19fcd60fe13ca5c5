"""The contract: the pydantic models of PhoneWebhook, CamsAccount and ClusterCamsAccount (the CRDs are
generated from them), names as Kubernetes validates them, and how the operator names an object and a number.

May import: nothing of the operator's (pydantic only). Never the CAMS client: the two do not know each
other.
"""

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
