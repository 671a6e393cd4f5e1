"""How the placement client reaches a server: a plain channel, or mTLS as daprd dials it.

daprd dials placement with its SVID as the client certificate and accepts only the server
identity ``spiffe://<control-plane-td>/ns/<control-plane-ns>/dapr-placement``. gRPC's own TLS
cannot verify a SPIFFE ID, so the mTLS channel goes through the identity library's
:class:`~daprplane.core.security.dialer.SpiffeChannel`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import grpc

from daprplane.core.security.anchors import TrustAnchorSource
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.spiffe import SpiffeId

__all__ = ["ChannelCredentials", "InsecureCredentials", "MtlsCredentials", "placement_id"]


def placement_id(trust_domain: str = "localhost", namespace: str = "default") -> SpiffeId:
    """The identity daprd requires of the placement server."""
    return SpiffeId.for_app(trust_domain, namespace, "dapr-placement")


class ChannelCredentials(Protocol):
    """Opens one gRPC channel to ``address`` for the length of one stream."""

    def connect(self, address: str) -> contextlib.AbstractAsyncContextManager[grpc.aio.Channel]: ...


@dataclass(frozen=True)
class InsecureCredentials:
    """A plaintext channel (placement without ``--tls-enabled``)."""

    options: Sequence[tuple[str, Any]] = ()

    @contextlib.asynccontextmanager
    async def connect(self, address: str) -> AsyncIterator[grpc.aio.Channel]:
        channel = grpc.aio.insecure_channel(address, options=list(self.options))
        try:
            yield channel
        finally:
            await channel.close()


@dataclass(frozen=True)
class MtlsCredentials:
    """mTLS with this process's SVID, verifying the server's placement SPIFFE ID."""

    anchors: TrustAnchorSource
    svid: SvidSource
    #: The control plane's trust domain and namespace, which name the placement identity.
    trust_domain: str = "localhost"
    control_plane_namespace: str = "default"
    options: Sequence[tuple[str, Any]] = field(default=())

    @property
    def server_id(self) -> SpiffeId:
        return placement_id(self.trust_domain, self.control_plane_namespace)

    @contextlib.asynccontextmanager
    async def connect(self, address: str) -> AsyncIterator[grpc.aio.Channel]:
        # Imported here: the dialer is only needed with mTLS.
        from daprplane.core.security.dialer import SpiffeChannel

        connection = SpiffeChannel(
            address,
            anchors=self.anchors,
            authorize=allow_ids(self.server_id),
            svid=self.svid,
            options=self.options,
        )
        async with connection as channel:
            yield channel
