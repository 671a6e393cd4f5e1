"""``--tls-enabled``: this service's SVID from Sentry, mTLS in front of the gRPC server, and
mTLS between raft peers (:mod:`.raft_tls`).

The gRPC server itself listens on a private Unix socket behind an
:class:`~daprplane.core.security.front.MtlsFront`, because gRPC's TLS cannot verify daprd's
Ed25519 client certificates. Any client chain that verifies to the trust anchors is accepted
(Dapr's ``AuthorizeAny``); what the client may report is decided per message from its SPIFFE ID.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

import grpc

from daprplane.core.runtime import FatalError
from daprplane.core.security import bootstrap
from daprplane.core.security.anchors import TrustAnchorsFile
from daprplane.core.security.csr import KeyAlgorithm
from daprplane.core.security.front import MtlsFront
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.raft_tls import RaftTls

if TYPE_CHECKING:
    from daprplane.core.health import Target
    from daprplane.plugins.placement.options import PlacementOptions

APP_ID = "dapr-placement"


class PlacementIdentity:
    """This service's SVID from Sentry and the trust anchors, shared by the gRPC front and raft.

    Built with the service; :meth:`start` reads the anchors and fetches the first SVID.
    """

    def __init__(self, options: PlacementOptions, target: Target | None = None) -> None:
        self.options = options
        self._target = target
        self._anchors: TrustAnchorsFile | None = None
        self._svid: SvidSource | None = None

    @property
    def anchors(self) -> TrustAnchorsFile:
        if self._anchors is None:
            raise RuntimeError("the placement identity is not started")
        return self._anchors

    @property
    def svid(self) -> SvidSource:
        if self._svid is None:
            raise RuntimeError("the placement identity is not started")
        return self._svid

    def raft_tls(self) -> RaftTls:
        """mTLS between raft peers; the SVID and anchors are read at each handshake, so this
        may be built before :meth:`start`. ``ValueError`` for an invalid trust domain."""
        options = self.options
        return RaftTls(
            lambda: self.svid.current,
            lambda: self.anchors.current,
            SpiffeId.for_app(options.trust_domain, options.namespace, APP_ID),
        )

    async def start(self, stack: contextlib.AsyncExitStack) -> None:
        options = self.options
        self._anchors = await bootstrap.open_anchors(options.trust_anchors_file, stack)
        settings = bootstrap.IdentitySettings(
            APP_ID,
            options.sentry_address,
            options.namespace,
            options.trust_domain,
            key_algorithm=KeyAlgorithm.ED25519,
            kubernetes_mode=options.mode == "kubernetes",
        )
        self._svid = await bootstrap.start_svid(settings, self._anchors, stack, self._target)

    async def serve_mtls(self, server: grpc.aio.Server, stack: contextlib.AsyncExitStack) -> None:
        """Start ``server`` behind an mTLS front on the placement port."""
        options = self.options
        front = MtlsFront(self.svid, self.anchors)
        server.add_insecure_port(front.backend_target)
        await server.start()
        try:
            await front.start(options.listen_address or None, options.port)
        except OSError as error:
            await server.stop(None)
            raise FatalError(f"failed to listen on {options.grpc_address}: {error}") from None
        stack.push_async_callback(front.aclose)
