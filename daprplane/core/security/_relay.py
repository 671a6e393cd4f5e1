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
