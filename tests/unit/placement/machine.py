"""Driving a :class:`Disseminator` by hand: recording connections, timers fired by the test."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement import events
from daprplane.plugins.placement.disseminator import Disseminator, Settings
from daprplane.plugins.placement.streams import Status
from daprplane.plugins.placement.tables import Order

OPS = {
    "report": placement_pb2.REPORT,
    "lock": placement_pb2.LOCK,
    "update": placement_pb2.UPDATE,
    "unlock": placement_pb2.UNLOCK,
    "unknown": placement_pb2.UNKNOWN,
}


@dataclass
class RecordingConnection:
    sent: list[Order] = field(default_factory=list)
    status: Status | None = None

    def send(self, order: Order) -> None:
        if self.status is None:
            self.sent.append(order)

    def close(self, status: Status) -> None:
        if self.status is None:
            self.status = status

    def take(self) -> list[tuple[str, int]]:
        """(operation, version) of everything sent since the last take."""
        taken = [(o.operation, o.version) for o in self.sent]
        self.sent.clear()
        return taken


@dataclass
class Timer:
    delay: float
    event: events.Event
    cancelled: bool = False

    def cancel(self) -> None:
        self.cancelled = True


@dataclass
class ManualScheduler:
    timers: list[Timer] = field(default_factory=list)

    def schedule(self, delay: float, event: events.Event) -> Timer:
        timer = Timer(delay, event)
        self.timers.append(timer)
        return timer

    def pending(self) -> list[events.Event]:
        return [t.event for t in self.timers if not t.cancelled]


def host(
    name: str,
    entities: Iterable[str] = ("T",),
    *,
    id: str | None = None,
    namespace: str = "default",
    op: str = "report",
    version: int | None = None,
) -> placement_pb2.Host:
    message = placement_pb2.Host(
        name=name,
        id=id if id is not None else name,
        namespace=namespace,
        entities=list(entities),
        api_level=20,
        operation=OPS[op],  # type: ignore[arg-type]
    )
    if version is not None:
        message.version = version
    return message


class Harness:
    """One namespace's machine with named sidecars."""

    def __init__(self, **settings: object) -> None:
        self.scheduler = ManualScheduler()
        self.completed: list[tuple[int, placement_pb2.PlacementTables]] = []
        self.metric = [0, 0]

        def changed(namespace: str, runtimes: int, actors: int) -> None:
            self.metric[0] += runtimes
            self.metric[1] += actors

        self.machine = Disseminator(
            "default",
            self.scheduler,
            Settings(**settings),  # type: ignore[arg-type]
            on_streams_changed=changed,
            on_round_completed=lambda ns, v, t: self.completed.append((v, t)),
        )
        self.connections: dict[str, RecordingConnection] = {}
        self.indexes: dict[str, int] = {}
        self._next = 0

    def join(
        self, name: str, entities: Iterable[str] = ("T",), **kw: object
    ) -> RecordingConnection:
        connection = self.connections[name] = RecordingConnection()
        self.indexes[name] = self._next
        self.machine.handle(events.ConnAdd(self._next, host(name, entities, **kw), connection))  # type: ignore[arg-type]
        self._next += 1
        return connection

    def send(self, name: str, op: str, version: int | None = None, **kw: object) -> None:
        message = (
            host(name, **kw)
            if op == "report"
            else placement_pb2.Host(
                id=name,
                namespace="default",
                operation=OPS[op],  # type: ignore[arg-type]
            )
        )
        if op == "report":
            message.operation = OPS["report"]
        if version is not None:
            message.version = version
        self.machine.handle(events.ReportedHost(self.indexes[name], message))

    def ack(self, names: Iterable[str], op: str, version: int) -> None:
        for name in names:
            self.send(name, op, version)

    def leave(self, name: str) -> None:
        self.machine.handle(events.ConnCloseStream(self.indexes[name]))

    def take(self, name: str) -> list[tuple[str, int]]:
        return self.connections[name].take()

    def round(self, names: Iterable[str], version: int) -> None:
        """Every named stream acks the three phases of ``version``."""
        names = list(names)
        for phase in ("lock", "update", "unlock"):
            self.ack(names, phase, version)

    def fire_timeout(self) -> None:
        timers = [t for t in self.scheduler.timers if not t.cancelled]
        timeout = [t for t in timers if isinstance(t.event, events.DisseminationTimeout)][-1]
        timeout.cancelled = True
        self.machine.handle(timeout.event)

    def fire_coalesce(self) -> None:
        timers = [t for t in self.scheduler.timers if not t.cancelled]
        timer = [t for t in timers if isinstance(t.event, events.CoalesceFire)][-1]
        timer.cancelled = True
        self.machine.handle(timer.event)


def load_map(tables: placement_pb2.PlacementTables) -> dict[str, list[str]]:
    return {t: sorted(table.load_map) for t, table in tables.entries.items()}


SECOND = timedelta(seconds=1)
