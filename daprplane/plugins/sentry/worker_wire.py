"""The control channel between sentry and its worker processes: framed messages on a socket pair.

Both ends are the same program, so a message is a pickled tuple ``(kind, payload)`` behind a
4-byte big-endian length. Nothing from outside ever reaches this channel: the socket pair is
created by sentry and inherited by the workers it starts.
"""

from __future__ import annotations

import asyncio
import pickle
import struct
from typing import Any

_LENGTH = struct.Struct(">I")


def frame(kind: str, payload: Any = None) -> bytes:
    body = pickle.dumps((kind, payload), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


async def read_message(reader: asyncio.StreamReader) -> tuple[str, Any] | None:
    """The next message, or None when the other end has closed the channel."""
    try:
        header = await reader.readexactly(_LENGTH.size)
        (length,) = _LENGTH.unpack(header)
        body = await reader.readexactly(length)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    kind, payload = pickle.loads(body)
    return str(kind), payload
