"""Test clients for sentry's TLS gRPC API that verify sentry as Dapr's clients do.

Sentry's certificate carries only a SPIFFE URI SAN, so gRPC's host-name-checking TLS cannot be
used. The tests dial through the identity library's :class:`VerifiedTunnel` instead (chain
verified to the trust anchors, ALPN ``h2``, exact SPIFFE ID; nothing is relayed otherwise), so
sentry is checked by the same code every component uses. The tunnel runs on its own thread and
event loop, which lets these synchronous tests use gRPC's synchronous channel over it.

Only :func:`handshake` with a ``maximum`` TLS version is test-local: pinning the protocol version
is how the tests check what sentry's server accepts, and no client should ever do it.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from ssl import TLSVersion
from typing import Any

import grpc
from cryptography import x509

from daprplane._proto.sentry.v1 import sentry_pb2_grpc
from daprplane.core.security import tls
from daprplane.core.security.anchors import StaticTrustAnchors, TrustBundle
from daprplane.core.security.authz import allow_any, allow_ids
from daprplane.core.security.dialer import VerifiedTunnel

SENTRY_ID = "spiffe://localhost/ns/default/dapr-sentry"


@dataclass
class Handshake:
    version: str
    alpn: str | None
    leaf: x509.Certificate


class RecordingTunnel(VerifiedTunnel):
    """A :class:`VerifiedTunnel` that keeps the leaf of every connection it let through."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.leaves: list[x509.Certificate] = []
        self.last: Handshake | None = None

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await super().connect()
        ssl_object = writer.get_extra_info("ssl_object")
        leaf = tls.peer_certificate(ssl_object)
        self.leaves.append(leaf)
        self.last = Handshake(ssl_object.version() or "", ssl_object.selected_alpn_protocol(), leaf)
        return reader, writer


def _tunnel(port: int, trust_anchors_pem: bytes, expected_id: str | None) -> RecordingTunnel:
    return RecordingTunnel(
        f"127.0.0.1:{port}",
        anchors=StaticTrustAnchors.from_pem(trust_anchors_pem),
        authorize=allow_ids(expected_id) if expected_id is not None else allow_any,
    )


def handshake(port: int, trust_anchors_pem: bytes, maximum: TLSVersion | None = None) -> Handshake:
    """One TLS handshake with sentry; raises ``ssl.SSLError`` or ``OSError`` if it fails.

    The chain must verify to the anchors and the leaf must be an X.509-SVID with ALPN ``h2``;
    any SPIFFE ID is accepted, because the tests read the leaf to check which one sentry serves.
    """
    if maximum is not None:
        return _pinned_handshake(port, trust_anchors_pem, maximum)

    async def shake() -> Handshake:
        tunnel = _tunnel(port, trust_anchors_pem, None)
        _, writer = await tunnel.connect()
        writer.close()
        assert tunnel.last is not None
        return tunnel.last

    return asyncio.run(shake())


def _pinned_handshake(port: int, trust_anchors_pem: bytes, maximum: TLSVersion) -> Handshake:
    """The library's client context with the protocol version capped at ``maximum``."""
    context = tls.client_context(TrustBundle.from_pem(trust_anchors_pem))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # asking for TLS < 1.2 on purpose
        context.minimum_version = TLSVersion.MINIMUM_SUPPORTED
        context.maximum_version = maximum
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw) as sock,
    ):
        tls.peer_id(sock)  # the X.509-SVID leaf rules
        return Handshake(
            sock.version() or "", sock.selected_alpn_protocol(), tls.peer_certificate(sock)
        )


@contextlib.contextmanager
def sentry_channel(
    port: int, trust_anchors_pem: bytes, expected_id: str = SENTRY_ID
) -> Iterator[tuple[grpc.Channel, RecordingTunnel]]:
    """A synchronous gRPC channel whose every connection to sentry goes through a
    :class:`VerifiedTunnel` that accepts only ``expected_id``."""
    tunnel = _tunnel(port, trust_anchors_pem, expected_id)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="sentry-tunnel", daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(tunnel.start(), loop).result(10)
        options = [("grpc.default_authority", tunnel.address)]
        with grpc.insecure_channel(tunnel.target, options=options) as channel:
            yield channel, tunnel
    finally:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(tunnel.aclose(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@contextlib.contextmanager
def ca_stub(
    port: int, trust_anchors_pem: bytes, expected_id: str = SENTRY_ID
) -> Iterator[tuple[sentry_pb2_grpc.CAStub, RecordingTunnel]]:
    """A ``CA`` stub over :func:`sentry_channel`; the tunnel's ``leaves`` show what it verified."""
    with sentry_channel(port, trust_anchors_pem, expected_id) as (channel, tunnel):
        yield sentry_pb2_grpc.CAStub(channel), tunnel  # type: ignore[no-untyped-call]
