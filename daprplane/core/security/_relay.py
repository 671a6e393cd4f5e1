"""Byte relays between a local socket and a TLS connection, and the private socket directory.

gRPC's Python transport cannot be handed a custom certificate check (there is no verify callback,
grpc proposal #546) and cannot verify Ed25519 handshake signatures (grpc#24252). So TLS is done by
:mod:`ssl` and gRPC speaks plaintext HTTP/2 to the other end of a Unix socket in a directory only
this user can enter; the relay copies bytes unchanged, so the peer sees ordinary gRPC over TLS.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import struct
import tempfile
from typing import Any

_CHUNK = 256 * 1024


def private_directory(prefix: str) -> str:
    """A fresh directory with mode 0700 (``mkdtemp`` guarantees it); short, for ``sun_path``."""
    return tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None)


def peer_is_this_process(writer: asyncio.StreamWriter) -> bool:
    """True when the other end of a Unix connection is this process (Linux ``SO_PEERCRED``).

    The directory permissions already keep other users out; this also keeps out other processes
    of the same user, which must not borrow this process's client certificate.
    """
    sock = writer.get_extra_info("socket")
    option = getattr(socket, "SO_PEERCRED", None)
    if sock is None or option is None:
        return True
    raw = sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i"))
    pid, _uid, _gid = struct.unpack("3i", raw)
    return bool(pid == os.getpid())


def close(writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(Exception):
        writer.close()


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError, asyncio.IncompleteReadError):
        pass


async def splice(
    a: tuple[asyncio.StreamReader, asyncio.StreamWriter],
    b: tuple[asyncio.StreamReader, asyncio.StreamWriter],
) -> None:
    """Copy both ways until either side ends, then close both (HTTP/2 never half-closes)."""
    forward = asyncio.ensure_future(_pump(a[0], b[1]))
    backward = asyncio.ensure_future(_pump(b[0], a[1]))
    try:
        await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forward, backward):
            task.cancel()
        close(a[1])
        close(b[1])
        await asyncio.gather(forward, backward, return_exceptions=True)


class _Forwarder(asyncio.Protocol):
    """Writes what its transport receives to ``peer``, and stops reading ``peer`` while its own
    transport cannot take more (back-pressure both ways, with no task or buffer in between)."""

    def __init__(self, closed: asyncio.Future[None]) -> None:
        self.peer: asyncio.Transport | None = None
        self._closed = closed
        self._early: list[bytes] = []

    def attach(self, peer: asyncio.Transport) -> None:
        self.peer = peer
        for data in self._early:
            peer.write(data)
        self._early.clear()

    def data_received(self, data: bytes) -> None:
        if self.peer is None:
            self._early.append(data)
        else:
            self.peer.write(data)

    def eof_received(self) -> bool:
        self._finish()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish()

    def pause_writing(self) -> None:
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()

    def _finish(self) -> None:
        if not self._closed.done():
            self._closed.set_result(None)


async def splice_transport(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, backend: socket.socket
) -> None:
    """Relay between the (TLS) connection of ``reader``/``writer`` and the connected Unix socket
    ``backend`` until either side ends, then close both.

    Unlike :func:`splice`, bytes go from one transport's callback straight into the other's
    write: no stream buffers and no task switch per chunk. A front relays every message of every
    sidecar, so this is most of its cost per message. The stream objects are given up: their
    transport gets a new protocol, and what their reader had already buffered is sent first.
    """
    loop = asyncio.get_running_loop()
    closed: asyncio.Future[None] = loop.create_future()
    front = writer.transport
    from_front = _Forwarder(closed)
    # No await between these two lines: nothing the peer sends can fall between the reader's
    # buffer and the new protocol. (StreamReader has no public way to take its buffer.)
    front.set_protocol(from_front)
    buffered = bytes(getattr(reader, "_buffer", b""))
    to_front = _Forwarder(closed)
    to_front.peer = front  # type: ignore[assignment]
    try:
        back, _ = await loop.create_unix_connection(lambda: to_front, sock=backend)
    except BaseException:
        backend.close()
        front.close()
        raise
    try:
        if buffered:
            back.write(buffered)
        from_front.attach(back)
        if front.is_closing():
            return
        await closed
    finally:
        back.close()
        front.close()


async def shut_down(
    server: asyncio.Server | None, connections: set[asyncio.Task[Any]], directory: str | None
) -> None:
    """Stop a relay listener: stop accepting, cancel and await the open connections (each
    handler removes itself from ``connections``), then remove the private ``directory``."""
    if server is not None:
        server.close()
    for task in list(connections):
        task.cancel()
    if connections:
        await asyncio.gather(*connections, return_exceptions=True)
    if server is not None:
        await server.wait_closed()
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
