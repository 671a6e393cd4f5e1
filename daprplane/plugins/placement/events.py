"""The events a namespace's disseminator consumes, one at a time, from its queue."""

from __future__ import annotations

from dataclasses import dataclass

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.streams import Connection


@dataclass(frozen=True)
class ConnAdd:
    """A stream whose first Host passed authorization."""

    index: int
    host: placement_pb2.Host
    connection: Connection


@dataclass(frozen=True)
class ReportedHost:
    """A later authorized Host from stream ``index``: a report or an acknowledgement."""

    index: int
    host: placement_pb2.Host


@dataclass(frozen=True)
class ConnCloseStream:
    """Stream ``index`` ended (EOF, cancellation, send failure); sent exactly once per stream."""

    index: int


@dataclass(frozen=True)
class CoalesceFire:
    """The post-round coalesce window elapsed."""


@dataclass(frozen=True)
class DisseminationTimeout:
    """Round ``version`` did not finish within ``--disseminate-timeout``."""

    version: int


Event = ConnAdd | ReportedHost | ConnCloseStream | CoalesceFire | DisseminationTimeout
