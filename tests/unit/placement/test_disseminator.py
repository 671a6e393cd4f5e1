"""The per-namespace dissemination state machine, driven event by event."""

from __future__ import annotations

from datetime import timedelta

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement import events
from daprplane.plugins.placement.disseminator import PHASE_LOCK, REPORT
from tests.unit.placement.machine import Harness, load_map

LOCKV = lambda v: [("lock", v)]  # noqa: E731


def test_contract_example_two_actor_sidecars_then_leave_then_actorless() -> None:
    h = Harness()
    h.join("A")
    assert h.take("A") == [("lock", 1)]
    h.ack(["A"], "lock", 1)
    update = h.connections["A"].sent[-1]
    assert (update.operation, update.version) == ("update", 1)
    assert update.tables is not None
    assert update.tables.replication_factor == 100 and update.tables.version == "1"
    assert load_map(update.tables) == {"T": ["A"]}
    stored = update.tables.entries["T"].load_map["A"]
    assert stored.operation == placement_pb2.REPORT and stored.api_level == 20
    assert not update.tables.entries["T"].hosts and not update.tables.entries["T"].sorted_set
    h.ack(["A"], "update", 1)
    assert h.take("A") == [("update", 1), ("unlock", 1)]
    h.ack(["A"], "unlock", 1)
    assert h.machine.current_operation == REPORT
    assert [v for v, _ in h.completed] == [1]

    h.join("B")
    assert h.take("A") == h.take("B") == [("lock", 2)]
    h.ack(["A"], "lock", 2)
    assert h.take("A") == []  # UPDATE waits for every stream
    h.ack(["B"], "lock", 2)
    assert h.take("A") == h.take("B") == [("update", 2)]
    assert load_map(h.completed[-1][1]) == {"T": ["A"]}
    h.ack(["A", "B"], "update", 2)
    assert h.take("B") == [("unlock", 2)]
    h.ack(["A", "B"], "unlock", 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "B"]}
    h.take("A")

    h.leave("B")
    assert h.take("A") == [("lock", 3)]
    h.round(["A"], 3)
    h.take("A")
    assert h.completed[-1][0] == 3 and load_map(h.completed[-1][1]) == {"T": ["A"]}

    h.join("C", entities=())
    c = h.connections["C"]
    assert [(o.operation, o.version) for o in c.sent] == [("lock", 3), ("update", 3), ("unlock", 3)]
    assert load_map(c.sent[1].tables) == {"T": ["A"]}  # type: ignore[arg-type]
    h.take("C")
    h.round(["C"], 3)  # the push's acks are swallowed
    assert h.take("A") == [] and h.machine.current_operation == REPORT
    assert h.metric == [2, 1]

    h.join("D")  # C now takes part in every round
    assert h.take("C") == h.take("A") == [("lock", 4)]
    h.ack(["A", "D"], "lock", 4)
    assert h.take("A") == []
    h.ack(["C"], "lock", 4)
    assert h.take("A") == [("update", 4)]


def test_join_during_round_is_queued_and_batched_into_one_round() -> None:
    h = Harness()
    h.join("A")
    h.take("A")
    h.join("B")
    h.join("C")
    assert h.take("B") == h.take("C") == []
    assert h.metric == [1, 1]
    h.round(["A"], 1)
    assert h.take("A") == [("update", 1), ("unlock", 1), ("lock", 2)]
    assert h.take("B") == h.take("C") == [("lock", 2)]
    h.round(["A", "B", "C"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "B", "C"]}


def test_queued_actorless_joins_get_a_push_after_the_round() -> None:
    h = Harness()
    h.join("A")
    h.join("X", entities=())
    h.round(["A"], 1)
    assert h.take("X") == [("lock", 1), ("update", 1), ("unlock", 1)]
    assert h.machine.current_operation == REPORT


def test_preemption_by_a_new_report_mid_round() -> None:
    h = Harness()
    h.join("A")
    h.ack(["A"], "lock", 1)
    h.send("A", "report", entities=["T", "U"])
    assert h.take("A") == [("lock", 1), ("update", 1), ("lock", 2)]
    h.ack(["A"], "update", 1)  # stale: ignored
    h.ack(["A"], "unlock", 1)
    assert h.take("A") == []
    h.round(["A"], 2)
    assert [v for v, _ in h.completed] == [2]
    assert load_map(h.completed[-1][1]) == {"T": ["A"], "U": ["A"]}
    timers = h.scheduler.timers
    assert [t.cancelled for t in timers] == [True, True]


def test_stream_never_gets_update_or_unlock_for_another_version_than_its_lock() -> None:
    h = Harness()
    a = h.join("A")
    h.ack(["A"], "lock", 1)
    # Another stream's close mid-round starts nothing; but a preempting report does.
    h.send("A", "report", entities=["U"])
    order_versions = {(o.operation, o.version) for o in a.sent}
    assert ("unlock", 1) not in order_versions


def test_unknown_operation_acks_current_phase_like_old_clients() -> None:
    h = Harness()
    h.join("A")
    for _phase in ("lock", "update", "unlock"):
        h.send("A", "unknown", entities=["T"])
    assert h.machine.current_operation == REPORT
    assert [v for v, _ in h.completed] == [1]


def test_same_report_changes_nothing_and_name_changes_do_not_count() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.take("A")
    h.send("A", "report", entities=["T"])
    message = placement_pb2.Host(
        name="elsewhere",
        id="A",
        namespace="default",
        entities=["T"],
        operation=placement_pb2.REPORT,
    )
    h.machine.handle(events.ReportedHost(h.indexes["A"], message))
    assert h.take("A") == []
    h.send("A", "report", entities=[])  # an actor host dropping its types: delete round
    assert h.take("A") == [("lock", 2)]


def test_actor_leave_triggers_delete_round_actorless_leave_nothing() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.join("X", entities=())
    h.round(["X"], 1)
    h.take("A")
    h.leave("X")
    assert h.take("A") == []
    assert h.metric == [1, 1]


def test_close_of_the_last_pending_stream_completes_the_phase() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.join("B")
    h.ack(["A"], "lock", 2)
    h.take("A")
    h.leave("B")
    # B's stream was the one missing: A moves on to UPDATE (B still in this round's table) ...
    update = h.connections["A"].sent[-1]
    assert h.take("A") == [("update", 2)]
    assert update.tables is not None and load_map(update.tables) == {"T": ["A", "B"]}
    h.ack(["A"], "update", 2)
    h.ack(["A"], "unlock", 2)
    # ... and the delete round follows at once.
    assert h.take("A") == [("unlock", 2), ("lock", 3)]
    h.round(["A"], 3)
    assert load_map(h.completed[-1][1]) == {"T": ["A"]}


def test_timeout_closes_only_laggards_with_exact_message_and_restarts() -> None:
    h = Harness(timeout=timedelta(seconds=1))
    h.join("A")
    h.round(["A"], 1)
    h.join("B")
    h.join("Q")  # queued behind round 2
    h.ack(["A"], "lock", 2)
    h.fire_timeout()
    b = h.connections["B"]
    assert b.status is not None
    assert b.status.code is grpc.StatusCode.DEADLINE_EXCEEDED
    assert b.status.details == "dissemination timeout after 1s for version 2"
    assert h.connections["A"].status is None and h.connections["Q"].status is None
    assert h.machine.current_version == 3 and h.machine.current_operation == PHASE_LOCK
    assert h.take("Q") == [("lock", 3)]
    assert ("lock", 3) in h.take("A")
    h.round(["A", "Q"], 3)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "Q"]}
    assert h.metric == [2, 2]


def test_stale_timeouts_are_ignored() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.machine.handle(events.DisseminationTimeout(1))
    assert h.connections["A"].status is None
    h.machine.handle(events.DisseminationTimeout(7))
    assert h.connections["A"].status is None


def test_coalesce_window_batches_joins_and_deletes_after_a_round() -> None:
    h = Harness(coalesce_window=timedelta(milliseconds=200))
    h.join("A")  # idle and no timer: fires at once
    assert h.take("A") == [("lock", 1)]
    h.round(["A"], 1)
    h.take("A")
    h.join("B")
    h.join("C")
    assert h.take("A") == [] and h.take("B") == []
    h.fire_coalesce()
    assert h.take("A") == h.take("B") == h.take("C") == [("lock", 2)]
    h.round(["A", "B", "C"], 2)
    h.take("A")
    h.leave("B")
    h.leave("C")
    assert h.take("A") == []
    h.fire_coalesce()
    assert h.take("A") == [("lock", 3)]
    h.round(["A"], 3)
    h.take("A")
    assert load_map(h.completed[-1][1]) == {"T": ["A"]}
    h.fire_coalesce()  # nothing queued: nothing happens
    assert h.take("A") == []


def test_coalesce_fire_with_deletes_and_actorless_adds_forces_a_round() -> None:
    h = Harness(coalesce_window=timedelta(milliseconds=200))
    h.join("A")
    h.join("B")
    h.round(["A"], 1)
    h.fire_coalesce()
    h.round(["A", "B"], 2)
    h.take("A")
    h.leave("B")
    h.join("X", entities=())
    h.fire_coalesce()
    assert h.take("A") == h.take("X") == [("lock", 3)]


def test_close_of_a_queued_join_forgets_it() -> None:
    h = Harness()
    h.join("A")
    h.join("B")
    h.leave("B")
    h.round(["A"], 1)
    # B's report reached the table before it left: one more round takes it out again.
    h.round(["A"], 2)
    assert h.machine.current_operation == REPORT and list(h.machine.streams) == [0]
    assert h.take("B") == []


def test_last_stream_leaving_mid_round_admits_queued_joins_at_once() -> None:
    h = Harness()
    h.join("A")
    h.join("B")
    h.leave("A")
    assert h.take("B") == [("lock", 2)]
    h.round(["B"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["B"]}


def test_versions_below_current_are_ignored_and_old_acks_cannot_complete() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.send("A", "report", entities=["U"])
    h.ack(["A"], "lock", 1)
    assert h.machine.current_operation == PHASE_LOCK
    h.ack(["A"], "lock", 2)
    assert h.take("A")[-1] == ("update", 2)


def test_report_from_queued_join_replaces_its_initial_host() -> None:
    h = Harness()
    h.join("A")
    h.join("B", entities=("T",))
    h.send("B", "report", entities=["V"])
    h.round(["A"], 1)
    h.round(["A", "B"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A"], "V": ["B"]}


def test_snapshot_sorted_by_name() -> None:
    h = Harness()
    h.join("b")
    h.join("a")
    h.round(["b"], 1)
    h.round(["a", "b"], 2)
    hosts, version = h.machine.snapshot()
    assert [x.name for x in hosts] == ["a", "b"] and version == 2
