"""How the operator names what it acts on (an object, a number), once for every layer: the decisions and
the Kubernetes access must not import each other, and both need these."""

from __future__ import annotations

from dataclasses import dataclass

Key = tuple[str, str]  # an object by (namespace, name); the namespace is "" for a cluster-scoped one
Claim = tuple[str, str]  # a number by (custSpaceId, phoneNumber): what one claim (a Lease) covers


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A PhoneWebhook by namespace and name, and the uid that tells it from one created again since."""

    namespace: str
    name: str
    uid: str
