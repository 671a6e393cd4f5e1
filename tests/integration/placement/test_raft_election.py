"""Raft's election among placement peers, several nodes in one event loop on real loopback ports.

Timings are shortened (50ms heartbeats, 300ms election timeout and lease) so that elections,
failovers and step-downs take well under a second; the rules are those of the launcher.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable

import pytest

from daprplane.plugins.placement.leadership import RaftLeadership, RaftListenError
from daprplane.plugins.placement.options import Peer
from daprplane.plugins.placement.raft_node import RaftNode, RaftTimings, Role
from daprplane.plugins.placement.raft_wire import (
    Heartbeat,
    HeartbeatReply,
    Message,
    VoteReply,
    VoteRequest,
)
from tests.integration.launchers import free_port

FAST = RaftTimings(
    heartbeat_interval=0.05, election_timeout=0.3, leader_lease=0.3, heartbeat_timeout=0.2
)


def peers(size: int) -> list[Peer]:
    return [Peer(f"p{i}", f"127.0.0.1:{free_port()}") for i in range(size)]


@contextlib.asynccontextmanager
async def cluster(members: list[Peer], running: int | None = None) -> AsyncIterator[list[Node]]:
    nodes = [Node(peer.id, members) for peer in members[: running or len(members)]]
    try:
        for node in nodes:
            await node.start()
        yield nodes
    finally:
        for node in nodes:
            await node.aclose()


class Node(RaftLeadership):
    """A peer that records every loss of leadership."""

    def __init__(self, node_id: str, members: list[Peer]) -> None:
        super().__init__(node_id, members, timings=FAST)
        self.losses = 0
        self.on_lost(self._count)

    def _count(self) -> None:
        self.losses += 1


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def one_leader(nodes: list[Node], timeout: float = 5.0) -> Node:
    await eventually(lambda: sum(node.is_leader for node in nodes) == 1, timeout)
    (leader,) = [node for node in nodes if node.is_leader]
    return leader


async def test_a_single_peer_leads_when_started_and_listens_on_its_address() -> None:
    (me,) = peers(1)
    node = RaftLeadership(me.id, [me])
    await node.start()
    try:
        assert node.is_leader and node.term == 1
        assert node.bound == me.address
        _, writer = await asyncio.open_connection(*me.address.split(":"))
        writer.close()
    finally:
        await node.aclose()


async def test_three_peers_elect_one_leader_that_stays() -> None:
    async with cluster(peers(3)) as nodes:
        leader = await one_leader(nodes)
        term = leader.term
        await eventually(lambda: all(n._node.leader_id == leader.node_id for n in nodes))
        await asyncio.sleep(1.0)  # about three election timeouts: no node may start another
        assert [n.is_leader for n in nodes].count(True) == 1 and leader.is_leader
        assert {n.term for n in nodes} == {term}


async def test_failover_and_a_returning_peer_does_not_depose_the_leader() -> None:
    members = peers(3)
    async with cluster(members) as nodes:
        first = await one_leader(nodes)
        await first.aclose()
        rest = [n for n in nodes if n is not first]
        second = await one_leader(rest)
        assert second.term > first.term
        term = second.term

        returning = Node(first.node_id, members)  # a restarted process: term 0, no memory
        await returning.start()
        try:
            await eventually(lambda: returning._node.leader_id == second.node_id)
            await asyncio.sleep(1.0)
            assert second.is_leader and second.term == term and returning.term == term
            assert not returning.is_leader
        finally:
            await returning.aclose()


async def test_leader_without_a_majority_steps_down_and_no_minority_elects() -> None:
    async with cluster(peers(3)) as nodes:
        leader = await one_leader(nodes)
        for node in nodes:
            if node is not leader:
                await node.aclose()
        await eventually(lambda: not leader.is_leader, timeout=2.0)
        assert leader.losses == 1
        term = leader.term
        await asyncio.sleep(1.5)
        assert not leader.is_leader
        assert leader.term > term  # it keeps campaigning, and keeps losing


async def test_a_minority_of_peers_started_elects_nobody_until_a_majority_runs() -> None:
    members = peers(3)
    async with cluster(members, running=1) as (lonely,):
        await asyncio.sleep(1.0)
        assert not lonely.is_leader
        second = Node("p1", members)
        await second.start()
        try:
            await one_leader([lonely, second])
        finally:
            await second.aclose()


async def test_the_raft_port_taken_is_a_listen_error() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        node = RaftLeadership("p0", [Peer("p0", f"127.0.0.1:{port}")])
        with pytest.raises(RaftListenError) as caught:
            await node.start()
        await node.aclose()
    assert str(caught.value) == (
        f"failed to create raft listener: listen tcp 127.0.0.1:{port}: bind: address already in use"
    )


async def test_an_unresolvable_own_address_is_a_listen_error_after_the_retries() -> None:
    node = RaftLeadership("p0", [Peer("p0", "no-such-peer.invalid:8201")], resolve_attempts=2)
    with pytest.raises(RaftListenError, match=r"failed to resolve raft address .* 2 attempts"):
        await node.start()
    await node.aclose()


async def test_a_host_name_is_resolved_and_bound() -> None:
    port = free_port()
    node = RaftLeadership("p0", [Peer("p0", f"localhost:{port}")])
    await node.start()
    try:
        assert node.bound in (f"127.0.0.1:{port}", f"[::1]:{port}")
    finally:
        await node.aclose()


async def test_a_peer_whose_address_is_not_host_port_is_only_unreachable() -> None:
    members = peers(3)
    members[2] = Peer("p2", "no-port")
    async with cluster(members, running=2) as nodes:
        await one_leader(nodes)  # two of three are a majority


# -- the voting rules, on one node without a network ----------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def _unreachable(peer: str, request: Message, timeout: float) -> Message | None:
    return None


def voter(clock: Clock) -> RaftNode:
    return RaftNode(
        "p0", ["p0", "p1", "p2"], _unreachable, on_change=lambda _: None, timings=FAST, clock=clock
    )


def test_one_vote_per_term_and_stale_terms_are_refused() -> None:
    node = voter(Clock())
    assert node.handle(VoteRequest(3, "p1")) == VoteReply(3, True)
    assert node.handle(VoteRequest(3, "p1")) == VoteReply(3, True)  # a retry of the same
    assert node.handle(VoteRequest(3, "p2")) == VoteReply(3, False)
    assert node.handle(VoteRequest(2, "p2")) == VoteReply(3, False)
    assert node.handle(VoteRequest(4, "p2")) == VoteReply(4, True)


def test_strangers_get_no_vote_and_are_not_followed() -> None:
    node = voter(Clock())
    assert node.handle(VoteRequest(1, "intruder")) == VoteReply(0, False)
    assert node.handle(VoteRequest(1, "p0")) == VoteReply(0, False)  # itself, from outside
    assert node.handle(Heartbeat(9, "intruder")) == HeartbeatReply(0, False)
    assert node.term == 0 and node.leader_id is None


def test_a_live_leader_is_kept_a_silent_one_is_replaced() -> None:
    clock = Clock()
    node = voter(clock)
    assert node.handle(Heartbeat(5, "p1")) == HeartbeatReply(5, True)
    assert node.leader_id == "p1"
    clock.now += FAST.election_timeout / 2
    # Within the election timeout of the leader's last heartbeat: refused, term kept.
    assert node.handle(VoteRequest(6, "p2")) == VoteReply(5, False)
    assert node.term == 5
    clock.now += FAST.election_timeout
    assert node.handle(VoteRequest(6, "p2")) == VoteReply(6, True)
    assert node.leader_id is None
    assert node.handle(Heartbeat(5, "p1")) == HeartbeatReply(6, False)  # the old leader


def test_replies_are_not_requests() -> None:
    node = voter(Clock())
    assert node.handle(VoteReply(1, True)) is None
    assert node.handle(HeartbeatReply(1, True)) is None


async def test_a_single_node_is_leader_in_term_1_and_quietly_stops() -> None:
    changes: list[bool] = []
    node = RaftNode("solo", ["solo"], _unreachable, on_change=changes.append)
    await node.start()
    assert node.role is Role.LEADER and node.term == 1 and changes == [True]
    await node.aclose()
    assert changes == [True]  # stopping is not losing
