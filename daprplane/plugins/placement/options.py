"""The placement service's options: flags checked and turned into what the service uses.

Errors are fatal at start (exit 1) with Dapr's wording where Dapr has one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daprplane.core import goduration

KEEPALIVE_MIN = timedelta(seconds=1)
KEEPALIVE_MAX = timedelta(seconds=10)
DEFAULT_REPLICATION_FACTOR = 100
MODES = ("standalone", "kubernetes")

#: gRPC's default receive limit, which Dapr's placement server (and daprd) keep.
DEFAULT_MAX_MESSAGE_SIZE = 4 * 1024 * 1024
#: Apps host a handful of actor types (each workflow app adds three); ten thousand is far beyond
#: any real one, yet a report of that many short names is still well inside the message limit.
DEFAULT_MAX_ACTOR_TYPES_PER_HOST = 10_000
#: A host's share of the UPDATE is its whole report once per actor type: T types of n bytes
#: take about T² x n. 64 MiB holds 1,000 types of 60-byte names, and is already 16 times what
#: a daprd accepts in one message; 10,000 short names would take over a gigabyte per stream.
DEFAULT_MAX_HOST_TABLE_SIZE = 64 * 1024 * 1024


class OptionsError(ValueError):
    pass


@dataclass(frozen=True)
class Peer:
    id: str
    address: str

    def __str__(self) -> str:
        # Go's %v of a struct: the peer list prints as [{id address} ...].
        return f"{{{self.id} {self.address}}}"


def parse_peers(entries: list[str] | tuple[str, ...]) -> list[Peer]:
    """``id=host:port`` entries; anything without exactly one ``=`` is dropped, as Dapr does."""
    peers = []
    for entry in entries:
        parts = entry.split("=", 2)
        if len(parts) != 2:
            continue
        peers.append(Peer(parts[0].strip(), parts[1].strip()))
    return peers


def _check_keepalive(name: str, value: timedelta) -> float:
    if not KEEPALIVE_MIN <= value <= KEEPALIVE_MAX:
        raise OptionsError(
            f"invalid value for {name}: value should be between 1s and 10s, "
            f"got {goduration.format(value)}"
        )
    return value.total_seconds()


@dataclass(frozen=True)
class Limits:
    """What one sidecar may make placement hold; a report beyond them ends its stream."""

    #: Largest message accepted from a sidecar, in bytes (``ResourceExhausted`` above).
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    #: Most actor types one Host may report (``InvalidArgument`` above).
    max_actor_types_per_host: int = DEFAULT_MAX_ACTOR_TYPES_PER_HOST
    #: Largest share of the placement table one host's report may take, in bytes: its encoded
    #: Host once per actor type (``ResourceExhausted`` above).
    max_host_table_size: int = DEFAULT_MAX_HOST_TABLE_SIZE


#: Environment variables that change the limits (daprplane's own: Dapr has no such settings).
ENV_MAX_MESSAGE_SIZE = "DAPRPLANE_PLACEMENT_MAX_MESSAGE_SIZE"
ENV_MAX_ACTOR_TYPES_PER_HOST = "DAPRPLANE_PLACEMENT_MAX_ACTOR_TYPES_PER_HOST"
ENV_MAX_HOST_TABLE_SIZE = "DAPRPLANE_PLACEMENT_MAX_HOST_TABLE_SIZE"
#: gRPC keeps its own receive limit, set above ours, in a C int.
_MAX_MESSAGE_SIZE_CEILING = 1 << 30


def _positive(env: Mapping[str, str], name: str, default: int, ceiling: int | None = None) -> int:
    raw = env.get(name, "").strip().replace("_", "")
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value <= 0 or (ceiling is not None and value > ceiling):
        bound = f" up to {ceiling}" if ceiling is not None else ""
        raise OptionsError(f"invalid value for {name}: {raw!r} is not a positive integer{bound}")
    return value


def limits_from_env(env: Mapping[str, str]) -> Limits:
    return Limits(
        max_message_size=_positive(
            env, ENV_MAX_MESSAGE_SIZE, DEFAULT_MAX_MESSAGE_SIZE, _MAX_MESSAGE_SIZE_CEILING
        ),
        max_actor_types_per_host=_positive(
            env, ENV_MAX_ACTOR_TYPES_PER_HOST, DEFAULT_MAX_ACTOR_TYPES_PER_HOST
        ),
        max_host_table_size=_positive(env, ENV_MAX_HOST_TABLE_SIZE, DEFAULT_MAX_HOST_TABLE_SIZE),
    )


def grpc_address(host: str, port: int) -> str:
    if not host:
        return f"[::]:{port}"
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


@dataclass(frozen=True)
class PlacementOptions:
    node_id: str
    peers: tuple[Peer, ...]
    port: int
    listen_address: str
    tls_enabled: bool
    metadata_enabled: bool
    replication_factor: int
    keepalive_time: float
    keepalive_timeout: float
    disseminate_timeout: timedelta
    coalesce_window: timedelta
    trust_domain: str
    trust_anchors_file: str
    sentry_address: str
    mode: str
    #: The control plane's namespace ($NAMESPACE): this service's SPIFFE ID and Sentry request.
    namespace: str
    limits: Limits = Limits()

    @property
    def grpc_address(self) -> str:
        return grpc_address(self.listen_address, self.port)

    @property
    def this_peer(self) -> Peer:
        return next(p for p in self.peers if p.id == self.node_id)

    @classmethod
    def from_flags(cls, flags: Any, environ: Mapping[str, str] | None = None) -> PlacementOptions:
        env = os.environ if environ is None else environ
        keepalive_time = _check_keepalive("keepalive-time", flags.keepalive_time)
        keepalive_timeout = _check_keepalive("keepalive-timeout", flags.keepalive_timeout)
        if flags.mode not in MODES:
            raise OptionsError(f"invalid mode: {flags.mode}")
        if not 0 <= flags.port <= 65535:
            raise OptionsError(f"invalid value for --port: {flags.port} is out of range")
        peers = tuple(parse_peers(list(flags.initial_cluster)))
        if not any(peer.id == flags.id for peer in peers):
            listed = " ".join(str(peer) for peer in peers)
            raise OptionsError(f"address for node {flags.id} not found in raft peers [{listed}]")
        if flags.disseminate_timeout <= timedelta(0):
            raise OptionsError("invalid value for disseminate-timeout: must be positive")
        if flags.disseminate_coalesce_window < timedelta(0):
            raise OptionsError(
                "invalid value for disseminate-coalesce-window: must not be negative"
            )
        replication_factor = flags.replication_factor
        if replication_factor <= 0:
            replication_factor = DEFAULT_REPLICATION_FACTOR
        return cls(
            node_id=flags.id,
            peers=peers,
            port=flags.port,
            listen_address=flags.listen_address,
            tls_enabled=flags.tls_enabled,
            metadata_enabled=flags.metadata_enabled,
            replication_factor=replication_factor,
            keepalive_time=keepalive_time,
            keepalive_timeout=keepalive_timeout,
            disseminate_timeout=flags.disseminate_timeout,
            coalesce_window=flags.disseminate_coalesce_window,
            trust_domain=flags.trust_domain,
            trust_anchors_file=flags.trust_anchors_file,
            sentry_address=flags.sentry_address,
            mode=flags.mode,
            namespace=env.get("NAMESPACE") or "default",
            limits=limits_from_env(env),
        )
