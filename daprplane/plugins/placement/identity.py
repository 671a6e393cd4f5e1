"""``--tls-enabled``: this service's SVID from Sentry, and mTLS in front of the gRPC server.

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
from daprplane.core.security.anchors import TrustAnchorsError, TrustAnchorsFile
from daprplane.core.security.front import MtlsFront
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient

if TYPE_CHECKING:
    from daprplane.plugins.placement.service import PlacementService

APP_ID = "dapr-placement"


async def serve_mtls(
    service: PlacementService, server: grpc.aio.Server, stack: contextlib.AsyncExitStack
) -> None:
    options = service.options
    anchors = TrustAnchorsFile(options.trust_anchors_file)
    try:
        await anchors.start()
    except TrustAnchorsError as error:
        raise FatalError(str(error)) from None
    stack.push_async_callback(anchors.aclose)
    sentry = SentryClient(
        address=options.sentry_address,
        anchors=anchors,
        app_id=APP_ID,
        namespace=options.namespace,
        control_plane_trust_domain=options.trust_domain,
        control_plane_namespace=options.namespace,
        kubernetes_mode=options.mode == "kubernetes",
    )
    svid = SvidSource(sentry.sign, target=service.provider_target)
    await svid.start()
    stack.push_async_callback(svid.aclose)

    front = MtlsFront(svid, anchors)
    server.add_insecure_port(front.backend_target)
    await server.start()
    try:
        await front.start(options.listen_address or None, options.port)
    except OSError as error:
        await server.stop(None)
        raise FatalError(f"failed to listen on {options.grpc_address}: {error}") from None
    stack.push_async_callback(front.aclose)
