"""mTLS servers: the ssl-terminated front (Ed25519 clients, like daprd) and gRPC's own TLS."""

from __future__ import annotations

from datetime import timedelta

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security.anchors import StaticTrustAnchors, TrustBundle
from daprplane.core.security.authz import allow_ids, allow_namespace
from daprplane.core.security.credentials import grpc_server_credentials
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.front import MtlsFront
from daprplane.core.security.rotation import SvidSource
from tests.integration.security.servers import (
    WhoAmI,
    grpc_server,
    served_certificate,
    static_source,
)
from tests.pki import SentryCA

SERVER_ID = "spiffe://localhost/ns/dapr-system/dapr-placement"
CLIENT_ID = "spiffe://public/ns/default/myapp"


async def _call(
    port: int, anchors: TrustBundle, client: SvidSource | None
) -> tuple[str | None, str | None]:
    """(caller ID the server saw, connection error) of one RPC with a client certificate."""
    async with SpiffeChannel(
        f"127.0.0.1:{port}",
        anchors=StaticTrustAnchors(anchors),
        authorize=allow_ids(SERVER_ID),
        svid=client,
    ) as channel:
        try:
            response = await sentry_pb2_grpc.CAStub(channel).SignCertificate(
                sentry_pb2.SignCertificateRequest(), timeout=3
            )
        except grpc.aio.AioRpcError as error:
            return None, f"{error.code().name}: {error.details()}"
        return response.workload_certificate.decode(), None


@pytest.fixture
def ca() -> SentryCA:
    return SentryCA()


async def test_front_accepts_ed25519_clients_and_authz_sees_their_id(
    ca: SentryCA,
) -> None:
    server_svid = await static_source(ca.svid(SERVER_ID))
    front = MtlsFront(server_svid, StaticTrustAnchors(ca.bundle))
    servicer = WhoAmI()
    async with grpc_server(servicer, lambda s: s.add_insecure_port(front.backend_target)):
        port = await front.start("127.0.0.1", 0)
        try:
            client = await static_source(ca.svid(CLIENT_ID))  # Ed25519, as daprd's
            assert await _call(port, ca.bundle, client) == (CLIENT_ID, None)

            seen, error = await _call(port, ca.bundle, None)  # no client certificate
            assert seen is None and error is not None and error.startswith("UNAVAILABLE")

            stranger = SentryCA()
            impostor = await static_source(stranger.svid(CLIENT_ID))
            seen, error = await _call(port, ca.bundle, impostor)  # chain from another CA
            assert seen is None and error is not None
            assert servicer.calls == 1
        finally:
            await front.aclose()


async def test_front_authorizer_and_rotation(ca: SentryCA) -> None:
    svids = [ca.svid(SERVER_ID, ttl=timedelta(hours=1)) for _ in range(2)]
    server_svid = SvidSource(lambda: svids.pop(0))
    await server_svid.start()
    front = MtlsFront(
        server_svid, StaticTrustAnchors(ca.bundle), authorize=allow_namespace("default")
    )
    async with grpc_server(WhoAmI(), lambda s: s.add_insecure_port(front.backend_target)):
        port = await front.start("127.0.0.1", 0)
        try:
            first = server_svid.current
            assert (await served_certificate(port, ca)) == first.leaf
            other_ns = await static_source(ca.svid("spiffe://public/ns/prod/myapp"))
            seen, error = await _call(port, ca.bundle, other_ns)
            assert seen is None and error is not None
            second = await server_svid.renew()
            assert (await served_certificate(port, ca)) == second.leaf
            client = await static_source(ca.svid(CLIENT_ID))
            assert await _call(port, ca.bundle, client) == (CLIENT_ID, None)
        finally:
            await front.aclose()


async def test_grpc_terminated_mtls_with_rsa_or_ecdsa_clients(ca: SentryCA) -> None:
    server_svid = await static_source(ca.svid(SERVER_ID))
    anchors = StaticTrustAnchors(ca.bundle)
    credentials = grpc_server_credentials(server_svid, anchors, require_client_auth=True)
    servicer = WhoAmI()
    async with grpc_server(
        servicer, lambda s: s.add_secure_port("127.0.0.1:0", credentials)
    ) as port:
        client = await static_source(
            ca.svid(CLIENT_ID, key=ec.generate_private_key(ec.SECP256R1()))
        )
        assert await _call(port, ca.bundle, client) == (CLIENT_ID, None)
        assert (await _call(port, ca.bundle, None))[1] is not None
        stranger = await static_source(
            SentryCA().svid(CLIENT_ID, key=ec.generate_private_key(ec.SECP256R1()))
        )
        assert (await _call(port, ca.bundle, stranger))[1] is not None
        assert servicer.calls == 1


async def test_grpc_tls_still_cannot_verify_ed25519_clients(ca: SentryCA) -> None:
    """Canary for grpc#24252, the reason MtlsFront exists: if this starts failing, gRPC can
    terminate daprd's mTLS itself."""
    server_svid = await static_source(ca.svid(SERVER_ID))
    anchors = StaticTrustAnchors(ca.bundle)
    credentials = grpc_server_credentials(server_svid, anchors, require_client_auth=True)
    async with grpc_server(
        WhoAmI(), lambda s: s.add_secure_port("127.0.0.1:0", credentials)
    ) as port:
        client = await static_source(ca.svid(CLIENT_ID))  # Ed25519
        seen, error = await _call(port, ca.bundle, client)
    assert seen is None and error is not None
