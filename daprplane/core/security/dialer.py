"""gRPC client channels to servers identified by SPIFFE ID (Sentry, placement, the operator).

The server is verified as go-spiffe's ``TLSClientCredentials`` does: its chain must verify to the
trust anchors and its leaf must carry the authorised SPIFFE ID; DNS names and SNI play no part.
gRPC's own client cannot do this (see :mod:`._relay`), so a :class:`VerifiedTunnel` makes each
TLS connection with :mod:`ssl`, checks the peer, and only then relays the channel's HTTP/2 bytes.
Nothing reaches a server that failed verification.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import grpc

from daprplane.core.security import _relay, tls
from daprplane.core.security.anchors import TrustAnchorSource
from daprplane.core.security.authz import Authorizer, PeerAuthError
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.svid import SvidError

log = logging.getLogger("dapr.runtime.security")


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` or ``[v6]:port`` (an optional ``dns:///`` prefix is dropped)."""
    text = address.removeprefix("dns:///")
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"invalid address {address!r}: want host:port")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _server_name(host: str) -> str | None:
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return None  # no SNI for IP literals, as Go's crypto/tls
    return host


class PeerVerificationError(ConnectionError):
    """The server's TLS identity was rejected; the message says why."""


class VerifiedTunnel:
    """A private Unix socket whose every connection becomes a verified TLS connection to
    ``address``. Give :attr:`target` to ``grpc.aio.insecure_channel``."""

    def __init__(
        self,
        address: str,
        *,
        anchors: TrustAnchorSource,
        authorize: Authorizer,
        svid: SvidSource | None = None,
        handshake_timeout: float = 5.0,
    ) -> None:
        self.address = address
        self._host, self._port = split_address(address)
        self._anchors = anchors
        self._authorize = authorize
        self._svid = svid
        self.handshake_timeout = handshake_timeout
        self._contexts = tls.ContextCache(tls.client_context)
        self._directory: str | None = None
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        #: Why the most recent connection attempt failed, for error messages.
        self.last_error: str | None = None

    @property
    def target(self) -> str:
        if self._directory is None:
            raise RuntimeError("tunnel is not started")
        return f"unix:{self._directory}/s"

    async def start(self) -> None:
        if self._server is not None:
            return
        self._directory = _relay.private_directory("dapr-dial-")
        self._server = await asyncio.start_unix_server(self._accept, f"{self._directory}/s")

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            if not _relay.peer_is_this_process(writer):
                _relay.close(writer)
                return
            try:
                remote = await self.connect()
            except Exception as error:  # any failure fails only this connection
                self.last_error = f"{self.address}: {error or type(error).__name__}"
                log.warning("Connection to %s failed: %s", self.address, self.last_error)
                _relay.close(writer)
                return
            self.last_error = None
            await _relay.splice((reader, writer), remote)
        except asyncio.CancelledError:
            # aclose() cancels open connections; asyncio would log a cancelled connection
            # handler as an error on Python 3.11.
            _relay.close(writer)
        finally:
            self._connections.discard(task)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """One verified TLS connection to the server (ALPN h2), or an error saying what failed."""
        anchors = self._anchors.current
        svid = self._svid.current if self._svid is not None else None
        context = self._contexts.get(anchors, svid)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(
                self._host,
                self._port,
                ssl=context,
                server_hostname=_server_name(self._host) or "",
                ssl_handshake_timeout=self.handshake_timeout,
            ),
            self.handshake_timeout,
        )
        try:
            ssl_object = writer.get_extra_info("ssl_object")
            if ssl_object.selected_alpn_protocol() != tls.ALPN_H2:
                raise PeerVerificationError("server did not negotiate ALPN h2")
            try:
                self._authorize(tls.peer_id(ssl_object))
            except (SvidError, PeerAuthError) as error:
                raise PeerVerificationError(f"server identity rejected: {error}") from None
        except BaseException:
            _relay.close(writer)
            raise
        return reader, writer

    async def aclose(self) -> None:
        server, self._server = self._server, None
        await _relay.shut_down(server, self._connections, self._directory)
        self._directory = None


class SpiffeChannel:
    """``async with SpiffeChannel(...) as channel``: a ``grpc.aio.Channel`` to a SPIFFE server.

    ``authorize`` decides which server identities are accepted (for Sentry:
    ``allow_ids(spiffe://<cp-td>/ns/<cp-ns>/dapr-sentry)``); ``svid`` adds a client certificate.
    The ``:authority`` header is ``address``, as for a direct channel.
    """

    def __init__(
        self,
        address: str,
        *,
        anchors: TrustAnchorSource,
        authorize: Authorizer,
        svid: SvidSource | None = None,
        options: Sequence[tuple[str, Any]] = (),
        handshake_timeout: float = 5.0,
    ) -> None:
        self.tunnel = VerifiedTunnel(
            address,
            anchors=anchors,
            authorize=authorize,
            svid=svid,
            handshake_timeout=handshake_timeout,
        )
        self._options = [("grpc.default_authority", address), *options]
        self.channel: grpc.aio.Channel | None = None

    @property
    def last_error(self) -> str | None:
        return self.tunnel.last_error

    async def open(self) -> grpc.aio.Channel:
        await self.tunnel.start()
        self.channel = grpc.aio.insecure_channel(self.tunnel.target, options=self._options)
        return self.channel

    async def aclose(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        await self.tunnel.aclose()

    async def __aenter__(self) -> grpc.aio.Channel:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


__all__ = ["PeerVerificationError", "SpiffeChannel", "VerifiedTunnel", "split_address"]
