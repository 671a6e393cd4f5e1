"""Routing streams to their namespace's disseminator, one asyncio task per namespace.

A stream belongs to the namespace of its first Host. :class:`Namespaces` counts the streams of
each namespace (queued joins included) and drops a namespace's disseminator, with all of its
state, when the count reaches zero: the next stream there starts again at version 0, as in Dapr.
Routing itself is synchronous (it runs on the one event loop and never awaits), so the servicer
calls it directly; only the per-namespace :class:`NamespaceLoop` is a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement import events
from daprplane.plugins.placement.disseminator import Cancellable, Disseminator
from daprplane.plugins.placement.streams import Connection, Status

log = logging.getLogger("dapr.placement.namespaces")

#: Builds the machine of a namespace, given the scheduler that feeds its loop.
MachineFactory = Callable[[str, "NamespaceLoop"], Disseminator]


class _Stop:
    """Queue sentinel: the namespace has no stream left."""


class NamespaceLoop:
    """The single task that feeds one namespace's :class:`Disseminator`, and its timers."""

    def __init__(self, namespace: str, factory: MachineFactory) -> None:
        self.namespace = namespace
        self._queue: asyncio.Queue[events.Event | _Stop] = asyncio.Queue()
        self._indexes = itertools.count()
        self.machine = factory(namespace, self)
        self.task = asyncio.create_task(self._run(), name=f"disseminator:{namespace}")

    def next_index(self) -> int:
        return next(self._indexes)

    def post(self, event: events.Event) -> None:
        self._queue.put_nowait(event)

    def schedule(self, delay: float, event: events.Event) -> Cancellable:
        return asyncio.get_running_loop().call_later(delay, self.post, event)

    def stop(self) -> None:
        self._queue.put_nowait(_Stop())

    async def _run(self) -> None:
        try:
            while True:
                event = await self._queue.get()
                if isinstance(event, _Stop):
                    return
                try:
                    self.machine.handle(event)
                except Exception:
                    # A bug must cost one event, not the namespace (and never the server).
                    log.exception("Namespace %s failed to handle %r", self.namespace, event)
        finally:
            self.machine.shutdown()


@dataclass(frozen=True)
class Ticket:
    """Where a connected stream lives: its namespace loop and its index there."""

    namespace: str
    index: int
    loop: NamespaceLoop


class Namespaces:
    def __init__(self, factory: MachineFactory) -> None:
        self._factory = factory
        self._loops: dict[str, NamespaceLoop] = {}
        self._counts: dict[str, int] = {}
        self._connections: dict[Ticket, Connection] = {}
        self._retired: set[asyncio.Task[None]] = set()

    def connect(self, host: placement_pb2.Host, connection: Connection) -> Ticket:
        namespace = host.namespace
        loop = self._loops.get(namespace)
        if loop is None:
            loop = self._loops[namespace] = NamespaceLoop(namespace, self._factory)
        self._counts[namespace] = self._counts.get(namespace, 0) + 1
        ticket = Ticket(namespace, loop.next_index(), loop)
        self._connections[ticket] = connection
        loop.post(events.ConnAdd(ticket.index, host, connection))
        return ticket

    def report(self, ticket: Ticket, host: placement_pb2.Host) -> None:
        if host.namespace != ticket.namespace:
            # Dapr routes by the message's namespace, so such a message acks or reports for the
            # stream with the same index in another namespace; it is dropped instead.
            log.warning(
                "Ignoring a host report for namespace %s on a stream of namespace %s",
                host.namespace,
                ticket.namespace,
            )
            return
        ticket.loop.post(events.ReportedHost(ticket.index, host))

    def disconnect(self, ticket: Ticket) -> None:
        if self._connections.pop(ticket, None) is None:
            return
        ticket.loop.post(events.ConnCloseStream(ticket.index))
        remaining = self._counts[ticket.namespace] = self._counts[ticket.namespace] - 1
        if remaining == 0 and self._loops.get(ticket.namespace) is ticket.loop:
            del self._counts[ticket.namespace]
            del self._loops[ticket.namespace]
            ticket.loop.stop()
            self._retired.add(ticket.loop.task)
            ticket.loop.task.add_done_callback(self._retired.discard)

    def machines(self) -> dict[str, Disseminator]:
        return {namespace: loop.machine for namespace, loop in self._loops.items()}

    def close_all(self, status: Status) -> None:
        """End every stream with ``status`` (leadership lost, shutting down)."""
        for connection in list(self._connections.values()):
            connection.close(status)

    async def aclose(self) -> None:
        loops = list(self._loops.values())
        self._loops.clear()
        self._counts.clear()
        tasks = [loop.task for loop in loops] + list(self._retired)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
