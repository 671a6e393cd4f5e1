"""Who leads among the placement peers: the engines placement chooses from.

Only the leader serves streams; no placement state is replicated, so an election engine only
has to say whether this node leads now and to tell when that changes (the
:class:`~daprplane.core.kube.leadership.Leadership` seam shared with the other components). A
node that loses leadership closes its streams with Unavailable (sidecars then try the other
peers) and waits to lead again, instead of exiting as Dapr does.

:class:`RaftLeadership` runs raft's election among the ``--initial-cluster`` peers and listens
on this node's raft address even when it is the only peer, as Dapr does; several peers in
kubernetes mode elect on a Lease instead (:mod:`daprplane.plugins.placement.lease`).
:class:`SingleNode` leads without any election (embedded and test servers).
"""

from __future__ import annotations

from collections.abc import Sequence

from daprplane.core.kube.leadership import Leadership, SingleNode
from daprplane.plugins.placement.options import Peer
from daprplane.plugins.placement.raft_node import RaftNode, RaftTimings
from daprplane.plugins.placement.raft_tls import RaftTls
from daprplane.plugins.placement.raft_transport import PeerLink, RaftListenError, RaftServer
from daprplane.plugins.placement.raft_wire import Message

__all__ = ["Leadership", "RaftLeadership", "RaftListenError", "SingleNode"]


class RaftLeadership(Leadership):
    """Raft's leader election (:mod:`.raft_node`) on the raft port (:mod:`.raft_transport`).

    :meth:`start` raises :class:`RaftListenError` when this node's raft address cannot be
    resolved or bound; another peer's address that is not ``host:port`` is only unreachable.
    A single peer leads when :meth:`start` returns; a leader that stops hearing from a majority
    steps down by itself, which turns into :meth:`Leadership._lost` here.
    """

    def __init__(
        self,
        node_id: str,
        peers: Sequence[Peer],
        *,
        tls: RaftTls | None = None,
        timings: RaftTimings | None = None,
        resolve_attempts: int | None = None,
    ) -> None:
        super().__init__()
        addresses: dict[str, str] = {}
        for peer in peers:
            addresses.setdefault(peer.id, peer.address)
        if node_id not in addresses:
            raise ValueError(f"node {node_id} is not one of the raft peers")
        self.node_id = node_id
        self.address = addresses[node_id]
        self._links = {
            peer_id: PeerLink(peer_id, address, tls=tls)
            for peer_id, address in addresses.items()
            if peer_id != node_id
        }
        self._node = RaftNode(
            node_id, list(addresses), self._call, on_change=self._changed, timings=timings
        )
        server_options = {} if resolve_attempts is None else {"resolve_attempts": resolve_attempts}
        self._server = RaftServer(self.address, self._node.handle, tls=tls, **server_options)

    @property
    def bound(self) -> str | None:
        """Where the raft listener is bound (``host:port``), once started."""
        return self._server.bound

    @property
    def term(self) -> int:
        return self._node.term

    async def _call(self, peer_id: str, request: Message, timeout: float) -> Message | None:
        return await self._links[peer_id].call(request, timeout)

    def _changed(self, leading: bool) -> None:
        if leading:
            self._gained()
        else:
            self._lost()

    async def start(self) -> None:
        await self._server.start()
        await self._node.start()

    async def aclose(self) -> None:
        await self._node.aclose()
        for link in self._links.values():
            await link.aclose()
        await self._server.aclose()
