"""What the server sends: ``PlacementOrder`` messages and the ``PlacementTables`` they carry.

An :class:`Order` is built once per phase and sent to every stream of the namespace; its wire
bytes are serialised once and shared, because an UPDATE for a large namespace is big
(O(hosts x types^2)) and goes to every sidecar.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from daprplane._proto.placement.v1 import placement_pb2

LOCK = "lock"
UPDATE = "update"
UNLOCK = "unlock"


@dataclass(frozen=True, eq=False)
class Order:
    operation: str
    version: int
    tables: placement_pb2.PlacementTables | None = field(default=None, repr=False)

    @cached_property
    def message(self) -> placement_pb2.PlacementOrder:
        order = placement_pb2.PlacementOrder(operation=self.operation, version=self.version)
        if self.tables is not None:
            order.tables.CopyFrom(self.tables)
        return order

    @cached_property
    def wire(self) -> bytes:
        wire: bytes = self.message.SerializeToString()
        return wire


def build_tables(
    hosts: Iterable[placement_pb2.Host], version: int, replication_factor: int
) -> placement_pb2.PlacementTables:
    """Every stored host under each of its actor types, keyed by its ``name``.

    The deprecated vnode fields (``hosts``, ``sorted_set``, ``total_load``, ``api_level``) stay
    empty: sidecars since 1.15 build their rings from ``load_map`` and ``replication_factor``.
    """
    tables = placement_pb2.PlacementTables(
        version=str(version), replication_factor=replication_factor
    )
    for host in hosts:
        for entity in host.entities:
            tables.entries[entity].load_map[host.name].CopyFrom(host)
    return tables


def observed_tables(
    tables: placement_pb2.PlacementTables,
) -> Mapping[str, Mapping[str, placement_pb2.Host]]:
    """The hook's view of a table: actor type -> host name -> Host (copies)."""
    result: dict[str, dict[str, placement_pb2.Host]] = {}
    for actor_type, table in tables.entries.items():
        hosts = result[actor_type] = {}
        for name, host in table.load_map.items():
            copy = placement_pb2.Host()
            copy.CopyFrom(host)
            hosts[name] = copy
    return result
