"""Events handled as one batch share one round; aborted joins and actor-less leaves never stall.

The machine is driven by hand (``Harness``); the last tests run real :class:`NamespaceLoop`
tasks to check what the loop adds: batches, the short wait for joins arriving together, and
that a busy namespace does not hold the others up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager

from daprplane.plugins.placement import events
from daprplane.plugins.placement.disseminator import REPORT, Disseminator, Settings
from daprplane.plugins.placement.namespaces import NamespaceLoop
from tests.unit.placement.machine import Harness, RecordingConnection, host, load_map


@contextmanager
def batch(h: Harness) -> Iterator[None]:
    h.machine.begin_batch()
    yield
    h.machine.end_batch()


def test_joins_in_one_batch_while_idle_share_the_first_round() -> None:
    h = Harness()
    with batch(h):
        for name in ("A", "B", "C"):
            h.join(name)
        assert h.take("A") == []  # nothing goes out before the batch ends
    for name in ("A", "B", "C"):
        assert h.take(name) == [("lock", 1)]
    h.round(["A", "B", "C"], 1)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "B", "C"]}


def test_the_last_ack_and_joins_behind_it_share_the_next_round() -> None:
    h = Harness()
    h.join("A")
    h.ack(["A"], "lock", 1)
    h.ack(["A"], "update", 1)
    h.take("A")
    with batch(h):
        h.ack(["A"], "unlock", 1)  # completes round 1
        h.join("B")
        h.join("C", entities=())
        h.join("D")
    assert h.take("A") == h.take("B") == h.take("C") == h.take("D") == [("lock", 2)]
    h.round(["A", "B", "C", "D"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "B", "D"]}


def test_without_batches_the_first_join_after_a_round_gets_a_round_alone() -> None:
    """What batches avoid: the machine alone cannot know that more joins are on their way."""
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.take("A")
    h.join("B")
    h.join("C")
    assert h.take("B") == [("lock", 2)] and h.take("C") == []


def test_a_report_a_leave_and_a_join_in_one_batch_make_one_round() -> None:
    h = Harness()
    for name in ("A", "B"):
        h.join(name)
    h.round(["A"], 1)
    h.round(["A", "B"], 2)
    for name in ("A", "B"):
        h.take(name)
    with batch(h):
        h.send("A", "report", entities=["T", "U"])
        h.leave("B")
        h.join("C")
    assert h.take("A") == h.take("C") == [("lock", 3)]
    h.round(["A", "C"], 3)
    assert load_map(h.completed[-1][1]) == {"T": ["A", "C"], "U": ["A"]}
    assert h.machine.current_operation == REPORT
    assert h.take("A") == [("update", 3), ("unlock", 3)]  # and no round after it


def test_an_actorless_join_in_a_batch_gets_its_push_at_the_end() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.take("A")
    with batch(h):
        h.join("X", entities=())
        assert h.take("X") == []
    assert h.take("X") == [("lock", 1), ("update", 1), ("unlock", 1)]
    assert h.take("A") == []


def test_a_join_that_aborts_in_its_batch_still_gives_the_others_a_round_without_it() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.take("A")
    with batch(h):
        h.join("B")
        h.leave("B")
    assert h.take("A") == [("lock", 2)] and h.take("B") == []
    h.round(["A"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A"]}
    assert list(h.machine.streams) == [h.indexes["A"]]


def test_a_queued_join_that_aborts_gives_the_others_a_round_after_this_one() -> None:
    h = Harness()
    h.join("A")
    h.join("B")  # queued behind round 1
    h.leave("B")
    h.round(["A"], 1)
    assert h.take("A") == [
        ("lock", 1),
        ("update", 1),
        ("unlock", 1),
        ("lock", 2),
    ]
    h.round(["A"], 2)
    assert load_map(h.completed[-1][1]) == {"T": ["A"]} and h.take("B") == []


def test_a_queued_actorless_join_that_aborts_causes_no_round() -> None:
    h = Harness()
    h.join("A")
    h.join("X", entities=())
    h.leave("X")
    h.round(["A"], 1)
    h.take("A")
    assert h.machine.current_operation == REPORT and h.take("X") == []


def test_an_actorless_stream_leaving_last_completes_the_phase() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    h.join("X", entities=())
    h.round(["X"], 1)  # the push's acks, swallowed
    h.join("B")
    h.ack(["A", "B"], "lock", 2)
    assert h.take("A")[-1] == ("lock", 2) and h.take("B") == [("lock", 2)]  # waiting for X
    h.leave("X")
    assert h.take("A") == h.take("B") == [("update", 2)]
    h.ack(["A", "B"], "update", 2)
    h.leave("X")  # a second close of the same stream changes nothing
    h.ack(["A", "B"], "unlock", 2)
    assert [v for v, _ in h.completed] == [1, 2]
    assert h.scheduler.pending() == []  # no timeout left armed


def test_pushes_share_one_table_while_the_store_is_unchanged() -> None:
    h = Harness()
    h.join("A")
    h.round(["A"], 1)
    x, y = h.join("X", entities=()), h.join("Y", entities=())
    assert x.sent[1] is y.sent[1]  # the same UPDATE order: its wire bytes are built once
    h.send("A", "report", entities=["U"])
    h.round(["A", "X", "Y"], 2)
    z = h.join("Z", entities=())
    assert load_map(z.sent[1].tables) == {"U": ["A"]}  # type: ignore[arg-type]


# -- the loop -------------------------------------------------------------------------------


def _machine(record: list[str]):  # type: ignore[no-untyped-def]
    def factory(namespace: str, loop: NamespaceLoop) -> Disseminator:
        return Disseminator(
            namespace,
            loop,
            Settings(),
            on_round_completed=lambda ns, v, _t: record.append(f"{ns}:{v}"),
        )

    return factory


async def test_the_loop_gathers_joins_that_arrive_together_into_one_round() -> None:
    loop = NamespaceLoop("default", _machine([]))
    connections = [RecordingConnection() for _ in range(4)]
    loop.post(events.ConnAdd(0, host("A"), connections[0]))
    await asyncio.sleep(0)  # the loop takes A alone and waits a moment for more
    for index in (1, 2, 3):
        loop.post(events.ConnAdd(index, host(f"N{index}"), connections[index]))
    while not connections[0].sent:
        await asyncio.sleep(0.001)
    assert [c.take() for c in connections] == [[("lock", 1)]] * 4
    loop.stop()
    await loop.task


async def test_a_flooded_namespace_does_not_hold_up_another() -> None:
    record: list[str] = []
    busy = NamespaceLoop("busy", _machine(record))
    quiet = NamespaceLoop("quiet", _machine(record))
    flooded = RecordingConnection()
    busy.post(events.ConnAdd(0, host("A", namespace="busy"), flooded))
    for _ in range(100_000):  # stale acks: each one is handled, none changes anything
        busy.post(events.ReportedHost(0, host("A", namespace="busy", op="lock", version=0)))
    joined = RecordingConnection()
    quiet.post(events.ConnAdd(0, host("B", namespace="quiet"), joined))
    while not joined.sent:
        await asyncio.sleep(0)
    assert busy._queue.qsize() > 0  # the other namespace was served while this one was busy
    for loop in (busy, quiet):
        loop.stop()
        await loop.task
