"""One connected sidecar as the disseminator sees it (Dapr ``loops/stream``).

The disseminator never touches gRPC: it holds :class:`Connection` objects that can ``send`` an
order without blocking and ``close`` with the status the RPC must end with. The gRPC server
provides the real one; unit tests provide a list.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.tables import LOCK, UNLOCK, UPDATE, Order

REPORT = placement_pb2.REPORT


@dataclass(frozen=True)
class Status:
    """How an RPC ends: the code and message the sidecar sees."""

    code: grpc.StatusCode
    details: str


class Connection(Protocol):
    def send(self, order: Order) -> None:
        """Queue ``order`` for the sidecar; must not block. Ignored once closed."""

    def close(self, status: Status) -> None:
        """End the RPC with ``status``; idempotent (the first status wins)."""


class TrackedStream:
    """A connection plus the per-stream protocol state the disseminator keeps.

    The send rules are Dapr's (``stream/dissemination.go``): a stream never receives an UPDATE or
    UNLOCK for a version other than the last LOCK it was sent, so a preempted round's late
    phases cannot reach a sidecar that already moved on.
    """

    def __init__(self, index: int, connection: Connection, *, has_actors: bool) -> None:
        self.index = index
        self.connection = connection
        #: Entities were non-empty in the first message (the ``actor_runtimes_total`` metric).
        self.has_actors = has_actors
        #: The last phase this stream acknowledged (REPORT: none in this round).
        self.current_state: int = REPORT
        #: Version of a one-shot table push whose acknowledgements must be swallowed.
        self.receiving_table: int | None = None
        self.last_lock: int | None = None

    def lock(self, version: int, order: Order | None = None) -> None:
        if self.last_lock is not None and self.last_lock > version:
            return
        self.last_lock = version
        self.connection.send(order or Order(LOCK, version))

    def update(self, order: Order) -> None:
        if self.last_lock == order.version:
            self.connection.send(order)

    def unlock(self, order: Order) -> None:
        if self.last_lock == order.version:
            self.connection.send(order)

    def push_table(self, update: Order) -> None:
        """lock, update and unlock back to back, without waiting for acks (actor-less joins).

        ``last_lock`` is left alone: the push is outside the round protocol.
        """
        self.connection.send(Order(LOCK, update.version))
        self.connection.send(update)
        self.connection.send(Order(UNLOCK, update.version))

    def close(self, status: Status) -> None:
        self.connection.close(status)


__all__ = ["LOCK", "UNLOCK", "UPDATE", "Connection", "Status", "TrackedStream"]
