"""What the server sends: ``PlacementOrder`` messages and the ``PlacementTables`` they carry.

A table lists every actor host under each of its actor types, and each entry is the host's whole
reported ``Host``, entity list included. Built as a protobuf message, one host with T types is
copied T times, each copy holding all T names: O(T²) objects for one report. Here each host is
encoded once and that one ``bytes`` object is shared by every type it hosts, so what is kept in
memory grows with the distinct (host, actor type) pairs. The wire bytes of an UPDATE still grow
as T² (that is the protocol); they are assembled once per table state, in one ``join``, and
shared by every stream the order goes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property

from daprplane._proto.placement.v1 import placement_pb2

LOCK = "lock"
UPDATE = "update"
UNLOCK = "unlock"

# Wire tags (field number << 3 | wire type): 2 is length-delimited, 0 is varint.
_ORDER_TABLES, _ORDER_OPERATION, _ORDER_VERSION = b"\x0a", b"\x12", b"\x18"
_TABLES_ENTRIES, _TABLES_VERSION, _TABLES_REPLICATION_FACTOR = b"\x0a", b"\x12", b"\x20"
_TABLE_LOAD_MAP = b"\x1a"
_MAP_KEY, _MAP_VALUE = b"\x0a", b"\x12"


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _delimited(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


@dataclass(frozen=True)
class _HostEntry:
    """A host and its ``load_map`` entry (name -> Host) as wire bytes, shared by its types."""

    host: placement_pb2.Host
    wire: bytes


@dataclass(frozen=True)
class TypeTable:
    """One actor type's ``PlacementTable`` view: host name -> the Host as reported (shared)."""

    load_map: Mapping[str, placement_pb2.Host]


class EncodedTables:
    """A ``PlacementTables`` message kept as shared per-host encodings.

    ``entries`` mirrors the message's shape (actor type -> ``load_map``) without copying any
    Host; ``wire_size`` and ``pieces`` let an order embed the table without a second copy.
    """

    def __init__(
        self, hosts: Iterable[placement_pb2.Host], version: int, replication_factor: int
    ) -> None:
        self.version = version
        self.replication_factor = replication_factor
        # actor type -> host name -> entry. A later host with the same name replaces an earlier
        # one, as a protobuf map would.
        self._types: dict[str, dict[str, _HostEntry]] = {}
        for host in hosts:
            name = host.name.encode()
            entry_payload = _delimited(_MAP_KEY, name) + _delimited(
                _MAP_VALUE, host.SerializeToString()
            )
            entry = _HostEntry(host, _delimited(_TABLE_LOAD_MAP, entry_payload))
            for actor_type in host.entities:
                self._types.setdefault(actor_type, {})[host.name] = entry
        self._trailer = _delimited(_TABLES_VERSION, str(version).encode())
        if replication_factor:
            self._trailer += _TABLES_REPLICATION_FACTOR + _varint(replication_factor)

    @cached_property
    def entries(self) -> Mapping[str, TypeTable]:
        return {
            actor_type: TypeTable({name: entry.host for name, entry in hosts.items()})
            for actor_type, hosts in self._types.items()
        }

    def _type_headers(self) -> Iterator[tuple[bytes, dict[str, _HostEntry]]]:
        for actor_type, hosts in self._types.items():
            table_size = sum(len(entry.wire) for entry in hosts.values())
            key = _delimited(_MAP_KEY, actor_type.encode())
            value_header = _MAP_VALUE + _varint(table_size)
            entry_size = len(key) + len(value_header) + table_size
            yield _TABLES_ENTRIES + _varint(entry_size) + key + value_header, hosts

    @cached_property
    def wire_size(self) -> int:
        size = len(self._trailer)
        for header, hosts in self._type_headers():
            size += len(header) + sum(len(entry.wire) for entry in hosts.values())
        return size

    def pieces(self) -> Iterator[bytes]:
        """The serialized message in pieces whose concatenation is ``wire_size`` bytes."""
        for header, hosts in self._type_headers():
            yield header
            for entry in hosts.values():
                yield entry.wire
        yield self._trailer

    def message(self) -> placement_pb2.PlacementTables:
        """The table as a protobuf message: a full O(T²) copy, for inspection only."""
        tables: placement_pb2.PlacementTables = placement_pb2.PlacementTables.FromString(
            b"".join(self.pieces())
        )
        return tables

    def observed(self) -> Mapping[str, Mapping[str, placement_pb2.Host]]:
        """actor type -> host name -> Host, copied once per host (types share the copy)."""
        copies: dict[int, placement_pb2.Host] = {}
        result: dict[str, dict[str, placement_pb2.Host]] = {}
        for actor_type, hosts in self._types.items():
            view = result[actor_type] = {}
            for name, entry in hosts.items():
                copy = copies.get(id(entry))
                if copy is None:
                    copy = copies[id(entry)] = placement_pb2.Host()
                    copy.CopyFrom(entry.host)
                view[name] = copy
        return result


@dataclass(frozen=True, eq=False)
class Order:
    """One ``PlacementOrder``; its wire bytes are built once, however many streams it goes to."""

    operation: str
    version: int
    table: EncodedTables | None = field(default=None, repr=False)

    @cached_property
    def wire(self) -> bytes:
        tail = _delimited(_ORDER_OPERATION, self.operation.encode())
        if self.version:
            tail += _ORDER_VERSION + _varint(self.version)
        if self.table is None:
            return tail
        head = _ORDER_TABLES + _varint(self.table.wire_size)
        return b"".join([head, *self.table.pieces(), tail])

    @cached_property
    def tables(self) -> placement_pb2.PlacementTables | None:
        """The carried table decoded (for inspection and tests; costs a full copy)."""
        return None if self.table is None else self.table.message()


def build_tables(
    hosts: Iterable[placement_pb2.Host], version: int, replication_factor: int
) -> EncodedTables:
    """Every stored host under each of its actor types, keyed by its ``name``.

    The deprecated vnode fields (``hosts``, ``sorted_set``, ``total_load``, ``api_level``) stay
    empty: sidecars since 1.15 build their rings from ``load_map`` and ``replication_factor``.
    """
    return EncodedTables(hosts, version, replication_factor)


def observed_tables(
    tables: EncodedTables | placement_pb2.PlacementTables,
) -> Mapping[str, Mapping[str, placement_pb2.Host]]:
    """The hook's view of a table: actor type -> host name -> Host (copies)."""
    if isinstance(tables, EncodedTables):
        return tables.observed()
    result: dict[str, dict[str, placement_pb2.Host]] = {}
    for actor_type, table in tables.entries.items():
        hosts = result[actor_type] = {}
        for name, host in table.load_map.items():
            copy = placement_pb2.Host()
            copy.CopyFrom(host)
            hosts[name] = copy
    return result
