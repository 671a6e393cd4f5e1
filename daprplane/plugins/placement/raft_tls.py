"""mTLS between placement peers on the raft port, as Dapr runs raft with ``--tls-enabled``.

Both ends present this service's SVID and require the other's chain to verify to the trust
anchors and its SPIFFE ID to be placement's own (``spiffe://<td>/ns/<namespace>/dapr-placement``):
a sidecar's certificate, valid as it is, gets no vote. The SVID and anchors in force at each
handshake are used, so rotation needs no restart.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Callable

from daprplane.core.security import tls
from daprplane.core.security.anchors import TrustBundle
from daprplane.core.security.spiffe import SpiffeId
from daprplane.core.security.svid import Svid, SvidError

__all__ = ["ALPN_RAFT", "PeerRejectedError", "RaftTls"]

#: Said in the handshake so that neither side mistakes the other for a gRPC (h2) endpoint.
ALPN_RAFT = "daprplane-raft"


class PeerRejectedError(ConnectionError):
    """The other end is not a placement peer; the message says why."""


def _for_raft(context: ssl.SSLContext) -> ssl.SSLContext:
    context.set_alpn_protocols([ALPN_RAFT])
    return context


class RaftTls:
    def __init__(
        self,
        svid: Callable[[], Svid],
        anchors: Callable[[], TrustBundle],
        peer_id: SpiffeId,
        *,
        handshake_timeout: float = 5.0,
    ) -> None:
        self._svid = svid
        self._anchors = anchors
        self.peer_id = peer_id
        self.handshake_timeout = handshake_timeout
        self._servers = tls.ContextCache(
            lambda svid, anchors: _for_raft(tls.server_context(svid, anchors))
        )
        self._clients = tls.ContextCache(
            lambda svid, anchors: _for_raft(tls.client_context(anchors, svid))
        )

    def server_context(self) -> ssl.SSLContext:
        return self._servers.get(self._svid(), self._anchors())

    def client_context(self) -> ssl.SSLContext:
        return self._clients.get(self._svid(), self._anchors())

    def check_peer(self, writer: asyncio.StreamWriter) -> None:
        """:class:`PeerRejectedError` unless the verified peer is a placement peer."""
        ssl_object = writer.get_extra_info("ssl_object")
        if ssl_object is None:
            raise PeerRejectedError("connection is not TLS")
        try:
            identity = tls.peer_id(ssl_object)
        except SvidError as error:
            raise PeerRejectedError(str(error)) from None
        if identity != self.peer_id:
            raise PeerRejectedError(
                f"peer SPIFFE ID {identity} is not the placement ID {self.peer_id}"
            )
