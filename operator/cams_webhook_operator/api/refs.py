"""How the operator names one PhoneWebhook it acts on: shared by the decisions (decisions/state.py) and the
Kubernetes access (kube/api.py), which must not import each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A PhoneWebhook by namespace and name, and the uid that tells it from one created again since."""

    namespace: str
    name: str
    uid: str
