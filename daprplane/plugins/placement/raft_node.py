"""Raft's leader election among the ``--initial-cluster`` peers, without a log.

Placement replicates nothing (a new leader rebuilds every table from the sidecars' re-reports),
so only raft's election is kept: terms, one vote per term, a majority to lead, the leader's
heartbeats. With no log every candidate is "up to date", and election safety (at most one
leader per term) still holds because it rests on majorities alone.

Two additions keep a leader from outliving its majority or being deposed for nothing:

- **Leader lease**: a leader that has not heard from a majority within
  :attr:`RaftTimings.leader_lease` steps down, so a cut-off leader releases its sidecars before
  the others elect a new one (Dapr's raft lease is 2s as well).
- **Leader stickiness** (raft thesis, §4.2.3): a node that heard from a live leader within the
  minimum election timeout, or that leads, refuses votes without adopting the candidate's term,
  so a peer that was cut off and comes back cannot depose a healthy leader.

The node is transport-agnostic: it sends through ``call`` and answers what :meth:`handle` is
given. A single peer is its own majority and leads as soon as it starts.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import random
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any

from daprplane.core.background import cancel_and_wait
from daprplane.plugins.placement.raft_wire import (
    Heartbeat,
    HeartbeatReply,
    Message,
    VoteReply,
    VoteRequest,
)

__all__ = ["Call", "RaftNode", "RaftTimings", "Role"]

log = logging.getLogger("dapr.placement.leadership.raft")

#: ``call(peer_id, request, timeout)``: the peer's reply, or None when it could not be had.
Call = Callable[[str, Message, float], Coroutine[Any, Any, Message | None]]


@dataclass(frozen=True)
class RaftTimings:
    """Dapr's raft timings for several peers: 2s heartbeat/election timeout and lease."""

    #: How often the leader sends heartbeats (hashicorp/raft: a tenth of the 2s timeout).
    heartbeat_interval: float = 0.2
    #: A follower without a heartbeat for a random time in [t, 2t) starts an election.
    election_timeout: float = 2.0
    #: A leader without replies from a majority for this long steps down.
    leader_lease: float = 2.0
    #: How long one heartbeat may take before it counts as lost.
    heartbeat_timeout: float = 1.0


class Role(enum.Enum):
    FOLLOWER = "follower"
    CANDIDATE = "candidate"
    LEADER = "leader"


class RaftNode:
    def __init__(
        self,
        node_id: str,
        peer_ids: Sequence[str],
        call: Call,
        *,
        on_change: Callable[[bool], None],
        timings: RaftTimings | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        if node_id not in peer_ids:
            raise ValueError(f"node {node_id} is not one of the peers {list(peer_ids)}")
        self.node_id = node_id
        self.peers = tuple(peer for peer in peer_ids if peer != node_id)
        self.quorum = (len(self.peers) + 1) // 2 + 1
        self.timings = timings or RaftTimings()
        self._call = call
        self._on_change = on_change
        self._clock = clock
        self._rng = rng
        self.term = 0
        self.voted_for: str | None = None
        self.role = Role.FOLLOWER
        self.leader_id: str | None = None
        self._last_leader_contact: float | None = None
        self._election_deadline = 0.0
        self._task: asyncio.Task[None] | None = None

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Join the election. A single peer has won it when this returns."""
        if self._task is not None:
            return
        if self.quorum == 1:
            self._start_election()
        else:
            self._reset_election_timer()
        self._task = asyncio.create_task(self._run(), name="raft-node")

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        # Quietly: leaving is not losing, and whoever stops the node stops what it led too.
        self.role = Role.FOLLOWER

    # -- answering peers -------------------------------------------------------------------

    def handle(self, message: Message) -> Message | None:
        """The reply to a peer's request; None for something that is not a request."""
        if isinstance(message, VoteRequest):
            return self._vote(message)
        if isinstance(message, Heartbeat):
            return self._heartbeat(message)
        return None

    def _vote(self, request: VoteRequest) -> VoteReply:
        if request.candidate not in self.peers:
            log.debug("Refusing vote to unknown node %s", request.candidate)
            return VoteReply(self.term, False)
        if request.term < self.term or self._leader_is_alive():
            return VoteReply(self.term, False)
        if request.term > self.term:
            self._adopt_term(request.term)
        if self.voted_for not in (None, request.candidate):
            return VoteReply(self.term, False)
        self.voted_for = request.candidate
        self._reset_election_timer()
        log.debug("Voted for %s in term %d", request.candidate, self.term)
        return VoteReply(self.term, True)

    def _heartbeat(self, heartbeat: Heartbeat) -> HeartbeatReply:
        if heartbeat.leader not in self.peers or heartbeat.term < self.term:
            return HeartbeatReply(self.term, False)
        if heartbeat.term > self.term:
            self._adopt_term(heartbeat.term)
        elif self.role is not Role.FOLLOWER:
            # A candidate of this term lost to the sender (two leaders of one term cannot be).
            self._become(Role.FOLLOWER)
        if self.leader_id != heartbeat.leader:
            log.debug("Following leader %s in term %d", heartbeat.leader, self.term)
        self.leader_id = heartbeat.leader
        self._last_leader_contact = self._clock()
        self._reset_election_timer()
        return HeartbeatReply(self.term, True)

    def _leader_is_alive(self) -> bool:
        if self.role is Role.LEADER:
            return True
        contact = self._last_leader_contact
        return (
            self.leader_id is not None
            and contact is not None
            and self._clock() - contact < self.timings.election_timeout
        )

    # -- state changes ---------------------------------------------------------------------

    def _adopt_term(self, term: int) -> None:
        self.term = term
        self.voted_for = None
        self.leader_id = None
        self._become(Role.FOLLOWER)

    def _become(self, role: Role) -> None:
        previous, self.role = self.role, role
        if previous is role:
            return
        log.debug("Entering %s state in term %d", role.value, self.term)
        if role is Role.LEADER:
            self._on_change(True)
        elif previous is Role.LEADER:
            self._on_change(False)

    def _reset_election_timer(self) -> None:
        timeout = self.timings.election_timeout * (1 + self._rng())
        self._election_deadline = self._clock() + timeout

    def _start_election(self) -> int:
        self.term += 1
        self.voted_for = self.node_id
        self.leader_id = None
        self._become(Role.CANDIDATE)
        self._reset_election_timer()
        if self.quorum == 1:
            self._win()
        return self.term

    def _win(self) -> None:
        self.leader_id = self.node_id
        log.debug("Election won in term %d", self.term)
        self._become(Role.LEADER)

    # -- the node's own work ---------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            if self.role is Role.LEADER:
                await self._lead(self.term)
                continue
            delay = self._election_deadline - self._clock()
            if delay > 0:
                # Heartbeats and granted votes move the deadline while this sleeps.
                await asyncio.sleep(delay)
                continue
            log.debug("No leader heard from; starting an election in term %d", self.term + 1)
            await self._campaign(self._start_election())

    async def _campaign(self, term: int) -> None:
        if self.role is not Role.CANDIDATE:
            return
        request = VoteRequest(term, self.node_id)
        pending: set[asyncio.Task[Message | None]] = {
            asyncio.create_task(self._call(peer, request, self.timings.election_timeout))
            for peer in self.peers
        }
        votes = 1
        try:
            while pending and self.role is Role.CANDIDATE and self.term == term:
                remaining = self._election_deadline - self._clock()
                if remaining <= 0:
                    return  # split vote or no majority reachable: the next term tries again
                done, pending = await asyncio.wait(
                    pending, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                )
                for task in done:
                    reply = task.result()
                    if not isinstance(reply, VoteReply):
                        continue
                    if reply.term > self.term:
                        self._adopt_term(reply.term)
                        return
                    if reply.granted and self.role is Role.CANDIDATE and self.term == term:
                        votes += 1
                        if votes >= self.quorum:
                            self._win()
                            return
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)

    async def _lead(self, term: int) -> None:
        if not self.peers:
            await asyncio.Future()  # a single peer leads until it stops
        started = self._clock()
        acked = dict.fromkeys(self.peers, started)
        senders = [
            asyncio.create_task(self._send_heartbeats(peer, term, acked), name=f"raft-to-{peer}")
            for peer in self.peers
        ]
        try:
            while self.role is Role.LEADER and self.term == term:
                await asyncio.sleep(self.timings.heartbeat_interval)
                if self.role is not Role.LEADER or self.term != term:
                    return
                now = self._clock()
                alive = 1 + sum(now - at < self.timings.leader_lease for at in acked.values())
                if alive < self.quorum:
                    log.warning(
                        "Lost contact with a majority of the raft peers for %gs; stepping down",
                        self.timings.leader_lease,
                    )
                    self.leader_id = None
                    self._reset_election_timer()
                    self._become(Role.FOLLOWER)
                    return
        finally:
            # Not cancel_and_wait: it would swallow a cancellation of this task arriving now.
            for sender in senders:
                sender.cancel()
            if senders:
                await asyncio.wait(senders)

    async def _send_heartbeats(self, peer: str, term: int, acked: dict[str, float]) -> None:
        heartbeat = Heartbeat(term, self.node_id)
        while self.role is Role.LEADER and self.term == term:
            sent = self._clock()
            reply = await self._call(peer, heartbeat, self.timings.heartbeat_timeout)
            if isinstance(reply, HeartbeatReply) and self.term == term:
                if reply.term > term:
                    self._adopt_term(reply.term)
                    return
                if reply.accepted:
                    acked[peer] = sent
            pause = self.timings.heartbeat_interval - (self._clock() - sent)
            if pause > 0:
                await asyncio.sleep(pause)
