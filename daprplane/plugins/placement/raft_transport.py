"""The raft port: this peer's listener and its connections to the other peers.

The listener binds the address of this node's own ``--initial-cluster`` entry, resolved first:
in a StatefulSet a pod's DNS name can appear some time after the pod starts, so resolution is
retried every 500ms±250ms up to 240 times (about two minutes), as Dapr does. Failing to resolve
or to bind is a :class:`RaftListenError`, which the service turns into a fatal exit.

Every connection carries one request and then its reply at a time (:mod:`.raft_wire`). Anyone
who reaches the port may connect, so the listener bounds what a connection can cost: at most
:data:`MAX_CONNECTIONS` at once, a frame size limit, and an idle timeout. With
:class:`~.raft_tls.RaftTls` both directions are mTLS between placement peers only.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import random
import socket
from collections.abc import Callable
from typing import Any

from daprplane.core.security.dialer import split_address
from daprplane.plugins.placement.raft_tls import PeerRejectedError, RaftTls
from daprplane.plugins.placement.raft_wire import (
    Message,
    WireError,
    read_message,
    write_message,
)

__all__ = [
    "MAX_CONNECTIONS",
    "PeerLink",
    "RaftListenError",
    "RaftServer",
    "resolve_listen_address",
]

log = logging.getLogger("dapr.placement.leadership.raft")

MAX_CONNECTIONS = 64
#: A live leader sends a heartbeat every 200ms; a connection silent this long is dead or idle.
IDLE_TIMEOUT = 30.0
RESOLVE_ATTEMPTS = 240
RESOLVE_INTERVAL = 0.5
RESOLVE_JITTER = 0.25

Handler = Callable[[Message], Message | None]


class RaftListenError(Exception):
    """The raft port could not be opened; the message is the fatal log line."""


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def resolve_listen_address(
    address: str,
    *,
    attempts: int = RESOLVE_ATTEMPTS,
    interval: float = RESOLVE_INTERVAL,
    jitter: float = RESOLVE_JITTER,
) -> tuple[str, int]:
    """The IP (IPv4 preferred, as Go's resolver) and port to bind for ``address``."""
    try:
        host, port = split_address(address)
    except ValueError as error:
        raise RaftListenError(f"invalid raft address of this node: {error}") from None
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host)), port
    loop = asyncio.get_running_loop()
    last_error: OSError | None = None
    for attempt in range(attempts):
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as error:
            last_error = error
            log.debug("Resolving raft address %s failed (attempt %d): %s", address, attempt, error)
            if attempt + 1 < attempts:
                await asyncio.sleep(max(0.0, interval + random.uniform(-jitter, jitter)))
            continue
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        return str(infos[0][4][0]), port
    raise RaftListenError(
        f"failed to resolve raft address {address} after {attempts} attempts: {last_error}"
    )


class RaftServer:
    """Answers the other peers' requests with ``handle``; a None answer ends the connection."""

    def __init__(
        self,
        address: str,
        handle: Handler,
        *,
        tls: RaftTls | None = None,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout: float = IDLE_TIMEOUT,
        resolve_attempts: int = RESOLVE_ATTEMPTS,
    ) -> None:
        self.address = address
        self._handle = handle
        self._tls = tls
        self.max_connections = max_connections
        self.idle_timeout = idle_timeout
        self.resolve_attempts = resolve_attempts
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[Any]] = set()
        #: Where the listener is bound (``host:port``), once started.
        self.bound: str | None = None

    async def start(self) -> str:
        host, port = await resolve_listen_address(self.address, attempts=self.resolve_attempts)
        where = _host_port(host, port)
        try:
            self._server = await asyncio.start_server(self._accept, host, port)
        except OSError as error:
            # asyncio's message repeats the address; Go's names only the errno's text.
            reason = (os.strerror(error.errno) if error.errno else str(error)).lower()
            raise RaftListenError(
                f"failed to create raft listener: listen tcp {where}: bind: {reason}"
            ) from None
        self.bound = where
        log.debug("Raft listener bound on %s", where)
        return where

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        if len(self._connections) >= self.max_connections:
            log.warning("Refusing a raft connection: %d are already open", self.max_connections)
            writer.transport.abort()
            return
        self._connections.add(task)
        peer = writer.get_extra_info("peername")
        try:
            if self._tls is not None:
                await writer.start_tls(
                    self._tls.server_context(), ssl_handshake_timeout=self._tls.handshake_timeout
                )
                self._tls.check_peer(writer)
            while True:
                async with asyncio.timeout(self.idle_timeout):
                    request = await read_message(reader)
                reply = self._handle(request)
                if reply is None:
                    raise WireError(f"{type(request).__name__} is not a request")
                await write_message(writer, reply)
        except PeerRejectedError as error:
            log.warning("Rejected raft connection from %s: %s", peer, error)
        except (asyncio.IncompleteReadError, ConnectionError, TimeoutError):
            pass  # the peer went away or fell silent
        except (OSError, WireError) as error:
            log.info("Closing raft connection from %s: %s", peer, error or type(error).__name__)
        except asyncio.CancelledError:
            pass  # aclose(); asyncio 3.11 would log a cancelled connection handler as an error
        finally:
            writer.transport.abort()
            self._connections.discard(task)

    async def aclose(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for task in list(self._connections):
            task.cancel()
        if self._connections:
            await asyncio.wait(list(self._connections))
        if server is not None:
            await server.wait_closed()


class PeerLink:
    """One connection to another peer, opened when needed and dropped after any failure."""

    def __init__(self, peer_id: str, address: str, *, tls: RaftTls | None = None) -> None:
        self.peer_id = peer_id
        self.address = address
        self._tls = tls
        #: Why this peer's address cannot be dialled, when it is not ``host:port``. Such a peer
        #: is only ever unreachable, as in Dapr: it still counts towards the majority.
        self.invalid: str | None = None
        try:
            self._host, self._port = split_address(address)
        except ValueError as error:
            self._host, self._port = "", 0
            self.invalid = str(error)
            log.warning("Raft peer %s will never be reached: %s", peer_id, error)
        self._lock = asyncio.Lock()
        self._connection: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        #: Why the last call failed, or None after a success.
        self.last_error: str | None = None

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._tls is None:
            return await asyncio.open_connection(self._host, self._port)
        reader, writer = await asyncio.open_connection(
            self._host,
            self._port,
            ssl=self._tls.client_context(),
            server_hostname="",  # no SNI: the peer is checked by SPIFFE ID
            ssl_handshake_timeout=self._tls.handshake_timeout,
        )
        try:
            self._tls.check_peer(writer)
        except PeerRejectedError:
            writer.transport.abort()
            raise
        return reader, writer

    async def call(self, request: Message, timeout: float) -> Message | None:
        """The peer's reply, or None (and :attr:`last_error`) when there is none in time."""
        if self.invalid is not None:
            self.last_error = self.invalid
            return None
        async with self._lock:
            try:
                async with asyncio.timeout(timeout):
                    reply = await self._exchange(request)
            except (OSError, TimeoutError, asyncio.IncompleteReadError, WireError) as error:
                # A late reply would be taken for the next request's: start afresh.
                self._drop()
                reason = str(error) or type(error).__name__
                if reason != self.last_error:
                    log.debug("Raft peer %s at %s: %s", self.peer_id, self.address, reason)
                self.last_error = reason
                return None
            except BaseException:
                self._drop()
                raise
        self.last_error = None
        return reply

    async def _exchange(self, request: Message) -> Message:
        if self._connection is not None:
            reader, writer = self._connection
            try:
                await write_message(writer, request)
                return await read_message(reader)
            except (ConnectionError, asyncio.IncompleteReadError):
                # The peer closed a connection that sat idle (or restarted): one fresh try.
                self._drop()
        self._connection = await self._connect()
        reader, writer = self._connection
        await write_message(writer, request)
        return await read_message(reader)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection[1].transport.abort()

    async def aclose(self) -> None:
        self._drop()
