"""Short-lived SVIDs from a test Sentry are renewed at half-life and served without restarts."""

from __future__ import annotations

import asyncio
import ssl
from datetime import timedelta

import aiohttp
import pytest
from aiohttp import web

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.health import Target
from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.credentials import LiveServerContext, grpc_server_credentials
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient
from daprplane.core.security.svid import Svid
from tests.integration.security.servers import (
    SENTRY_ID,
    FakeSentry,
    WhoAmI,
    grpc_server,
    served_certificate,
    static_source,
)
from tests.pki import SentryCA

PLACEMENT_ID = "spiffe://localhost/ns/default/dapr-placement"


async def _next_rotation(source: SvidSource, timeout: float = 6.0) -> Svid:
    rotated: asyncio.Future[Svid] = asyncio.get_running_loop().create_future()
    unsubscribe = source.subscribe(lambda svid: rotated.done() or rotated.set_result(svid))
    try:
        return await asyncio.wait_for(rotated, timeout)
    finally:
        unsubscribe()


@pytest.mark.slow
async def test_sentry_svid_rotates_and_grpc_server_serves_it_without_restart() -> None:
    ca = SentryCA()
    anchors = StaticTrustAnchors(ca.bundle)
    sentry_serving = await static_source(ca.svid(SENTRY_ID))
    sentry_credentials = grpc_server_credentials(sentry_serving)
    sentry = FakeSentry(ca, ttl=timedelta(seconds=4))
    async with grpc_server(
        sentry, lambda s: s.add_secure_port("127.0.0.1:0", sentry_credentials)
    ) as sentry_port:
        client = SentryClient(
            address=f"127.0.0.1:{sentry_port}",
            anchors=anchors,
            app_id="dapr-placement",
            namespace="default",
            environ={},
        )
        target = Target("security-provider")
        source = SvidSource(client.sign, target=target, check_interval=0.1, retry_interval=0.2)
        async with source:
            assert target.is_ready
            first = source.current
            assert str(first.spiffe_id) == PLACEMENT_ID
            credentials = grpc_server_credentials(source)
            async with grpc_server(
                WhoAmI(), lambda s: s.add_secure_port("127.0.0.1:0", credentials)
            ) as port:
                assert (await served_certificate(port, ca)) == first.leaf
                # A client that verifies the placement ID works over it, too.
                async with SpiffeChannel(
                    f"127.0.0.1:{port}", anchors=anchors, authorize=allow_ids(PLACEMENT_ID)
                ) as channel:
                    call = sentry_pb2_grpc.CAStub(channel).SignCertificate
                    with pytest.raises(Exception, match="no client certificate"):
                        await call(sentry_pb2.SignCertificateRequest(), timeout=3)

                second = await _next_rotation(source)
                assert second.leaf != first.leaf
                elapsed = (second.leaf.not_valid_before_utc - first.not_before).total_seconds()
                assert 1 <= elapsed <= 3  # renewed at half of a 4 s life
                assert source.current is second
                assert (await served_certificate(port, ca)) == second.leaf
        assert len(sentry.requests) >= 2


@pytest.mark.slow
async def test_https_context_reloads_in_place() -> None:
    """``load_cert_chain`` on the live context object: new handshakes get the new certificate,
    and a connection opened before keeps working."""
    ca = SentryCA()
    svids = [ca.svid("spiffe://localhost/ns/default/dapr-injector") for _ in range(2)]
    source = SvidSource(lambda: svids.pop(0))
    await source.start()
    first = source.current
    live = LiveServerContext(source)

    async def hello(request: web.Request) -> web.Response:
        return web.Response(text=str(id(request.transport)))

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=live.context)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert (await served_certificate(port, ca)) == first.leaf
        client_context = ssl.create_default_context(cadata=ca.anchors_pem.decode())
        client_context.check_hostname = False
        connector = aiohttp.TCPConnector(ssl=client_context, limit=1)
        async with aiohttp.ClientSession(connector=connector) as session:
            async with session.get(f"https://127.0.0.1:{port}/") as response:
                before = await response.text()
            second = await source.renew()
            assert (await served_certificate(port, ca)) == second.leaf
            async with session.get(f"https://127.0.0.1:{port}/") as response:
                assert await response.text() == before  # same (kept-alive) connection
    finally:
        live.close()
        await runner.cleanup()
        await source.aclose()
