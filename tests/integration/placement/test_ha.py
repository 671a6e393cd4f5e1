"""Several standalone peers: raft elects exactly one leader; the others refuse streams."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import Iterator

import grpc
import pytest

from tests.integration.launchers import free_port
from tests.integration.placement.server_fixture import PlacementProcess, channel, run_placement
from tests.integration.placement.sidecars import Sidecar


@contextlib.contextmanager
def cluster(size: int) -> Iterator[list[PlacementProcess]]:
    peers = [f"p{i}=127.0.0.1:{free_port()}" for i in range(size)]
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(run_placement(f"--id=p{i}", f"--initial-cluster={','.join(peers)}"))
            for i in range(size)
        ]


def _is_leader(process: PlacementProcess) -> bool:
    if process.process.poll() is not None:
        return False
    match = re.search(r"^dapr_placement_leader_status (\S+)$", process.metrics(), re.MULTILINE)
    return match is not None and float(match.group(1)) == 1.0


async def _one_leader(processes: list[PlacementProcess], timeout: float = 20) -> PlacementProcess:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        leaders = [p for p in processes if await asyncio.to_thread(_is_leader, p)]
        if len(leaders) == 1:
            return leaders[0]
        await asyncio.sleep(0.2)
    raise AssertionError("no single leader in time")


async def test_one_leader_followers_refuse_and_failover() -> None:
    with cluster(3) as processes:
        leader = await _one_leader(processes)
        followers = [p for p in processes if p is not leader]
        async with channel(followers[0].address) as ch:
            # Refused before anything is read, so the test reads without writing: a write racing
            # the refusal can turn the Python client's status into a local INTERNAL.
            call = ch.stream_stream("/dapr.proto.placement.v1.Placement/ReportDaprStatus")()
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call.read()
            assert caught.value.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert "is not a leader. Only the leader can serve requests" in (
                caught.value.details() or ""
            )
        assert followers[0].get("/healthz")[0] == 200

        async with channel(leader.address) as ch:
            a = await Sidecar(ch, "a", entities=["T"]).connect()
            await a.wait_unlocked(1)
            await asyncio.to_thread(leader.stop)
            await a.wait_ended()
            await a.aclose()

        successor = await _one_leader(followers)
        async with channel(successor.address) as ch:
            again = await Sidecar(ch, "a", entities=["T"]).connect()
            await again.wait_unlocked(1)  # tables are rebuilt from scratch
            assert again.load_map() == {"T": ["a"]}
            await again.aclose()


async def test_leader_without_a_majority_steps_down_and_closes_its_streams() -> None:
    with cluster(3) as processes:
        leader = await _one_leader(processes)
        async with channel(leader.address) as ch:
            a = await Sidecar(ch, "a", entities=["T"]).connect()
            await a.wait_unlocked(1)
            for follower in processes:
                if follower is not leader:
                    await asyncio.to_thread(follower.stop)
            ended = await a.wait_ended(timeout=15)
            assert ended.code is grpc.StatusCode.UNAVAILABLE
            assert ended.details == f"node id={_node_id(leader)} lost leadership"
            await a.aclose()
        assert leader.process.poll() is None  # still running, waiting to lead again
        assert not await asyncio.to_thread(_is_leader, leader)


def _node_id(process: PlacementProcess) -> str:
    return next(a.split("=", 1)[1] for a in process.process.args if str(a).startswith("--id="))  # type: ignore[union-attr]
