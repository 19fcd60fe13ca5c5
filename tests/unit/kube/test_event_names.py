"""Names the operator gives to objects it creates in the API server."""

from __future__ import annotations

import re

import pytest

from cams_webhook_operator.kube.api import event_name

DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.mark.parametrize(
    "object_name",
    ["support-line", "a" * 253, "a" * 230 + "-" * 23, "b" * 235 + ".c" * 9],
    ids=["short", "longest", "cut-at-a-dash", "cut-at-a-dot"],
)
def test_event_names_are_valid_for_any_object_name(object_name: str) -> None:
    name = event_name(object_name, "0123456789abcdef")
    assert len(name) <= 253
    assert DNS_SUBDOMAIN.match(name), name
    assert name.endswith(".0123456789abcdef")
