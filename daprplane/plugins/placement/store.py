"""The actor hosts of one namespace, keyed by stream index (Dapr ``disseminator/store``).

Only hosts with at least one actor type are kept: actor-less sidecars receive the table but are
never placed in it. ``set`` reports whether the table content changed, which is what starts a
dissemination round.
"""

from __future__ import annotations

from collections.abc import Iterator

from daprplane._proto.placement.v1 import placement_pb2


class HostStore:
    def __init__(self) -> None:
        self._hosts: dict[int, placement_pb2.Host] = {}

    def __contains__(self, index: object) -> bool:
        return index in self._hosts

    def __len__(self) -> int:
        return len(self._hosts)

    def indexes(self) -> list[int]:
        return list(self._hosts)

    def hosts(self) -> Iterator[placement_pb2.Host]:
        return iter(self._hosts.values())

    def set(self, index: int, host: placement_pb2.Host) -> bool:
        """Store ``host`` (its entities sorted in place); True when the table changes.

        ``name`` and ``port`` are deliberately not compared, as in Dapr: a sidecar that only moves
        address keeps the old entry until its types, app ID or namespace change.
        """
        host.entities.sort()
        stored = self._hosts.get(index)
        if stored is None:
            if not host.entities:
                return False
            self._hosts[index] = host
            return True
        if (
            list(stored.entities) == list(host.entities)
            and stored.id == host.id
            and stored.namespace == host.namespace
        ):
            return False
        if host.entities:
            self._hosts[index] = host
        else:
            del self._hosts[index]
        return True

    def delete(self, index: int) -> None:
        self._hosts.pop(index, None)
