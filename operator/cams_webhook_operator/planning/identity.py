"""The credentials the one-shot commands (import, plan) read CAMS with: the operator's own chain, as a
ClusterCamsAccount with operatorIdentity gets them (environment AccessKey, RRSA, the node's role, a
credentials URI)."""

from __future__ import annotations

from cams_webhook_operator.settings import OperatorSettings
from cams_webhook_operator.tenancy.credentials import CredentialProblem, Resolved
from cams_webhook_operator.tenancy.resolver import CredentialResolver
from cams_webhook_operator.wiring import temporary_identity


async def operator_identity(settings: OperatorSettings) -> Resolved | CredentialProblem:
    temporary = temporary_identity(settings)
    try:
        return await CredentialResolver(
            operator=settings.operator_credentials(), temporary=temporary
        ).operator()
    finally:
        if temporary is not None:
            await temporary.aclose()
