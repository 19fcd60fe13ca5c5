"""Who goes next within one account: priority levels first, then turns between namespaces."""

from __future__ import annotations

from cams_webhook_operator.decisions.fairqueue import FairQueue


def test_a_namespace_with_one_change_waits_one_turn_not_a_whole_backlog() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(1000):
        queue.push(f"a{i}", flow="team-a", priority=0)
    assert queue.pop() == "a0"
    queue.push("b0", flow="team-b", priority=0)  # arrives in the middle of team-a's rollout
    assert [queue.pop(), queue.pop()] == ["a1", "b0"]
    assert len(queue) == 998


def test_flows_take_turns_and_each_is_first_come_first_served() -> None:
    queue: FairQueue[str] = FairQueue()
    for item, flow in [("a1", "a"), ("a2", "a"), ("a3", "a"), ("b1", "b"), ("c1", "c"), ("c2", "c")]:
        queue.push(item, flow=flow, priority=0)
    assert queue.drain() == ["a1", "b1", "c1", "a2", "c2", "a3"]
    assert queue.pop() is None


def test_priority_levels_are_strict_and_fair_within_themselves() -> None:
    queue: FairQueue[str] = FairQueue()
    queue.push("routine-a", flow="a", priority=2)
    queue.push("retry-a", flow="a", priority=1)
    queue.push("change-b1", flow="b", priority=0)
    queue.push("change-b2", flow="b", priority=0)
    queue.push("change-a", flow="a", priority=0)
    assert queue.drain() == ["change-b1", "change-a", "change-b2", "retry-a", "routine-a"]


def test_within_a_flows_turns_its_keys_take_turns_and_the_flows_still_alternate() -> None:
    """Team A applies three accounts' objects one account after the other; team B has one change. Team A's
    accounts take turns inside team A's turns; team B still waits one item, not one per account of A."""
    queue: FairQueue[str] = FairQueue()
    for account in ("x", "y", "z"):
        for i in range(3):
            queue.push(f"a-{account}{i}", flow="team-a", priority=0, within=account)
    queue.push("b0", flow="team-b", priority=0, within="w")
    assert queue.drain() == [
        "a-x0", "b0", "a-y0", "a-z0", "a-x1", "a-y1", "a-z1", "a-x2", "a-y2", "a-z2",
    ]  # fmt: skip


def test_a_tenant_gains_no_turns_over_others_by_spreading_its_objects_over_many_keys() -> None:
    queue: FairQueue[str] = FairQueue()
    for i in range(100):
        queue.push(f"a{i}", flow="team-a", priority=0, within=f"secret-{i}")
        queue.push(f"b{i}", flow="team-b", priority=0, within="one-secret")
    first_twenty = [queue.pop() for _ in range(20)]
    assert sum(1 for item in first_twenty if item and item.startswith("b")) == 10
