"""mTLS in front of a gRPC server, terminated by :mod:`ssl` (placement, the operator).

daprd's client certificates are Ed25519, and gRPC's bundled BoringSSL does not accept Ed25519
handshake signatures (grpc#24252: the client cannot even offer its certificate), so gRPC cannot
terminate this mTLS itself. :class:`MtlsFront` listens on the public port, requires a client
chain that verifies to the current trust anchors, checks the X.509-SVID leaf rules (and an
optional :data:`~.authz.Authorizer`), and relays the connection to the gRPC server's private Unix
socket. Each relayed connection comes from its own socket path, which is the gRPC peer string;
:func:`.authz.peer_id` maps it back to the client certificate. The SVID and the anchors in force
at each handshake are used, so rotation needs no restart.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import socket
from asyncio import sslproto
from typing import Any

from daprplane.core.security import _relay, authz, tls
from daprplane.core.security.anchors import TrustAnchorSource
from daprplane.core.security.authz import Authorizer, PeerAuthError
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.svid import SvidError, verify_leaf

log = logging.getLogger("dapr.runtime.security")

#: asyncio's TLS transport gives each connection a zero-filled read buffer of
#: ``SSLProtocol.max_size`` bytes (256 KiB in CPython 3.11 to 3.13), resident for the connection's
#: life. A front holds one connection per sidecar, mostly idle, so that buffer was most of the
#: memory a sidecar cost; 64 KiB still takes four full TLS records per read.
TLS_READ_BUFFER = 64 * 1024


def _shrink_tls_read_buffers() -> None:
    if sslproto.SSLProtocol.max_size > TLS_READ_BUFFER:
        sslproto.SSLProtocol.max_size = TLS_READ_BUFFER


class MtlsFront:
    """Usage: ``server.add_insecure_port(front.backend_target)``, start the server, then
    ``await front.start(host, port)``."""

    def __init__(
        self,
        svid: SvidSource,
        anchors: TrustAnchorSource,
        *,
        authorize: Authorizer | None = None,
        handshake_timeout: float = 10.0,
    ) -> None:
        _shrink_tls_read_buffers()
        self._svid = svid
        self._anchors = anchors
        self._authorize = authorize
        self.handshake_timeout = handshake_timeout
        self._contexts = tls.ContextCache(tls.server_context)
        self._directory = _relay.private_directory("dapr-front-")
        self._serial = itertools.count(1)
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()

    @property
    def backend_target(self) -> str:
        """Where the gRPC server must listen (plaintext, reachable only by this user)."""
        return f"unix:{self._directory}/backend"

    async def start(self, host: str | None, port: int) -> int:
        """Listen on ``host:port`` (``""``/None = every interface); returns the bound port."""
        self._server = await asyncio.start_server(self._accept, host or None, port)
        return int(self._server.sockets[0].getsockname()[1])

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        backend_path = f"{self._directory}/p{next(self._serial)}"
        grpc_peer = f"unix:{backend_path}"
        try:
            context = self._contexts.get(self._svid.current, self._anchors.current)
            try:
                await writer.start_tls(context, ssl_handshake_timeout=self.handshake_timeout)
                certificate = tls.peer_certificate(writer.get_extra_info("ssl_object"))
                identity = verify_leaf(certificate)
                if self._authorize is not None:
                    self._authorize(identity)
            except (TimeoutError, OSError, SvidError, PeerAuthError) as error:
                log.info("Rejected TLS connection from %s: %s", peer, error or type(error).__name__)
                _relay.close(writer)
                return
            authz.register_relayed_peer(grpc_peer, certificate)
            try:
                backend = await self._dial_backend(backend_path)
            except OSError as error:
                log.error("gRPC server behind the TLS front is unreachable: %s", error)
                _relay.close(writer)
                return
            await _relay.splice_transport(reader, writer, backend)
        except asyncio.CancelledError:
            # aclose() cancels open connections; see VerifiedTunnel._accept.
            _relay.close(writer)
        finally:
            authz.unregister_relayed_peer(grpc_peer)
            if os.path.exists(backend_path):
                os.unlink(backend_path)
            self._connections.discard(task)

    async def _dial_backend(self, path: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(path)  # names this connection's gRPC peer
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, f"{self._directory}/backend")
        except BaseException:
            sock.close()
            raise
        return sock

    async def aclose(self) -> None:
        server, self._server = self._server, None
        await _relay.shut_down(server, self._connections, self._directory)
