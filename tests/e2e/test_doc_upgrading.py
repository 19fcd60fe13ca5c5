"""docs/upgrading.md's command that finds the objects refused for an invalid name after the upgrade to 0.2.1,
pasted as a reader would. The CRD step, the account and `helm upgrade` of that page are pasted by
tests/e2e/test_upgrade.py, in the upgrade it runs from the previous release."""

from __future__ import annotations

import json

from .docs import block
from .harness import Kubectl
from .helm_cli import Helm

DOC, TEST = "docs/upgrading.md", "tests/e2e/test_doc_upgrading.py"


def test_the_objects_refused_for_an_invalid_name_are_found_as_pasted(
    helm: Helm, kubectl: Kubectl, namespace: str
) -> None:
    """One object with the status the operator writes for a name stored before 0.2.1 (InvalidName), one
    Ready: the pasted line prints the first only. (0.2.0's CRDs storing such a name, and the operator
    refusing it, are tests/e2e/test_tenancy_names.py.)"""
    spec = {"custSpaceId": "s", "phoneNumber": "8613800001234", "statusCallbackUrl": "https://h.example/s"}
    for name, reason in (("stored-with-a-path", "InvalidName"), ("fine", "Applied")):
        body = {
            "apiVersion": "camswebhook.io/v1alpha1",
            "kind": "PhoneWebhook",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
        kubectl.apply_objects(body)
        ready = "False" if reason == "InvalidName" else "True"
        condition = {
            "type": "Ready",
            "status": ready,
            "reason": reason,
            "message": "m",
            "observedGeneration": 1,
            "lastTransitionTime": "2026-12-05T00:00:00Z",
        }
        status = {"status": {"observedGeneration": 1, "conditions": [condition]}}
        kubectl.run(
            "patch",
            "pwh",
            name,
            "-n",
            namespace,
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps(status),
        )
    found = helm.shell(block(DOC, TEST, "InvalidName")).stdout.splitlines()
    assert [line.split()[:2] for line in found] == [[namespace, "stored-with-a-path"]]
