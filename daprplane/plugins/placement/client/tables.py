"""The client's view of a placement table: one hashing ring per actor type, as daprd keeps.

daprd ≥1.15 builds every ring itself from an UPDATE's ``load_map`` keys and
``replication_factor`` (the server sends no vnodes), looks an actor up by its ID alone on its
type's ring, and dials ``load_map[owner].name`` with app ID ``load_map[owner].id``.

A ring depends only on its set of host keys and the replication factor, so rings are shared:
types served by the same hosts (the usual case: one app with several actor types) get one ring,
and an UPDATE reuses the previous table's ring for every host set that did not change. That
plays the part of daprd's per-host vnode hash cache, for whole rings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from daprplane import ring as ring_module
from daprplane._proto.placement.v1 import placement_pb2
from daprplane.ring import NoHostsError

__all__ = [
    "ActorTables",
    "ActorTypeNotFoundError",
    "NoHostsError",
    "Placement",
    "PlacementNotReadyError",
    "TypeTable",
    "build_tables",
    "ring_module_for",
    "table_version",
]


class ActorTypeNotFoundError(LookupError):
    """The table has no entry for the actor type (daprd's ``ErrActorNoAddress``)."""

    def __init__(self, actor_type: str, actor_id: str, version: int) -> None:
        # daprd's text, with its actor key ``type||id``, then why.
        super().__init__(
            f"did not find address for actor {actor_type}||{actor_id}: "
            f"actor type {actor_type!r} is not in placement table version {version}"
        )
        self.actor_type = actor_type
        self.actor_id = actor_id
        self.version = version


class PlacementNotReadyError(LookupError):
    """No placement table has arrived yet."""


@dataclass(frozen=True)
class Placement:
    """Where an actor lives: the sidecar address daprd dials and that sidecar's app ID."""

    host: str
    app_id: str


def ring_module_for(implementation: str) -> ModuleType:
    """``"auto"`` (the selected ring, ``DAPRPLANE_RING``), ``"rust"`` or ``"python"``."""
    if implementation == "auto":
        return ring_module.select()
    return ring_module.implementation(implementation)


def table_version(text: str) -> int:
    """``PlacementTables.version`` as a number; anything unparsable counts as 0."""
    try:
        value = int(text)
    except ValueError:
        return 0
    return value if 0 <= value < 2**64 else 0


@dataclass(frozen=True)
class TypeTable:
    """One actor type: its ring (None when it has no hosts or RF ≤ 0) and its hosts by key."""

    ring: Any
    hosts: Mapping[str, placement_pb2.Host]

    def locate(self, actor_id: str) -> Placement:
        if self.ring is None:
            raise NoHostsError("no hosts added")
        host = self.hosts[self.ring.lookup(actor_id)]
        return Placement(host.name, host.id)


@dataclass(frozen=True)
class ActorTables:
    """A placement table as daprd holds it after an UPDATE. Immutable: an UPDATE makes a new one."""

    version: int
    replication_factor: int
    types: Mapping[str, TypeTable] = field(default_factory=dict)

    def locate(self, actor_type: str, actor_id: str) -> Placement:
        """daprd's lookup: the type picks the ring, the actor ID alone is hashed."""
        table = self.types.get(actor_type)
        if table is None:
            raise ActorTypeNotFoundError(actor_type, actor_id, self.version)
        return table.locate(actor_id)

    def hosts(self, actor_type: str) -> dict[str, tuple[str, ...]]:
        """Host key → entities, for one type (observability)."""
        table = self.types.get(actor_type)
        if table is None:
            raise ActorTypeNotFoundError(actor_type, "", self.version)
        return {key: tuple(host.entities) for key, host in table.hosts.items()}

    def rings(self) -> Iterable[Any]:
        """Every distinct ring object in this table."""
        seen: dict[int, Any] = {}
        for table in self.types.values():
            if table.ring is not None:
                seen.setdefault(id(table.ring), table.ring)
        return seen.values()

    def as_dict(self) -> dict[str, Any]:
        """A JSON-friendly summary: version, RF and each type's hosts as ``key → [name, id]``."""
        return {
            "version": self.version,
            "replication_factor": self.replication_factor,
            "types": {
                name: {key: [host.name, host.id] for key, host in sorted(t.hosts.items())}
                for name, t in sorted(self.types.items())
            },
        }


def _ring_key(ring: Any) -> tuple[int, frozenset[str]]:
    return ring.replication_factor, frozenset(ring.hosts)


def build_tables(
    tables: placement_pb2.PlacementTables,
    version: int,
    *,
    ring_impl: ModuleType,
    previous: ActorTables | None = None,
) -> ActorTables:
    """The rings for an UPDATE's tables, reusing ``previous``'s rings for unchanged host sets."""
    rf = int(tables.replication_factor)
    cache: dict[tuple[int, frozenset[str]], Any] = {}
    if previous is not None:
        for old in previous.rings():
            # A ring of the other implementation is never reused: the choice must hold.
            if type(old) is ring_impl.Ring:
                cache.setdefault(_ring_key(old), old)
    types: dict[str, TypeTable] = {}
    for actor_type, entry in tables.entries.items():
        hosts = dict(entry.load_map.items())
        ring = None
        if hosts and rf > 0:
            key = (rf, frozenset(hosts))
            ring = cache.get(key)
            if ring is None:
                with contextlib.suppress(ValueError, OverflowError):  # RF beyond the ring's range
                    ring = ring_impl.Ring(sorted(hosts), replication_factor=rf)
                if ring is not None:
                    cache[key] = ring
        types[actor_type] = TypeTable(ring, hosts)
    return ActorTables(version=version, replication_factor=rf, types=types)
