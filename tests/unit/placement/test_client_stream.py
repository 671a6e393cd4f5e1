"""PlacementClient over real gRPC on loopback, against a scripted peer.

The peer is not a placement server: each test plays the server's side of one conversation
by hand (what it sends, what it expects back), which is how the client's wire behaviour
(first message, acks, reconnects, round-robin, timeouts) can be pinned down exactly. The
client against the real server is in tests/integration/placement/test_client*.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from daprplane._proto.placement.v1 import placement_pb2 as pb
from daprplane._proto.placement.v1 import placement_pb2_grpc as pb_grpc
from daprplane.plugins.placement.client import Placement, PlacementClient

NS = "default"
TIMEOUT = 10


@dataclass
class Stream:
    """One ReportDaprStatus call as the peer sees it."""

    context: Any
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    abort: tuple[grpc.StatusCode, str] | None = None

    async def recv(self) -> pb.Host:
        async with asyncio.timeout(TIMEOUT):
            message = await self.context.read()
        assert message is not grpc.aio.EOF, "client closed the stream"
        return message

    async def send(
        self, operation: str, version: int, tables: pb.PlacementTables | None = None
    ) -> None:
        order = pb.PlacementOrder(operation=operation, version=version)
        if tables is not None:
            order.tables.CopyFrom(tables)
        await self.context.write(order)

    async def round(self, version: int, tables: pb.PlacementTables) -> list[pb.Host]:
        """lock, update, unlock, each after the client's ack; returns the three acks."""
        acks = []
        for operation, table in (("lock", None), ("update", tables), ("unlock", None)):
            await self.send(operation, version, table)
            acks.append(await self.recv())
        return acks

    async def closed_by_client(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            while True:
                message = await self.context.read()
                if message is grpc.aio.EOF:
                    return

    def close(self) -> None:
        self.finished.set()


class ScriptedPeer(pb_grpc.PlacementServicer):
    def __init__(self, reject: tuple[grpc.StatusCode, str] | None = None) -> None:
        self.streams: asyncio.Queue[Stream] = asyncio.Queue()
        self.reject = reject
        self.calls = 0

    async def ReportDaprStatus(self, request_iterator: Any, context: Any) -> None:
        self.calls += 1
        if self.reject is not None:
            await context.abort(*self.reject)
        stream = Stream(context)
        await self.streams.put(stream)
        await stream.finished.wait()

    async def next_stream(self) -> Stream:
        async with asyncio.timeout(TIMEOUT):
            return await self.streams.get()


@pytest.fixture
async def serve() -> AsyncIterator[Any]:
    servers: list[grpc.aio.Server] = []

    async def start(peer: ScriptedPeer) -> str:
        server = grpc.aio.server()
        pb_grpc.add_PlacementServicer_to_server(peer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        servers.append(server)
        return f"127.0.0.1:{port}"

    yield start
    for server in servers:
        await server.stop(None)


def client(addresses: str | list[str], **options: Any) -> PlacementClient:
    settings: dict[str, Any] = {
        "app_id": "app-a",
        "namespace": NS,
        "host_name": "10.0.0.1:50002",
        "actor_types": ["T"],
        "retry_interval": 0.05,
        "retry_jitter": 0.02,
    }
    settings.update(options)
    return PlacementClient(addresses, **settings)


def table(version: int, *hosts: tuple[str, str]) -> pb.PlacementTables:
    load_map = {
        name: pb.Host(
            name=name, id=app, namespace=NS, entities=["T"], api_level=20, operation=pb.REPORT
        )
        for name, app in hosts
    }
    return pb.PlacementTables(
        version=str(version),
        replication_factor=100,
        entries={"T": pb.PlacementTable(load_map=load_map)},
    )


def ack(operation: int, version: int) -> pb.Host:
    return pb.Host(operation=operation, version=version, namespace=NS, id="app-a")


async def test_report_round_and_locate(serve: Any) -> None:
    peer = ScriptedPeer()
    address = await serve(peer)
    async with client(address) as c:
        stream = await peer.next_stream()
        assert await stream.recv() == pb.Host(
            name="10.0.0.1:50002",
            id="app-a",
            api_level=20,
            namespace=NS,
            entities=["T"],
            operation=pb.REPORT,
        )
        assert not c.ready
        acks = await stream.round(1, table(1, ("10.0.0.1:50002", "app-a"), ("10.0.0.2:50002", "b")))
        assert acks == [ack(pb.LOCK, 1), ack(pb.UPDATE, 1), ack(pb.UNLOCK, 1)]
        tables = await c.wait_ready(TIMEOUT)
        assert c.ready and c.version == 1 and tables is c.tables
        assert c.address == address
        owners = {c.locate("T", f"actor-{i}") for i in range(200)}
        assert owners == {Placement("10.0.0.1:50002", "app-a"), Placement("10.0.0.2:50002", "b")}
        stream.close()


async def test_update_actor_types_re_reports_on_the_same_stream(serve: Any) -> None:
    peer = ScriptedPeer()
    async with client(await serve(peer)) as c:
        stream = await peer.next_stream()
        await stream.recv()
        await c.update_actor_types(["T", "U"])
        again = await stream.recv()
        assert again.operation == pb.REPORT and list(again.entities) == ["T", "U"]
        assert not again.HasField("version")
        stream.close()


async def test_not_a_leader_moves_to_the_next_address(serve: Any) -> None:
    follower = ScriptedPeer(
        reject=(
            grpc.StatusCode.FAILED_PRECONDITION,
            "node id=p0 is not a leader. Only the leader can serve requests",
        )
    )
    leader = ScriptedPeer()
    addresses = [await serve(follower), await serve(leader)]
    async with client(addresses) as c:
        stream = await leader.next_stream()
        await stream.recv()
        await stream.round(1, table(1, ("10.0.0.1:50002", "app-a")))
        await c.wait_ready(TIMEOUT)
        assert follower.calls == 1 and c.address == addresses[1]
        assert c.last_error is not None and "is not a leader" in c.last_error
        stream.close()


async def test_round_robin_keeps_cycling(serve: Any) -> None:
    follower = ScriptedPeer(
        reject=(grpc.StatusCode.FAILED_PRECONDITION, "node id=x is not a leader")
    )
    other = ScriptedPeer(reject=(grpc.StatusCode.UNAVAILABLE, "placement server is shutting down"))
    addresses = [await serve(follower), await serve(other)]
    async with client(addresses):
        async with asyncio.timeout(TIMEOUT):
            while follower.calls < 3 or other.calls < 3:
                await asyncio.sleep(0.02)
    assert abs(follower.calls - other.calls) <= 1


@pytest.mark.parametrize(
    "bad",
    [
        pb.PlacementOrder(operation="explode", version=1),  # unknown operation
        pb.PlacementOrder(operation="update", version=1),  # below the current version 2
    ],
)
async def test_protocol_violation_reconnects_with_a_fresh_state_machine(
    serve: Any, bad: pb.PlacementOrder
) -> None:
    peer = ScriptedPeer()
    async with client(await serve(peer)) as c:
        first = await peer.next_stream()
        await first.recv()
        await first.round(2, table(2, ("10.0.0.1:50002", "app-a")))
        await c.wait_ready(TIMEOUT)
        await first.context.write(bad)
        await first.closed_by_client()
        second = await peer.next_stream()
        assert (await second.recv()).operation == pb.REPORT
        assert not c.ready
        assert c.tables is not None and c.tables.version == 2  # kept until the next UPDATE
        # Fresh state machine: version 1 is accepted again on the new stream.
        acks = await second.round(1, table(1, ("10.0.0.1:50002", "app-a")))
        assert acks == [ack(pb.LOCK, 1), ack(pb.UPDATE, 1), ack(pb.UNLOCK, 1)]
        await c.wait_ready(TIMEOUT)
        assert c.version == 1 and c.connections == 2
        first.close()
        second.close()


async def test_no_update_after_lock_times_out_and_reconnects(serve: Any) -> None:
    peer = ScriptedPeer()
    async with client(await serve(peer), disseminate_timeout=0.3) as c:
        first = await peer.next_stream()
        await first.recv()
        await first.send("lock", 1)
        assert (await first.recv()) == ack(pb.LOCK, 1)
        await first.closed_by_client()
        assert c.last_error is not None and "no update within 0.3s of lock" in c.last_error
        second = await peer.next_stream()
        assert (await second.recv()).operation == pb.REPORT
        first.close()
        second.close()


async def test_server_ending_the_stream_reconnects(serve: Any) -> None:
    peer = ScriptedPeer()
    async with client(await serve(peer)) as c:
        first = await peer.next_stream()
        await first.recv()
        await first.round(1, table(1, ("10.0.0.1:50002", "app-a")))
        await c.wait_ready(TIMEOUT)
        first.close()  # the handler returns: status OK, end of stream
        second = await peer.next_stream()
        await second.recv()
        assert not c.ready
        second.close()


async def test_observers_see_every_update(serve: Any) -> None:
    peer = ScriptedPeer()
    seen: list[int] = []
    async with client(await serve(peer), actor_types=[]) as c:
        unsubscribe = c.subscribe(lambda t: seen.append(t.version))
        stream = await peer.next_stream()
        assert list((await stream.recv()).entities) == []
        await stream.round(1, table(1, ("10.0.0.9:50002", "z")))
        await stream.round(2, table(2, ("10.0.0.9:50002", "z"), ("10.0.0.8:50002", "y")))
        await c.wait_version(2, TIMEOUT)
        unsubscribe()
        await stream.round(3, table(3))
        await c.wait_version(3, TIMEOUT)
        assert seen == [1, 2]
        stream.close()
