"""Whether this replica leads: the seam between a component and an election engine.

A component runs some work on every replica and some only on the leader. It asks an engine
whether this replica leads now (:attr:`Leadership.is_leader`), waits for that to change, and is
called back the moment leadership ends, so that leader-only work stops before another replica
can be elected. What losing leadership means is the component's choice: placement closes its
streams and competes again, the operator exits.

Engines: :class:`SingleNode` (leads at once), :class:`~daprplane.core.kube.lease.LeaseLeadership`
(a Kubernetes Lease), and any a component defines itself by subclassing :class:`Leadership`.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Callable


class Leadership(ABC):
    """One replica's view of an election; engines report changes with :meth:`_gained` and
    :meth:`_lost`."""

    def __init__(self) -> None:
        self._leading = asyncio.Event()
        self._following = asyncio.Event()
        self._following.set()
        self._lost_callbacks: list[Callable[[], None]] = []

    @property
    def is_leader(self) -> bool:
        return self._leading.is_set()

    async def wait_for_leadership(self) -> None:
        await self._leading.wait()

    async def wait_for_loss(self) -> None:
        await self._following.wait()

    def on_lost(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (synchronously, in the engine's task) each time leadership ends."""
        self._lost_callbacks.append(callback)

    def _gained(self) -> None:
        self._following.clear()
        self._leading.set()

    def _lost(self) -> None:
        if not self._leading.is_set():
            return
        self._leading.clear()
        self._following.set()
        for callback in self._lost_callbacks:
            callback()

    @abstractmethod
    async def start(self) -> None:
        """Join the election; returns once the engine runs (leader or not)."""

    async def aclose(self) -> None:  # noqa: B027 - most engines have nothing to release
        """Leave the election."""


class SingleNode(Leadership):
    """Leads as soon as it starts: the only replica, or a component told not to elect."""

    async def start(self) -> None:
        self._gained()
