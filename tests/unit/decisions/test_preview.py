"""The plan command's verdicts on the operator's own plans (decisions/preview.py): each class from the
branch of reconcile.plan that makes it, the change field by field against a read, redacted, and the exit
code CI gates on."""

from __future__ import annotations

from cams_webhook_operator.cams.messages import LiveNumber
from cams_webhook_operator.decisions import preview as pv
from cams_webhook_operator.decisions import reconcile
from cams_webhook_operator.decisions.plans import Facts, Priority, webhook_update
from cams_webhook_operator.decisions.state import ObjectState
from cams_webhook_operator.tenancy.credentials import Resolved

from .objects import IN_SYNC, NO_SECRET, NOW, OPERATOR, OTHER, SETTINGS, STS_DOWN, read_here, state_of

HELD = LiveNumber("8613800001234", "https://a.example/x", "https://old.example/in?token=abc")


def _verdict(
    state: ObjectState, *, credentials: Resolved | object = OPERATOR, owner: object = None
) -> tuple[pv.Verdict, str, str, tuple[pv.FieldChange, ...]]:
    facts = Facts(now=NOW, priority=Priority.CHANGE, credentials=credentials, owner=owner)  # type: ignore[arg-type]
    decided = reconcile.plan(read_here(state), facts, SETTINGS)
    spec = state.snapshot.spec
    update = webhook_update(spec) if spec else None
    observe = spec is not None and spec.management_mode == "Observe"
    return pv.preview_of(decided, update, HELD, observe=observe)


def test_each_branch_of_the_planner_gets_its_verdict() -> None:
    assert _verdict(state_of(status=IN_SYNC))[0] is pv.Verdict.IN_SYNC
    assert _verdict(state_of(upCallbackUrl="https://new.example/in?token=xyz"))[0] is pv.Verdict.CHANGE
    assert _verdict(state_of(), owner=OTHER)[:2] == (pv.Verdict.CONFLICT, "Conflict")
    assert _verdict(state_of(), credentials=NO_SECRET)[:2] == (pv.Verdict.REFUSED, "SecretNotFound")
    assert _verdict(state_of(annotations={"camswebhook.io/paused": "true"}))[0] is pv.Verdict.PAUSED
    assert _verdict(state_of(phoneNumber="+86 138"))[:2] == (pv.Verdict.INVALID, "InvalidSpec")
    # CAMS or STS did not answer: the operator would try again, the plan cannot tell (not a refusal)
    assert _verdict(state_of(), credentials=STS_DOWN)[:2] == (pv.Verdict.UNKNOWN, "RRSAFailed")


def test_a_change_names_each_field_redacted_as_status_live_shows_it() -> None:
    verdict, _, _, changes = _verdict(
        state_of(upCallbackUrl="https://new.example/in?token=xyz", httpFlag=True)
    )
    assert verdict is pv.Verdict.CHANGE
    assert changes == (
        pv.FieldChange(
            "upCallbackUrl", "https://old.example/redacted?redacted", "https://new.example/redacted?redacted"
        ),
        pv.FieldChange("httpFlag", "?", "Y"),  # the read API does not return the flags
    )
    assert "token" not in repr(changes)


def test_an_observe_object_that_differs_lists_what_manage_would_change() -> None:
    state = state_of(managementMode="Observe", upCallbackUrl="https://new.example/in")
    verdict, reason, _, changes = _verdict(state)
    assert (verdict, [c.field for c in changes]) == (pv.Verdict.OBSERVED, ["upCallbackUrl"])
    assert reason in ("Observing", "Differs")


def test_the_exit_code_tells_no_change_changes_and_refusals_apart() -> None:
    def code(*verdicts: pv.Verdict) -> int:
        previews = [
            pv.Preview("ns", f"o{i}", "s", "1", v, account="a" if v is pv.Verdict.CHANGE else "")
            for i, v in enumerate(verdicts)
        ]
        return pv.exit_code(pv.totals(previews, qps={"a": 10.0}, reads=1))

    assert code(pv.Verdict.IN_SYNC, pv.Verdict.OBSERVED, pv.Verdict.PAUSED) == 0
    assert code(pv.Verdict.IN_SYNC, pv.Verdict.CHANGE) == 2
    assert code(pv.Verdict.CHANGE, pv.Verdict.CONFLICT) == 3
    assert code(pv.Verdict.INVALID) == 3
    assert code(pv.Verdict.CHANGE, pv.Verdict.INVALID, pv.Verdict.UNKNOWN) == 1


def test_the_totals_say_how_long_the_calls_take_at_each_accounts_quota() -> None:
    previews = [
        pv.Preview("ns", f"o{i}", "s", "1", pv.Verdict.CHANGE, account="account:1") for i in range(25)
    ]
    previews.append(pv.Preview("ns", "p", "s", "2", pv.Verdict.CHANGE, account="account:2"))
    summed = pv.totals(previews, qps={"account:1": 10.0, "account:2": 2.0}, reads=2)
    assert summed.calls_by_account == {"account:1": 25, "account:2": 1}
    assert summed.seconds_by_account == {"account:1": 2.5, "account:2": 0.5}


def test_an_observe_object_out_of_sync_shows_in_its_status_what_manage_would_change() -> None:
    """Switching to Manage is then a reviewed decision: the status lists the call's changes, redacted."""
    facts = Facts(now=NOW, priority=Priority.CHANGE, credentials=OPERATOR)
    differs = state_of(
        managementMode="Observe", upCallbackUrl="https://new.example/in?token=xyz", queueFlag=True
    )
    differs.status = differs.status.model_copy(update={"last_drift_check_time": NOW})
    status = reconcile.plan(read_here(differs), facts, SETTINGS).status
    assert status is not None
    assert [(c.spec_field, c.held, c.wanted) for c in status.manage_would_change or []] == [
        ("upCallbackUrl", "(none)", "https://new.example/redacted?redacted"),
        ("queueFlag", "?", "Y"),
    ]
    assert "token" not in status.model_dump_json()
    same = state_of(managementMode="Observe")
    same.status = same.status.model_copy(update={"last_drift_check_time": NOW})
    in_sync = reconcile.plan(read_here(same), facts, SETTINGS).status
    assert in_sync is not None
    assert in_sync.manage_would_change is None
