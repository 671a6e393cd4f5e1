"""The raft port's framing and messages: anything a stranger sends is refused, never obeyed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daprplane.plugins.placement.leadership import RaftLeadership
from daprplane.plugins.placement.options import Peer
from daprplane.plugins.placement.raft_transport import PeerLink, RaftServer
from daprplane.plugins.placement.raft_wire import (
    MAX_FRAME,
    Heartbeat,
    HeartbeatReply,
    Message,
    VoteReply,
    VoteRequest,
    WireError,
    decode,
    encode,
    read_message,
)
from tests.integration.launchers import free_port

terms = st.integers(min_value=0, max_value=2**63 - 1)
node_ids = st.text(min_size=1, max_size=64)
messages = st.one_of(
    st.builds(VoteRequest, terms, node_ids),
    st.builds(VoteReply, terms, st.booleans()),
    st.builds(Heartbeat, terms, node_ids),
    st.builds(HeartbeatReply, terms, st.booleans()),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@given(messages)
def test_every_message_survives_the_wire(message: Message) -> None:
    frame = encode(message)
    (length,) = struct.unpack(">I", frame[:4])
    assert length == len(frame) - 4
    assert decode(frame[4:]) == message


@given(st.binary(max_size=256))
def test_arbitrary_bytes_decode_or_raise_wire_error(body: bytes) -> None:
    with contextlib.suppress(WireError):
        decode(body)


@given(
    st.sampled_from(["vote", "vote-reply", "heartbeat", "heartbeat-reply", "other"]),
    st.dictionaries(
        st.sampled_from(["term", "candidate", "granted", "leader", "accepted", "extra"]),
        json_values,
    ),
)
def test_misshapen_messages_raise_wire_error(kind: str, fields: dict[str, Any]) -> None:
    body = json.dumps({"type": kind, **fields}).encode()
    try:
        message = decode(body)
    except WireError:
        return
    # Only a message with exactly the right fields and types gets through.
    assert json.loads(encode(message)[4:]) == {"type": kind, **fields}


@pytest.mark.parametrize(
    "body",
    [
        b'{"type":"vote","term":true,"candidate":"p1"}',
        b'{"type":"vote","term":-1,"candidate":"p1"}',
        b'{"type":"vote","term":9223372036854775808,"candidate":"p1"}',
        b'{"type":"vote","term":1.0,"candidate":"p1"}',
        b'{"type":"vote","term":1,"candidate":""}',
        b'{"type":"vote-reply","term":1,"granted":1}',
        b'{"type":"heartbeat","term":1}',
        b'{"type":"heartbeat","term":1,"leader":"p1","entries":[]}',
        b'["heartbeat",1,"p1"]',
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_wrong_shapes_are_named(body: bytes) -> None:
    with pytest.raises(WireError):
        decode(body)


async def test_an_oversized_frame_is_refused_before_its_body_is_read() -> None:
    reader = asyncio.StreamReader()
    reader.feed_data(struct.pack(">I", MAX_FRAME + 1))
    with pytest.raises(WireError, match="exceeds"):
        await read_message(reader)


# -- against a live raft port -------------------------------------------------------------


async def _ask(address: str, payload: bytes) -> bytes:
    """Send ``payload``; whatever comes back before the server closes (or 1s passes)."""
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(payload)
        await writer.drain()
        writer.write_eof()
        async with asyncio.timeout(1.0):
            return await reader.read()
    except (TimeoutError, ConnectionError):
        return b""
    finally:
        writer.close()


async def _garbage_then_a_real_request(blobs: list[bytes]) -> None:
    address = f"127.0.0.1:{free_port()}"
    node = RaftLeadership("p0", [Peer("p0", address), Peer("p1", "127.0.0.1:1")])
    await node.start()
    try:
        for blob in blobs:
            await _ask(address, blob)
        reply = await _ask(address, encode(Heartbeat(7, "p1")))
        assert decode(reply[4:]) == HeartbeatReply(7, True)
        assert node.term == 7
    finally:
        await node.aclose()


@settings(max_examples=40, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        st.one_of(
            st.binary(max_size=64),
            st.builds(lambda m: encode(m)[: len(encode(m)) // 2], messages),  # cut short
            st.builds(lambda body: struct.pack(">I", len(body)) + body, st.binary(max_size=64)),
            st.just(struct.pack(">I", 2**32 - 1)),
        ),
        max_size=4,
    )
)
def test_garbage_on_the_raft_port_leaves_it_answering(blobs: list[bytes]) -> None:
    asyncio.run(_garbage_then_a_real_request(blobs))


async def test_a_connection_the_server_closed_while_idle_is_replaced_at_once() -> None:
    address = f"127.0.0.1:{free_port()}"
    server = RaftServer(address, lambda _: HeartbeatReply(3, True), idle_timeout=0.2)
    await server.start()
    link = PeerLink("p0", address)
    try:
        assert await link.call(Heartbeat(3, "p1"), 2) == HeartbeatReply(3, True)
        await asyncio.sleep(0.5)  # the server has dropped the idle connection by now
        assert await link.call(Heartbeat(3, "p1"), 2) == HeartbeatReply(3, True)
    finally:
        await link.aclose()
        await server.aclose()


async def test_connections_beyond_the_limit_are_refused() -> None:
    address = f"127.0.0.1:{free_port()}"
    server = RaftServer(address, lambda _: HeartbeatReply(3, True), max_connections=2)
    await server.start()
    host, port = address.rsplit(":", 1)
    held = [await asyncio.open_connection(host, int(port)) for _ in range(2)]
    try:
        await asyncio.sleep(0.1)
        assert await _ask(address, encode(Heartbeat(3, "p1"))) == b""
        for _, writer in held:
            writer.close()
        await asyncio.sleep(0.1)
        reply = await _ask(address, encode(Heartbeat(3, "p1")))
        assert decode(reply[4:]) == HeartbeatReply(3, True)
    finally:
        await server.aclose()
