"""The dissemination state machine of one namespace (Dapr ``loops/disseminator``).

Every table change runs a round: LOCK(v) to every stream of the namespace, then UPDATE(v,
tables) once every stream acknowledged the lock, then UNLOCK(v) once every stream acknowledged
the update. A newer change preempts a round in flight; joins that arrive during a round are
queued and admitted together after it; actor-less joins get a one-shot table push instead of a
round; a round that outlives ``--disseminate-timeout`` closes only the streams that lagged.

The machine is synchronous and owns all of its state: :class:`~.namespaces.NamespaceLoop` feeds
it one event at a time from a single task, and timers come back as events through the
:class:`Scheduler`, so nothing here is ever touched by two tasks and tests can drive it directly.

The loop hands over whatever is already queued as one batch (:meth:`Disseminator.begin_batch`,
:meth:`Disseminator.end_batch`). Inside a batch an idle machine admits nothing at once: joins,
leaves and table changes wait for the end of the batch and then share one round. Without that,
sidecars whose reports were read while a round was finishing would get one round for the first
of them and another for the rest.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core import goduration
from daprplane.plugins.placement import events
from daprplane.plugins.placement.store import HostStore
from daprplane.plugins.placement.streams import Status, TrackedStream
from daprplane.plugins.placement.tables import (
    LOCK,
    UNLOCK,
    UPDATE,
    EncodedTables,
    Order,
    build_tables,
)

REPORT, PHASE_LOCK, PHASE_UPDATE, PHASE_UNLOCK = (
    placement_pb2.REPORT,
    placement_pb2.LOCK,
    placement_pb2.UPDATE,
    placement_pb2.UNLOCK,
)

log = logging.getLogger("dapr.placement.disseminator")


class Cancellable(Protocol):
    def cancel(self) -> Any: ...


class Scheduler(Protocol):
    def schedule(self, delay: float, event: events.Event) -> Cancellable:
        """Deliver ``event`` to this machine's queue after ``delay`` seconds."""


@dataclass(frozen=True)
class Settings:
    replication_factor: int = 100
    timeout: timedelta = timedelta(seconds=8)
    coalesce_window: timedelta = timedelta(0)


#: ``(namespace, runtimes delta, actor runtimes delta)``
StreamsChanged = Callable[[str, int, int], None]
#: ``(namespace, version, tables)`` after every stream unlocked ``version``
RoundCompleted = Callable[[str, int, EncodedTables], None]


def _ignore_streams(namespace: str, runtimes: int, actors: int) -> None:
    pass


def _ignore_round(namespace: str, version: int, tables: EncodedTables) -> None:
    pass


class Disseminator:
    def __init__(
        self,
        namespace: str,
        scheduler: Scheduler,
        settings: Settings = Settings(),
        *,
        on_streams_changed: StreamsChanged = _ignore_streams,
        on_round_completed: RoundCompleted = _ignore_round,
    ) -> None:
        self.namespace = namespace
        self.settings = settings
        self._scheduler = scheduler
        self._on_streams_changed = on_streams_changed
        self._on_round_completed = on_round_completed
        self.current_operation: int = REPORT
        self.current_version = 0
        self.streams: dict[int, TrackedStream] = {}
        self.store = HostStore()
        self.streams_in_target_state = 0
        self.waiting_to_disseminate: list[events.ConnAdd] = []
        self.waiting_to_delete: list[int] = []
        self._coalesce_timer: Cancellable | None = None
        self._timeouts: dict[int, Cancellable] = {}
        #: The tables of the round in flight, built when its UPDATE goes out.
        self._round_tables: EncodedTables | None = None
        #: A batch of already-queued events is being handled (see the module docstring).
        self._in_batch = False
        #: The next admission must run a round even if the table did not change.
        self._round_due = False
        #: The table of the current store and version, dropped on every change.
        self._tables_cache: EncodedTables | None = None
        #: The UPDATE order of that table while some stream's outbox still holds it, so that
        #: pushes to actor-less joins share its wire bytes instead of building their own.
        self._update_ref: weakref.ref[Order] | None = None

    # -- events ------------------------------------------------------------------------------

    def handle(self, event: events.Event) -> None:
        if isinstance(event, events.ConnAdd):
            self._conn_add(event)
        elif isinstance(event, events.ReportedHost):
            self._reported_host(event.index, event.host)
        elif isinstance(event, events.ConnCloseStream):
            self._conn_close(event.index)
        elif isinstance(event, events.CoalesceFire):
            self._coalesce_fire()
        elif isinstance(event, events.DisseminationTimeout):
            self._timeout(event.version)

    def begin_batch(self) -> None:
        """The events handled until :meth:`end_batch` were all queued already: while idle,
        hold joins, leaves and table changes back so that they share one round."""
        self._in_batch = True

    def end_batch(self) -> None:
        self._in_batch = False
        if self.current_operation == REPORT and self._coalesce_timer is None:
            self._admit_waiting()

    @property
    def admission_pending(self) -> bool:
        """``end_batch`` would start a round or push tables (so more joins are worth awaiting)."""
        return (
            self.current_operation == REPORT
            and self._coalesce_timer is None
            and bool(self.waiting_to_disseminate or self.waiting_to_delete or self._round_due)
        )

    @property
    def coalescing(self) -> bool:
        """Admissions wait: for the coalesce window, or for the end of the batch."""
        return self._coalesce_timer is not None or self._in_batch

    def _conn_add(self, add: events.ConnAdd) -> None:
        if self.current_operation != REPORT or self.coalescing:
            self.waiting_to_disseminate.append(add)
            return
        self._apply_waiting_deletes()
        self._drop_orphans()
        self._add_stream(add)
        self._reported_host(add.index, add.host)

    def _reported_host(self, index: int, host: placement_pb2.Host) -> None:
        stream = self.streams.get(index)
        if stream is None:
            self._update_queued_join(index, host)
            return
        operation: int = host.operation
        if operation == placement_pb2.UNKNOWN:
            # Clients up to 1.16 send bare Hosts (a heartbeat every second): they ack the phase
            # in progress, or report when idle.
            operation = self.current_operation
        version = host.version if host.HasField("version") else 0
        if host.HasField("version") and version < self.current_version:
            return
        swallowed = stream.receiving_table is not None and operation != REPORT
        if swallowed and version == stream.receiving_table:
            # An ack of a one-shot push: not part of any round.
            if operation == PHASE_UNLOCK:
                stream.receiving_table = None
            return
        if operation == REPORT:
            self._do_report(stream, host)
        elif operation in (PHASE_LOCK, PHASE_UPDATE, PHASE_UNLOCK):
            self._ack(stream, operation)

    def _update_queued_join(self, index: int, host: placement_pb2.Host) -> None:
        """A report from a stream still waiting for admission replaces its initial Host."""
        if host.operation not in (placement_pb2.UNKNOWN, REPORT):
            return
        for position, add in enumerate(self.waiting_to_disseminate):
            if add.index == index:
                self.waiting_to_disseminate[position] = events.ConnAdd(index, host, add.connection)
                return

    def _do_report(self, stream: TrackedStream, host: placement_pb2.Host) -> None:
        if self._store_set(stream.index, host):
            if self.current_operation == REPORT and self._in_batch and not self._coalesce_timer:
                self._round_due = True  # with whatever else the batch brings
            else:
                self._start_round()
        elif stream.index not in self.store:
            self._push_table(stream)

    def _ack(self, stream: TrackedStream, phase: int) -> None:
        # Acks are deliberately not compared with the phase in progress (Dapr does not either):
        # a stream's state only counts once per phase because the counter resets between phases.
        if stream.current_state != phase:
            stream.current_state = phase
            self.streams_in_target_state += 1
        if self.streams_in_target_state >= len(self.streams):
            self._advance_phase()

    def _conn_close(self, index: int) -> None:
        for position, add in enumerate(self.waiting_to_disseminate):
            if add.index == index:
                # Never admitted: forget it, or it would join a round it can never ack. Its
                # report was received, though, so if it hosted actors the others still get the
                # round it would have caused (without it), as Dapr's sidecars do.
                del self.waiting_to_disseminate[position]
                if add.host.entities:
                    self._round_due = True
                return
        stream = self.streams.get(index)
        if stream is None:
            return
        if self.current_operation != REPORT and stream.current_state == self.current_operation:
            self.streams_in_target_state -= 1
        self._remove_stream(stream)
        stream.close(Status(grpc.StatusCode.CANCELLED, "stream closed"))
        if not self.streams:
            if self.current_operation != REPORT and self.waiting_to_disseminate:
                self._abandon_round()
            return
        if index not in self.store:
            # An actor-less stream needs no delete round, but it may have been the last one the
            # phase waited for (Dapr waits for the round's timeout then).
            if self.current_operation != REPORT and self.streams_in_target_state >= len(
                self.streams
            ):
                self._advance_phase()
            return
        self.waiting_to_delete.append(index)
        if self.current_operation != REPORT:
            if self.streams_in_target_state >= len(self.streams):
                self._advance_phase()
            return
        if self.coalescing:
            return
        self._process_waiting_deletes()

    def _abandon_round(self) -> None:
        """The last stream left mid-round while joins wait: admit them now.

        Dapr leaves such joins waiting for the round's timeout (up to ``--disseminate-timeout``)
        although nobody is left to acknowledge anything.
        """
        self._cancel_timeout(self.current_version)
        self.current_operation = REPORT
        for index in self.store.indexes():
            self._store_delete(index)
        self.waiting_to_delete.clear()
        self._process_waiting_disseminate(force=True)

    def _coalesce_fire(self) -> None:
        self._coalesce_timer = None
        if self.current_operation != REPORT:
            # A report started a round inside the window; its end arms the window again.
            return
        self._admit_waiting()

    def _admit_waiting(self) -> None:
        """Idle, at the end of a coalesce window or of a batch: one round for everything that
        waited (joins, leaves, table changes), or just the pushes to actor-less joins."""
        if not (self.waiting_to_disseminate or self.waiting_to_delete or self._round_due):
            return
        force = self._round_due or bool(self.waiting_to_delete)
        self._round_due = False
        self._apply_waiting_deletes()
        self._drop_orphans()
        self._process_waiting_disseminate(force=force)

    def _timeout(self, version: int) -> None:
        # A timer that fired just as its round completed is stale: only a round in flight
        # can time out.
        if version != self.current_version or self.current_operation == REPORT:
            return
        self._timeouts.pop(version, None)
        message = (
            f"dissemination timeout after {goduration.format(self.settings.timeout)} "
            f"for version {version}"
        )
        laggards = [s for s in self.streams.values() if s.current_state != self.current_operation]
        if laggards:
            log.warning(
                "Namespace %s: %s; closing %d of %d streams",
                self.namespace,
                message,
                len(laggards),
                len(self.streams),
            )
        for stream in laggards:
            self._remove_stream(stream)
            self._store_delete(stream.index)
            stream.close(Status(grpc.StatusCode.DEADLINE_EXCEEDED, message))
        self._apply_waiting_deletes()
        self.current_version += 1
        self.current_operation = REPORT
        for add in self._take_waiting_joins():
            self._add_stream(add)
            self._store_set(add.index, add.host)
        if self.streams:
            self._begin_round()

    # -- rounds ------------------------------------------------------------------------------

    def _start_round(self) -> None:
        """A new version, preempting any round in flight."""
        self._cancel_timeout(self.current_version)
        self.current_version += 1
        self._begin_round()

    def _begin_round(self) -> None:
        version = self.current_version
        self._timeouts[version] = self._scheduler.schedule(
            self.settings.timeout.total_seconds(), events.DisseminationTimeout(version)
        )
        self.current_operation = PHASE_LOCK
        self.streams_in_target_state = 0
        self._round_tables = None
        self._round_due = False
        lock = Order(LOCK, version)
        for stream in self.streams.values():
            stream.current_state = REPORT
            stream.receiving_table = None
            stream.lock(version, lock)

    def _advance_phase(self) -> None:
        version = self.current_version
        if self.current_operation == PHASE_LOCK:
            self.current_operation = PHASE_UPDATE
            self.streams_in_target_state = 0
            self._round_tables = self._tables()
            update = self._update_order()
            for stream in self.streams.values():
                stream.update(update)
        elif self.current_operation == PHASE_UPDATE:
            self.current_operation = PHASE_UNLOCK
            self.streams_in_target_state = 0
            unlock = Order(UNLOCK, version)
            for stream in self.streams.values():
                stream.unlock(unlock)
        elif self.current_operation == PHASE_UNLOCK:
            self._complete_round()

    def _complete_round(self) -> None:
        version = self.current_version
        self.current_operation = REPORT
        self.streams_in_target_state = 0
        self._cancel_timeout(version)
        tables, self._round_tables = self._round_tables or self._tables(), None
        self.waiting_to_delete.extend(i for i in self.store.indexes() if i not in self.streams)
        self._on_round_completed(self.namespace, version, tables)
        if self.settings.coalesce_window > timedelta(0):
            self._coalesce_timer = self._scheduler.schedule(
                self.settings.coalesce_window.total_seconds(), events.CoalesceFire()
            )
            return
        if self._in_batch:
            return  # end_batch admits everything queued by then, in one round
        if self.waiting_to_delete:
            self._process_waiting_deletes()
            return
        self._process_waiting_disseminate(force=self._round_due)

    def _process_waiting_deletes(self) -> None:
        if not self.waiting_to_delete or not self.streams:
            return
        self._apply_waiting_deletes()
        self._start_round()

    def _process_waiting_disseminate(self, *, force: bool) -> None:
        joined = self._take_waiting_joins()
        changed = False
        for add in joined:
            self._add_stream(add)
            changed = self._store_set(add.index, add.host) or changed
        if not changed and not force:
            for add in joined:
                stream = self.streams[add.index]
                if add.index not in self.store:
                    self._push_table(stream)
            return
        if self.streams:
            self._start_round()

    def _push_table(self, stream: TrackedStream) -> None:
        stream.receiving_table = self.current_version
        stream.push_table(self._update_order())

    # -- bookkeeping -------------------------------------------------------------------------

    def _tables(self) -> EncodedTables:
        """The table of the current store and version, built once for all its uses."""
        cached = self._tables_cache
        if cached is None or cached.version != self.current_version:
            cached = self._tables_cache = build_tables(
                self.store.hosts(), self.current_version, self.settings.replication_factor
            )
            self._update_ref = None
        return cached

    def _update_order(self) -> Order:
        tables = self._tables()
        order = self._update_ref() if self._update_ref is not None else None
        if order is None or order.table is not tables:
            order = Order(UPDATE, tables.version, tables)
            # Weak: the wire bytes of a big table must go once the last outbox sent them.
            self._update_ref = weakref.ref(order)
        return order

    def _store_set(self, index: int, host: placement_pb2.Host) -> bool:
        changed = self.store.set(index, host)
        if changed:
            self._tables_cache = None
        return changed

    def _store_delete(self, index: int) -> None:
        if index in self.store:
            self.store.delete(index)
            self._tables_cache = None

    def _drop_orphans(self) -> None:
        """Stored hosts whose stream is gone (the namespace's last stream left mid-round)."""
        for index in self.store.indexes():
            if index not in self.streams:
                self._store_delete(index)

    def _take_waiting_joins(self) -> list[events.ConnAdd]:
        joined, self.waiting_to_disseminate = self.waiting_to_disseminate, []
        return joined

    def _apply_waiting_deletes(self) -> None:
        for index in self.waiting_to_delete:
            self._store_delete(index)
        self.waiting_to_delete.clear()

    def _add_stream(self, add: events.ConnAdd) -> None:
        has_actors = len(add.host.entities) > 0
        self.streams[add.index] = TrackedStream(add.index, add.connection, has_actors=has_actors)
        self._on_streams_changed(self.namespace, 1, int(has_actors))

    def _remove_stream(self, stream: TrackedStream) -> None:
        del self.streams[stream.index]
        self._on_streams_changed(self.namespace, -1, -int(stream.has_actors))

    def _cancel_timeout(self, version: int) -> None:
        timer = self._timeouts.pop(version, None)
        if timer is not None:
            timer.cancel()

    def shutdown(self) -> None:
        """Cancel every timer (the namespace's last stream left)."""
        for timer in self._timeouts.values():
            timer.cancel()
        self._timeouts.clear()
        if self._coalesce_timer is not None:
            self._coalesce_timer.cancel()
            self._coalesce_timer = None

    # -- HTTP snapshot -----------------------------------------------------------------------

    def snapshot(self) -> tuple[list[placement_pb2.Host], int]:
        """Copies of the stored actor hosts sorted by name, and the current version."""
        hosts = []
        for host in self.store.hosts():
            copy = placement_pb2.Host()
            copy.CopyFrom(host)
            hosts.append(copy)
        hosts.sort(key=lambda h: h.name)
        return hosts, self.current_version
