"""Routing streams to their namespace's disseminator, one asyncio task per namespace.

A stream belongs to the namespace of its first Host. :class:`Namespaces` counts the streams of
each namespace (queued joins included) and drops a namespace's disseminator, with all of its
state, when the count reaches zero: the next stream there starts again at version 0, as in Dapr.
Routing itself is synchronous (it runs on the one event loop and never awaits), so the servicer
calls it directly; only the per-namespace :class:`NamespaceLoop` is a task.

Each loop takes what is queued as one batch (so that joins read together share a round) and
yields to the event loop between batches: a busy namespace never keeps the others, or the
streams' reads and writes, from running.
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

#: Most events handled before the loop yields. A batch is cheap per event (a queued join is an
#: append), but one event may complete a phase and build an UPDATE.
MAX_BATCH = 1024
#: Seconds without news that end the wait for more joins before a round starts.
SETTLE_QUIET = 0.01
#: Seconds after which the round starts anyway (joins that keep coming must not defer it).
SETTLE_MAX = 0.1


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
                batch = [await self._queue.get()]
                self._take_queued(batch)
                self.machine.begin_batch()
                running = self._handle(batch)
                if running:
                    running = await self._settle()
                self._end_batch()
                if not running:
                    return
                if not self._queue.empty():
                    # Queue.get does not yield while events are waiting: let the other
                    # namespaces and the streams' tasks run.
                    await asyncio.sleep(0)
        finally:
            self.machine.shutdown()

    async def _settle(self) -> bool:
        """Before a round starts, wait briefly for more of what is arriving at the same time.

        Sidecars that connect together reach the queue a few milliseconds apart (each stream's
        read completes, then its task runs); starting the round at the first of them would give
        it a round of its own and the others the next. So while a round is about to start, events
        are taken into the batch until ``SETTLE_QUIET`` passes without one, for at most
        ``SETTLE_MAX`` in all. False once the namespace is to stop.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SETTLE_MAX
        while self.machine.admission_pending:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                event = await asyncio.wait_for(self._queue.get(), min(SETTLE_QUIET, remaining))
            except TimeoutError:
                break
            batch = [event]
            self._take_queued(batch)
            if not self._handle(batch):
                return False
        return True

    def _take_queued(self, batch: list[events.Event | _Stop]) -> None:
        while len(batch) < MAX_BATCH and not self._queue.empty():
            batch.append(self._queue.get_nowait())

    def _handle(self, batch: list[events.Event | _Stop]) -> bool:
        """Handle ``batch`` in order; False once the namespace is to stop."""
        for event in batch:
            if isinstance(event, _Stop):
                return False
            try:
                self.machine.handle(event)
            except Exception:
                # A bug must cost one event, not the namespace (and never the server).
                log.exception("Namespace %s failed to handle %r", self.namespace, event)
        return True

    def _end_batch(self) -> None:
        try:
            self.machine.end_batch()
        except Exception:
            log.exception("Namespace %s failed to start a round", self.namespace)


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
