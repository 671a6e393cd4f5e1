"""Who leads among the placement peers: the engines placement chooses from.

Only the leader serves streams; no placement state is replicated, so an election engine only
has to say whether this node leads now and to tell when that changes (the
:class:`~daprplane.core.kube.leadership.Leadership` seam shared with the other components). A
node that loses leadership closes its streams with Unavailable (sidecars then try the other
peers) and waits to lead again, instead of exiting as Dapr does.

:class:`SingleNode` serves a single peer, the core Lease election several peers in kubernetes
mode (:mod:`daprplane.plugins.placement.lease`) and :class:`RaftLeadership` several peers in
standalone mode.
"""

from __future__ import annotations

import asyncio
from typing import Any

from daprplane.core.background import cancel_and_wait
from daprplane.core.kube.leadership import Leadership, SingleNode

__all__ = ["LEADER_LEASE", "Leadership", "RaftLeadership", "SingleNode"]

LEADER_LEASE = 2.0


class RaftLeadership(Leadership):
    """Raft among the ``--initial-cluster`` peers (pysyncobj), used only to elect a leader.

    Nothing is replicated: as in Dapr since 1.17, a new leader rebuilds every table from the
    sidecars' re-reports. pysyncobj runs its own thread; this class polls its state from the
    event loop. A leader that stops hearing from a majority steps down by itself, which turns
    into :meth:`Leadership._lost` here.
    """

    def __init__(self, self_address: str, partner_addresses: list[str], *, poll: float = 0.1):
        super().__init__()
        self.self_address = self_address
        self.partner_addresses = partner_addresses
        self.poll = poll
        self._raft: Any = None
        self._watcher: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from pysyncobj import SyncObj, SyncObjConf

        conf = SyncObjConf(
            dynamicMembershipChange=False,
            commandsWaitLeader=False,
            # Step down after 2s without a majority, as Dapr's raft lease (pysyncobj: 30s), so
            # an isolated leader releases its sidecars to the new one quickly.
            leaderFallbackTimeout=LEADER_LEASE,
        )
        # The constructor binds the raft port; keep that off the event loop.
        self._raft = await asyncio.to_thread(
            SyncObj, self.self_address, self.partner_addresses, conf
        )
        self._watcher = asyncio.create_task(self._watch(), name="raft-leadership")

    async def _watch(self) -> None:
        while True:
            if self._raft._isLeader():
                self._gained()
            else:
                self._lost()
            await asyncio.sleep(self.poll)

    async def aclose(self) -> None:
        watcher, self._watcher = self._watcher, None
        await cancel_and_wait(watcher)
        raft, self._raft = self._raft, None
        if raft is not None:
            await asyncio.to_thread(raft.destroy_synchronous)
