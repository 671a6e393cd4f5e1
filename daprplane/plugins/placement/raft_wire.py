"""What placement peers say to each other on the raft port, and how it is framed.

Raft is used only to elect a leader (nothing is replicated), so four messages are enough: a
candidate's vote request and its answer, and the leader's heartbeat and its answer. Each frame
is a 4-byte big-endian length followed by a JSON object; JSON rather than pickle or a binary
format because anyone who reaches the port can send anything, and decoding must never run code
or trust a size it was told. :func:`decode` accepts exactly these shapes and raises
:class:`WireError` for everything else.
"""

from __future__ import annotations

import asyncio
import json
import struct
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_FRAME",
    "Heartbeat",
    "HeartbeatReply",
    "Message",
    "VoteReply",
    "VoteRequest",
    "WireError",
    "decode",
    "encode",
    "read_message",
    "write_message",
]

#: Far above any real message (a few hundred bytes); a larger length is a broken or hostile peer.
MAX_FRAME = 16 * 1024
_LENGTH = struct.Struct(">I")
#: Node IDs are pod names in practice; the bound only keeps a hostile frame from being stored.
_MAX_NODE_ID = 1024
_MAX_TERM = 2**63 - 1


class WireError(ValueError):
    """A frame that is not one of the messages below."""


@dataclass(frozen=True)
class VoteRequest:
    """A candidate asks for this node's vote in ``term``."""

    term: int
    candidate: str


@dataclass(frozen=True)
class VoteReply:
    term: int
    granted: bool


@dataclass(frozen=True)
class Heartbeat:
    """The leader of ``term`` says it is alive (raft's empty AppendEntries)."""

    term: int
    leader: str


@dataclass(frozen=True)
class HeartbeatReply:
    term: int
    accepted: bool


Message = VoteRequest | VoteReply | Heartbeat | HeartbeatReply

_TYPES: dict[str, type[Message]] = {
    "vote": VoteRequest,
    "vote-reply": VoteReply,
    "heartbeat": Heartbeat,
    "heartbeat-reply": HeartbeatReply,
}
_NAMES = {kind: name for name, kind in _TYPES.items()}


def encode(message: Message) -> bytes:
    fields = dict(message.__dict__)
    body = json.dumps({"type": _NAMES[type(message)], **fields}, separators=(",", ":")).encode()
    return _LENGTH.pack(len(body)) + body


def _term(value: Any) -> int:
    # bool is an int subclass; a term of true is as wrong as a term of "1".
    if type(value) is not int or not 0 <= value <= _MAX_TERM:
        raise WireError(f"term must be an integer in [0, 2^63), got {value!r:.40}")
    return value


def _node_id(value: Any) -> str:
    if not isinstance(value, str) or not value or len(value) > _MAX_NODE_ID:
        raise WireError(f"node id must be a non-empty string, got {value!r:.40}")
    return value


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise WireError(f"expected a boolean, got {value!r:.40}")
    return value


def decode(body: bytes) -> Message:
    """The message in one frame's body (without the length prefix)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise WireError(f"frame is not JSON: {error}") from None
    if not isinstance(data, dict):
        raise WireError("frame is not a JSON object")
    kind = _TYPES.get(data.get("type"))  # type: ignore[arg-type]
    if kind is None:
        raise WireError(f"unknown message type {data.get('type')!r:.40}")
    expected = {"type", *kind.__dataclass_fields__}
    if set(data) != expected:
        raise WireError(f"{data['type']} needs exactly the fields {sorted(expected)}")
    if kind is VoteRequest:
        return VoteRequest(_term(data["term"]), _node_id(data["candidate"]))
    if kind is VoteReply:
        return VoteReply(_term(data["term"]), _flag(data["granted"]))
    if kind is Heartbeat:
        return Heartbeat(_term(data["term"]), _node_id(data["leader"]))
    return HeartbeatReply(_term(data["term"]), _flag(data["accepted"]))


async def read_message(reader: asyncio.StreamReader) -> Message:
    """The next message; ``asyncio.IncompleteReadError`` at EOF, :class:`WireError` if bad."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise WireError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    return decode(await reader.readexactly(length))


async def write_message(writer: asyncio.StreamWriter, message: Message) -> None:
    writer.write(encode(message))
    await writer.drain()
