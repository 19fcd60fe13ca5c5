"""docs/troubleshooting.md explains every reason the operator writes into a condition or an Event: each has
a row (reason, cause, fix)."""

from __future__ import annotations

import re
from pathlib import Path

from cams_webhook_operator.cams.outcomes import REFUSALS

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "operator" / "cams_webhook_operator"
# Quoted CamelCase words in the modules that decide reasons which are not reasons: condition types, label
# selector operators, CAMS's own codes and parameter names.
NOT_REASONS = {
    "InSync", "NumberHealthy", "DoesNotExist", "NotIn", "NoAnswer", "IncompleteSignature", "InternalError",
    "NoPermission", "ServiceUnavailable", "SignatureDoesNotMatch", "SignatureNonceUsed", "StatusCallbackUrl",
    "UpCallbackUrl", "UpdatePhoneWebhook", "UnknownError", "AccessKeyId",
}  # fmt: skip
# Reasons of one word, which the pattern below cannot tell from other words.
ONE_WORD = {"Applied", "Throttled", "Paused", "Observing", "Observed", "Differs", "Matches", "Conflict",
            "Cleared", "Released", "Healthy"}  # fmt: skip


def _reasons_in_code() -> set[str]:
    found: set[str] = set(ONE_WORD)
    for folder in ("decisions", "tenancy", "engine"):
        for module in (PACKAGE / folder).glob("*.py"):
            found |= set(re.findall(r'"([A-Z][a-z]+(?:[A-Z][a-z]+)+)"', module.read_text()))
    for path in ("cams/outcomes.py", "cams/instance_identity.py", "api/names.py"):
        found |= set(re.findall(r'"([A-Z][a-z]+(?:[A-Z][a-z]+)+)"', (PACKAGE / path).read_text()))
    return (found - NOT_REASONS) | {refusal.reason for refusal in REFUSALS.values()}


def _reasons_explained() -> set[str]:
    page = (REPO / "docs" / "troubleshooting.md").read_text()
    rows = [line.split("|")[1] for line in page.splitlines() if line.startswith("| `")]
    return {reason for cell in rows for reason in re.findall(r"`([A-Za-z]+)`", cell)}


def test_every_reason_the_operator_writes_has_a_cause_and_a_fix() -> None:
    missing = _reasons_in_code() - _reasons_explained()
    assert not missing, f"docs/troubleshooting.md explains no {sorted(missing)}"
    assert len(_reasons_in_code()) > 45


def test_every_reason_the_api_reference_names_is_explained() -> None:
    api = (REPO / "docs" / "api.md").read_text()
    table = [line.split("|")[5] for line in api.splitlines() if line.startswith("| ") and line.count("|") > 7]
    named = {r for cell in table for r in re.findall(r"`([A-Z][A-Za-z]+)`", cell)}
    assert named, "docs/api.md's conditions table was not found"
    assert not named - _reasons_explained() - NOT_REASONS
