"""daprd's side of the placement protocol (Dapr ≥1.17), without any I/O.

A :class:`ClientProtocol` turns the server's ``PlacementOrder`` messages into the acks daprd
sends back and into new :class:`~.tables.ActorTables`. One instance lives for one stream: after
a stream error daprd starts over with a fresh state machine (version 0), and so does the client.

The rules, from daprd (contract §2.7):

- ``lock``: ``v = order.version``, or ``tables.version`` when that is 0. Enter LOCK and ack.
- ``update``: ``v`` below the current version closes the stream ("version mismatch"). Otherwise
  build one ring per type, enter UPDATE and ack.
- ``unlock``: ignored (no ack) unless the last operation was UPDATE and ``v`` is at least the
  current version. Otherwise the client becomes ready, enters UNLOCK and acks.
- Any other operation closes the stream ("unknown operation").

Acks carry exactly ``{operation, version, namespace, id}``; the REPORT carries
``{name, id, api_level: 20, namespace, entities, operation: REPORT}`` with no version or port.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from types import ModuleType

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.client.tables import ActorTables, build_tables, table_version

__all__ = ["API_LEVEL", "ClientProtocol", "Phase", "ProtocolError"]

#: What daprd ≥1.12 reports as its actor API level (ignored by servers since 1.17).
API_LEVEL = 20


class ProtocolError(Exception):
    """The server broke the protocol; daprd closes the stream and reconnects."""


class Phase(enum.Enum):
    """The last operation the client acted on."""

    REPORT = placement_pb2.REPORT
    LOCK = placement_pb2.LOCK
    UPDATE = placement_pb2.UPDATE
    UNLOCK = placement_pb2.UNLOCK


class ClientProtocol:
    """The per-stream state machine: feed it orders, send what it returns."""

    def __init__(
        self,
        *,
        app_id: str,
        namespace: str,
        host_name: str,
        ring_impl: ModuleType,
        tables: ActorTables | None = None,
    ) -> None:
        self.app_id = app_id
        self.namespace = namespace
        self.host_name = host_name
        self.ring_impl = ring_impl
        self.phase = Phase.REPORT
        #: The version of the last UPDATE applied on this stream (0 before the first).
        self.version = 0
        #: Whether an UNLOCK completed on this stream (daprd's placement Ready).
        self.ready = False
        #: The table of the last UPDATE; a previous stream's table may seed ring reuse.
        self.tables: ActorTables | None = tables

    def report(self, actor_types: Iterable[str]) -> placement_pb2.Host:
        """The REPORT daprd sends on connect and whenever its actor types change."""
        return placement_pb2.Host(
            name=self.host_name,
            id=self.app_id,
            api_level=API_LEVEL,
            namespace=self.namespace,
            entities=list(actor_types),
            operation=placement_pb2.REPORT,
        )

    def _ack(self, operation: placement_pb2.HostOperation, version: int) -> placement_pb2.Host:
        return placement_pb2.Host(
            operation=operation, version=version, namespace=self.namespace, id=self.app_id
        )

    @staticmethod
    def order_version(order: placement_pb2.PlacementOrder) -> int:
        if order.version:
            return int(order.version)
        return table_version(order.tables.version) if order.HasField("tables") else 0

    def receive(self, order: placement_pb2.PlacementOrder) -> placement_pb2.Host | None:
        """The ack to send for ``order`` (None: send nothing), or :class:`ProtocolError`."""
        version = self.order_version(order)
        operation = order.operation
        if operation == "lock":
            self.phase = Phase.LOCK
            return self._ack(placement_pb2.LOCK, version)
        if operation == "update":
            if version < self.version:
                raise ProtocolError(
                    f"version mismatch: update for version {version} after version {self.version}"
                )
            self.tables = build_tables(
                order.tables, version, ring_impl=self.ring_impl, previous=self.tables
            )
            self.version = version
            self.phase = Phase.UPDATE
            return self._ack(placement_pb2.UPDATE, version)
        if operation == "unlock":
            if self.phase is not Phase.UPDATE or version < self.version:
                return None
            self.phase = Phase.UNLOCK
            self.ready = True
            return self._ack(placement_pb2.UNLOCK, version)
        raise ProtocolError(f"unknown operation {operation!r}")
