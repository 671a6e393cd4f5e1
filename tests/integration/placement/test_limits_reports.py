"""Reports over the limits end only their own stream; a namespace's big table stalls no other.

Real ``daprplane-placement`` launchers (and Dapr's ``placement`` where both must agree: its gRPC
message limit). A rejected sidecar gets the status and message, the server logs a line naming
it, and every other sidecar keeps its stream and its rounds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.options import (
    ENV_MAX_ACTOR_TYPES_PER_HOST,
    ENV_MAX_MESSAGE_SIZE,
)
from tests.integration.launchers import free_port, run
from tests.integration.placement.sidecars import Sidecar
from tests.integration.placement.test_rounds_joins import (
    WAIT,
    PlacementServer,
    connect_leader,
    placement_server,
    unlocked_table,
)

METHOD = "/dapr.proto.placement.v1.Placement/ReportDaprStatus"
INVALID, EXHAUSTED = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED
BIG_CHANNEL = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def types(count: int, width: int = 20) -> list[str]:
    return [f"{i:0{width}d}" for i in range(count)]


async def rejected(
    server: PlacementServer, ch: grpc.aio.Channel, name: str, entities: list[str]
) -> tuple[grpc.StatusCode, str]:
    sidecar = await Sidecar(ch, name, name.split(":")[0], entities=entities).connect()
    ended = await sidecar.wait_ended(WAIT)
    await sidecar.aclose()
    return ended.code, ended.details


async def others_unaffected(server: PlacementServer, first: Sidecar, rejected_name: str) -> None:
    """``first`` kept its stream, never saw the rejected host, and a new join still settles."""
    async with grpc.aio.insecure_channel(server.address) as other:
        before = max(v for _, v in first.operations())
        late = await Sidecar(other, "c:50002", "c", entities=["T"]).connect()
        expected = {"T": ["a:50002", "c:50002"]}
        await late.wait_for(lambda s: unlocked_table(s, before) == expected, timeout=WAIT)
        await first.wait_for(lambda s: unlocked_table(s, before) == expected, timeout=WAIT)
        await late.aclose()
    assert first.ended is None
    for order in first.orders:
        for table in order.tables.entries.values():
            assert rejected_name not in table.load_map


async def test_too_many_actor_types_is_invalid_argument(tmp_path: Path) -> None:
    with placement_server("daprplane", tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            code, details = await rejected(server, ch, "big:50002", types(10_001, 8))
            assert (code, details) == (
                INVALID,
                "host big:50002 reports 10001 actor types; at most 10000 are accepted per host",
            )
            assert f"Closing the stream of host=big:50002 id=big namespace=default: {details}" in (
                server.output()
            )
            await others_unaffected(server, a, "big:50002")
            await a.aclose()


@pytest.mark.parametrize("kind", ["daprplane", "dapr"])
async def test_a_message_over_the_size_limit_is_resource_exhausted(
    kind: str, tmp_path: Path
) -> None:
    """Both servers keep gRPC's 4 MiB receive limit, with grpc-go's status and message."""
    huge = ["x" * 600_000 + str(i) for i in range(8)]
    size = placement_pb2.Host(
        name="huge:50002",
        id="huge",
        namespace="default",
        entities=huge,
        api_level=20,
        operation=placement_pb2.REPORT,
    ).ByteSize()
    with placement_server(kind, tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            code, details = await rejected(server, ch, "huge:50002", huge)
            assert (code, details) == (
                EXHAUSTED,
                f"grpc: received message larger than max ({size} vs. 4194304)",
            )
            if kind == "daprplane":
                assert "Closing the stream of host=huge:50002 id=huge namespace=default" in (
                    server.output()
                )
            await others_unaffected(server, a, "huge:50002")
            await a.aclose()


async def test_a_host_taking_too_much_of_the_table_is_resource_exhausted(tmp_path: Path) -> None:
    with placement_server("daprplane", tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            # 2,000 types of 40 characters: an 84 KB report, but 2,000 copies of it in a table.
            wide = types(2_000, 40)
            size = Sidecar(ch, "wide:50002", "wide", entities=wide).report_host().ByteSize()
            code, details = await rejected(server, ch, "wide:50002", wide)
            assert code is EXHAUSTED
            assert details.startswith("host wide:50002 would take ")
            assert details.endswith(
                f" bytes of the placement table (2000 actor types, each listing its {size}-byte "
                "report); at most 67108864 are accepted per host"
            )
            assert "Closing the stream of host=wide:50002 id=wide namespace=default" in (
                server.output()
            )
            await others_unaffected(server, a, "wide:50002")
            await a.aclose()


async def test_a_later_report_over_the_limit_closes_that_stream_and_its_entry_goes(
    tmp_path: Path,
) -> None:
    with placement_server("daprplane", tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            # b acks by hand: no ack of its own may race the server ending its call.
            b = await Sidecar(ch, "b:50002", "b", entities=["T"], auto_ack=False).connect()
            await b.wait_for(lambda s: bool(s.orders))
            settled = b.orders[0].version
            for operation in ("lock", "update", "unlock"):
                await b.wait_order(operation, settled)
                await b.ack(operation, settled)
            await a.wait_for(lambda s: unlocked_table(s, 1) == {"T": ["a:50002", "b:50002"]})
            await b.report(types(10_001, 8))
            ended = await b.wait_ended(WAIT)
            assert ended.code is INVALID and "reports 10001 actor types" in ended.details
            await a.wait_for(lambda s: unlocked_table(s, settled) == {"T": ["a:50002"]})
            assert a.ended is None
            for s in (a, b):
                await s.aclose()


async def test_limits_come_from_the_environment(tmp_path: Path) -> None:
    env = {ENV_MAX_ACTOR_TYPES_PER_HOST: "3", ENV_MAX_MESSAGE_SIZE: "2000"}
    with placement_server("daprplane", tmp_path, env=env) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            code, details = await rejected(server, ch, "four:50002", ["A", "B", "C", "D"])
            assert (code, details) == (
                INVALID,
                "host four:50002 reports 4 actor types; at most 3 are accepted per host",
            )
            code, details = await rejected(server, ch, "long:50002", ["L" * 2500])
            assert code is EXHAUSTED and details.endswith(" vs. 2000)")
            await others_unaffected(server, a, "four:50002")
            await a.aclose()


def test_an_invalid_limit_is_fatal_at_start() -> None:
    result = run(
        "daprplane-placement",
        f"--port={free_port()}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        env={ENV_MAX_MESSAGE_SIZE: "4MiB"},
    )
    assert result.returncode == 1
    assert f"invalid value for {ENV_MAX_MESSAGE_SIZE}: '4MiB' is not a positive integer" in (
        result.stdout + result.stderr
    )


async def test_a_namespace_with_a_huge_table_in_flight_stalls_no_other(tmp_path: Path) -> None:
    """``big`` has a 1,000-type host whose ~21 MiB UPDATE it never reads (its round stays open);
    meanwhile ``small`` runs round after round."""
    big_host = placement_pb2.Host(
        name="big:50002",
        id="big",
        namespace="big",
        entities=[f"BenchActorType{i:06d}" for i in range(1000)],
        api_level=20,
        operation=placement_pb2.REPORT,
    )
    with placement_server("daprplane", tmp_path) as server:
        async with (
            grpc.aio.insecure_channel(server.address) as ch,
            grpc.aio.insecure_channel(server.address, options=BIG_CHANNEL) as big_ch,
        ):
            await (await connect_leader(server, ch)).close()  # the server leads
            stalled = big_ch.stream_stream(
                METHOD,
                request_serializer=placement_pb2.Host.SerializeToString,
                response_deserializer=placement_pb2.PlacementOrder.FromString,
            )()
            await stalled.write(big_host)
            lock = await stalled.read()
            assert (lock.operation, lock.version) == ("lock", 1)
            await stalled.write(
                placement_pb2.Host(
                    operation=placement_pb2.LOCK, version=1, namespace="big", id="big"
                )
            )
            # From here on nothing is read from the big namespace's stream: its UPDATE waits.

            small = await Sidecar(ch, "s:50002", "s", namespace="small", entities=["T"]).connect()
            await small.wait_unlocked(1, timeout=WAIT)
            await small.report(["T", "U"])
            await small.wait_unlocked(2, timeout=WAIT)
            joiner = await Sidecar(ch, "j:50002", "j", namespace="small", entities=["U"]).connect()
            await joiner.wait_unlocked(3, timeout=WAIT)
            await small.wait_unlocked(3, timeout=WAIT)
            assert small.load_map() == {"T": ["s:50002"], "U": ["j:50002", "s:50002"]}

            # The big namespace's round is still open, and resumes once its stream reads.
            update = await asyncio.wait_for(stalled.read(), WAIT)
            assert (update.operation, update.version) == ("update", 1)
            assert len(update.tables.entries) == 1000
            await stalled.write(
                placement_pb2.Host(
                    operation=placement_pb2.UPDATE, version=1, namespace="big", id="big"
                )
            )
            unlock = await asyncio.wait_for(stalled.read(), WAIT)
            assert (unlock.operation, unlock.version) == ("unlock", 1)
            assert small.ended is None and joiner.ended is None
            stalled.cancel()
            for s in (small, joiner):
                await s.aclose()
