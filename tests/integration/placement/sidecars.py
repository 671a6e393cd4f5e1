"""Fake daprd sidecars for placement tests: real gRPC streams that follow (or break) the protocol.

``Sidecar`` connects like daprd >= 1.17: it REPORTs its Host, then answers every ``lock``,
``update`` and ``unlock`` with an ack carrying the order's version (unless ``auto_ack`` is off,
for tests that ack by hand or never). Everything received is recorded; helpers wait for a given
order or for the RPC's final status.

    async with grpc.aio.insecure_channel(address) as channel:
        a = await Sidecar(channel, "10.0.0.1:50002", "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        assert a.load_map() == {"T": ["10.0.0.1:50002"]}
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

import grpc

from daprplane._proto.placement.v1 import placement_pb2, placement_pb2_grpc

ACKS = {
    "lock": placement_pb2.LOCK,
    "update": placement_pb2.UPDATE,
    "unlock": placement_pb2.UNLOCK,
}


@dataclass(frozen=True)
class Ended:
    code: grpc.StatusCode
    details: str


class Sidecar:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        name: str,
        app_id: str | None = None,
        *,
        namespace: str = "default",
        entities: Iterable[str] = (),
        auto_ack: bool = True,
    ) -> None:
        self.stub = placement_pb2_grpc.PlacementStub(channel)  # type: ignore[no-untyped-call]
        self.name = name
        self.app_id = app_id or name
        self.namespace = namespace
        self.entities = list(entities)
        self.auto_ack = auto_ack
        self.orders: list[placement_pb2.PlacementOrder] = []
        self._changed = asyncio.Condition()
        self._call: grpc.aio.StreamStreamCall | None = None
        self._reader: asyncio.Task[None] | None = None
        self.ended: Ended | None = None
        # gRPC allows one write in flight per call; acks come from the reader and from tests.
        self._write_lock = asyncio.Lock()
        self._acked: set[tuple[str, int]] = set()
        self._seen = 0

    def report_host(self, entities: Iterable[str] | None = None) -> placement_pb2.Host:
        return placement_pb2.Host(
            name=self.name,
            id=self.app_id,
            namespace=self.namespace,
            entities=list(self.entities if entities is None else entities),
            api_level=20,
            operation=placement_pb2.REPORT,
        )

    async def connect(self, first: placement_pb2.Host | None = None) -> Sidecar:
        self._call = self.stub.ReportDaprStatus()
        try:
            await self._call.write(first if first is not None else self.report_host())
        except grpc.aio.AioRpcError as error:
            # Refused before the first message went out (e.g. at the TLS handshake).
            self.ended = Ended(error.code(), error.details() or "")
            return self
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self._call is not None
        try:
            async for order in self._call:
                async with self._changed:
                    self.orders.append(order)
                    self._changed.notify_all()
                if self.auto_ack:
                    with contextlib.suppress(Exception):
                        await self._ack_pending()
        except grpc.aio.AioRpcError as error:
            # The status the read side saw is the server's; a write racing the end of the call
            # can make the call's own status a local "Internal error from Core".
            ended = Ended(error.code(), error.details() or "")
        else:
            ended = Ended(await self._call.code(), await self._call.details())
        async with self._changed:
            self.ended = ended
            self._changed.notify_all()

    async def send(self, host: placement_pb2.Host) -> None:
        assert self._call is not None
        async with self._write_lock:
            await self._call.write(host)

    async def _ack_pending(self) -> None:
        while self._seen < len(self.orders):
            order = self.orders[self._seen]
            self._seen += 1
            if order.operation in ACKS and (order.operation, order.version) not in self._acked:
                await self.ack(order.operation, order.version)

    async def resume_acks(self) -> None:
        """Ack everything received and not yet acked, then keep acking like daprd."""
        self.auto_ack = True
        await self._ack_pending()

    async def ack(self, operation: str, version: int) -> None:
        """daprd's ack: just the operation, version, namespace and app ID."""
        self._acked.add((operation, version))
        await self.send(
            placement_pb2.Host(
                operation=ACKS[operation], version=version, namespace=self.namespace, id=self.app_id
            )
        )

    async def report(self, entities: Iterable[str]) -> None:
        self.entities = list(entities)
        await self.send(self.report_host())

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
        async def check() -> None:
            async with self._changed:
                await self._changed.wait_for(lambda: predicate(self))

        await asyncio.wait_for(check(), timeout)

    async def wait_order(self, operation: str, version: int, timeout: float = 10.0) -> None:
        await self.wait_for(lambda s: s.has(operation, version), timeout)

    async def wait_unlocked(self, version: int, timeout: float = 10.0) -> None:
        await self.wait_order("unlock", version, timeout)

    async def wait_ended(self, timeout: float = 10.0) -> Ended:
        await self.wait_for(lambda s: s.ended is not None, timeout)
        assert self.ended is not None
        return self.ended

    def has(self, operation: str, version: int) -> bool:
        return any(o.operation == operation and o.version == version for o in self.orders)

    def operations(self) -> list[tuple[str, int]]:
        return [(o.operation, o.version) for o in self.orders]

    def last_tables(self) -> placement_pb2.PlacementTables | None:
        updates = [o for o in self.orders if o.operation == "update"]
        return updates[-1].tables if updates else None

    def load_map(self) -> dict[str, list[str]]:
        tables = self.last_tables()
        if tables is None:
            return {}
        return {t: sorted(table.load_map) for t, table in tables.entries.items()}

    async def close(self) -> None:
        """Half-close (daprd shutting down its stream) and wait for the RPC to end."""
        if self._call is not None and self.ended is None:
            with contextlib.suppress(Exception):
                await self._call.done_writing()
            with contextlib.suppress(Exception):
                await self.wait_ended(5)

    def vanish(self) -> None:
        """Cancel the RPC without a word (a crashed sidecar)."""
        if self._call is not None:
            self._call.cancel()

    async def aclose(self) -> None:
        self.vanish()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader


async def until(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    """Poll ``condition()`` until true (server-side effects with no message to wait for)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.02)
