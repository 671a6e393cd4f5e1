"""The verified tunnel under gRPC channels: who may use it, and live trust-anchor changes."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import sys
from pathlib import Path

import pytest

from daprplane._proto.sentry.v1 import sentry_pb2, sentry_pb2_grpc
from daprplane.core.security.anchors import StaticTrustAnchors, TrustAnchorsFile, TrustBundle
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.credentials import grpc_server_credentials
from daprplane.core.security.dialer import SpiffeChannel, VerifiedTunnel
from tests.integration.security.servers import SENTRY_ID, FakeSentry, grpc_server, static_source
from tests.pki import SentryCA


async def test_other_processes_cannot_use_the_tunnel() -> None:
    accepted = 0

    async def count(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal accepted
        accepted += 1
        writer.close()

    server = await asyncio.start_server(count, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ca = SentryCA()
    tunnel = VerifiedTunnel(
        f"127.0.0.1:{port}", anchors=StaticTrustAnchors(ca.bundle), authorize=allow_ids(SENTRY_ID)
    )
    await tunnel.start()
    try:
        path = tunnel.target.removeprefix("unix:")
        assert Path(path).parent.stat().st_mode & 0o077 == 0  # private directory
        script = (
            "import socket, sys, time\n"
            "s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); time.sleep(0.2)\n"
            "try:\n"
            "    s.sendall(b'PRI * HTTP/2.0'); print(s.recv(10) == b'')\n"
            "except OSError:\n"
            "    print(True)\n"
        )
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, path, stdout=asyncio.subprocess.PIPE
        )
        out, _ = await asyncio.wait_for(child.communicate(), 10)
        assert out.strip() == b"True"  # closed at once
        assert accepted == 0  # and nothing was dialled on its behalf
    finally:
        await tunnel.aclose()
        server.close()
        await server.wait_closed()
    assert not Path(path).parent.exists()


async def test_new_trust_anchors_apply_to_new_connections(tmp_path: Path) -> None:
    # Both roots are O=localhost; see test_same_subject_roots for why the issuer needs an AKID.
    old_ca, new_ca = SentryCA(), SentryCA(issuer_akid=True)
    anchors_file = tmp_path / "ca.crt"
    anchors_file.write_bytes(old_ca.anchors_pem)
    serving = await static_source(new_ca.svid(SENTRY_ID))
    credentials = grpc_server_credentials(serving)
    sentry = FakeSentry(new_ca)
    async with (
        TrustAnchorsFile(anchors_file, poll_interval=0.05) as anchors,
        grpc_server(sentry, lambda s: s.add_secure_port("127.0.0.1:0", credentials)) as port,
    ):
        request = sentry_pb2.SignCertificateRequest(
            id="a", namespace="default", certificate_signing_request=b""
        )
        connection = SpiffeChannel(
            f"127.0.0.1:{port}", anchors=anchors, authorize=allow_ids(SENTRY_ID)
        )
        async with connection as channel:
            stub = sentry_pb2_grpc.CAStub(channel)
            with contextlib.suppress(Exception):
                await stub.SignCertificate(request, timeout=2)
            assert connection.last_error and "certificate verify failed" in connection.last_error
            assert sentry.requests == []

        anchors_file.write_bytes(old_ca.anchors_pem + new_ca.anchors_pem)
        for _ in range(40):
            if len(anchors.current.certificates) == 2:
                break
            await asyncio.sleep(0.05)
        async with SpiffeChannel(
            f"127.0.0.1:{port}", anchors=anchors, authorize=allow_ids(SENTRY_ID)
        ) as channel:
            stub = sentry_pb2_grpc.CAStub(channel)
            with contextlib.suppress(Exception):  # the fake Sentry fails on the empty CSR
                await stub.SignCertificate(request, timeout=2)
        assert len(sentry.requests) == 1


@pytest.mark.parametrize("issuer_akid", [True, False])
async def test_same_subject_roots(issuer_akid: bool) -> None:
    """Known limitation of OpenSSL-based verification: with two roots of the same subject in the
    bundle (root rotation with Sentry-generated roots, all ``O=<trust-domain>``) and an issuer
    without AuthorityKeyIdentifier (Sentry-generated issuers have none), OpenSSL picks the first
    root by name and fails on its signature; go-spiffe (Go) tries both. With an AKID it works."""
    first, second = SentryCA(), SentryCA(issuer_akid=issuer_akid)
    serving = await static_source(second.svid(SENTRY_ID))
    credentials = grpc_server_credentials(serving)
    anchors = StaticTrustAnchors(TrustBundle((first.root, second.root)))
    async with grpc_server(
        FakeSentry(second), lambda s: s.add_secure_port("127.0.0.1:0", credentials)
    ) as port:
        tunnel = VerifiedTunnel(
            f"127.0.0.1:{port}", anchors=anchors, authorize=allow_ids(SENTRY_ID)
        )
        if issuer_akid:
            _, writer = await tunnel.connect()
            writer.close()
        else:
            with pytest.raises(ssl.SSLCertVerificationError, match="signature failure"):
                await tunnel.connect()
