"""An asyncio placement client that connects the way daprd does.

It opens ``ReportDaprStatus``, REPORTs its actor types, follows lock/update/unlock with daprd's
acks (:mod:`.protocol`), keeps one ring per actor type, and answers :meth:`PlacementClient.locate`
exactly as daprd's actor lookup. A stream that fails (server gone, not the leader, protocol
violation, no UPDATE within ``disseminate_timeout`` of a LOCK) is dropped and the next address
is tried after 500 ms ± 250 ms, round-robin, with a fresh state machine, as daprd does.

    async with PlacementClient("127.0.0.1:50005", app_id="myapp", namespace="default",
                               host_name="10.0.0.1:50002", actor_types=["Counter"]) as client:
        await client.wait_ready(timeout=10)
        print(client.locate("Counter", "c-1"))
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Iterable, Sequence

import grpc

from daprplane._proto.placement.v1 import placement_pb2, placement_pb2_grpc
from daprplane.core.background import BackgroundTask
from daprplane.plugins.placement.client.credentials import ChannelCredentials, InsecureCredentials
from daprplane.plugins.placement.client.protocol import ClientProtocol, Phase, ProtocolError
from daprplane.plugins.placement.client.tables import (
    ActorTables,
    Placement,
    PlacementNotReadyError,
    ring_module_for,
)

log = logging.getLogger("dapr.placement.client")

__all__ = ["DisseminationTimeoutError", "PlacementClient"]

#: daprd's ``--actors-disseminate-timeout`` default: from a LOCK to its UPDATE.
DEFAULT_DISSEMINATE_TIMEOUT = 30.0
NOT_LEADER = "is not a leader"


class DisseminationTimeoutError(Exception):
    """No UPDATE arrived within the dissemination timeout after a LOCK."""


class StreamClosedError(Exception):
    """The server ended the stream without an error status."""


class PlacementClient(BackgroundTask):
    """A placement client with daprd's connection behaviour. See the module docstring."""

    def __init__(
        self,
        addresses: str | Sequence[str],
        *,
        app_id: str,
        namespace: str,
        host_name: str,
        actor_types: Iterable[str] = (),
        credentials: ChannelCredentials | None = None,
        ring_implementation: str = "auto",
        disseminate_timeout: float = DEFAULT_DISSEMINATE_TIMEOUT,
        retry_interval: float = 0.5,
        retry_jitter: float = 0.25,
    ) -> None:
        self.addresses = [addresses] if isinstance(addresses, str) else list(addresses)
        if not self.addresses:
            raise ValueError("at least one placement address is required")
        self.app_id = app_id
        self.namespace = namespace
        self.host_name = host_name
        self._actor_types = list(actor_types)
        self.credentials: ChannelCredentials = credentials or InsecureCredentials()
        self.ring_impl = ring_module_for(ring_implementation)
        self.disseminate_timeout = disseminate_timeout
        self.retry_interval = retry_interval
        self.retry_jitter = retry_jitter
        #: The address of the current stream, if one is open.
        self.address: str | None = None
        #: Why the last stream or connection attempt ended, for error messages.
        self.last_error: str | None = None
        #: Streams opened so far (reconnects included).
        self.connections = 0
        self._tables: ActorTables | None = None
        self._protocol: ClientProtocol | None = None
        self._call: grpc.aio.StreamStreamCall | None = None
        self._write_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._changed = asyncio.Condition()
        self._observers: list[Callable[[ActorTables], None]] = []

    # -- state --------------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        """True from the first UNLOCK of the current stream until that stream ends."""
        return self._ready.is_set()

    @property
    def tables(self) -> ActorTables | None:
        """The table of the last UPDATE (kept across reconnects until the next one)."""
        return self._tables

    @property
    def version(self) -> int:
        """The version of the last UPDATE applied (0 before any)."""
        return self._tables.version if self._tables is not None else 0

    @property
    def phase(self) -> Phase | None:
        return self._protocol.phase if self._protocol is not None else None

    @property
    def actor_types(self) -> list[str]:
        return list(self._actor_types)

    def locate(self, actor_type: str, actor_id: str) -> Placement:
        """The sidecar address and app ID that host the actor, as daprd's lookup answers."""
        if self._tables is None:
            raise PlacementNotReadyError("no placement table received yet")
        return self._tables.locate(actor_type, actor_id)

    def subscribe(self, callback: Callable[[ActorTables], None]) -> Callable[[], None]:
        """Calls ``callback(tables)`` after every UPDATE; returns the unsubscribe function."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback)

    async def wait_ready(self, timeout: float | None = None) -> ActorTables:
        """Waits for an UNLOCK (a complete table); TimeoutError after ``timeout`` seconds."""
        async with asyncio.timeout(timeout):
            await self._ready.wait()
        assert self._tables is not None
        return self._tables

    async def wait_version(self, version: int, timeout: float | None = None) -> ActorTables:
        """Waits until a table of at least ``version`` is applied and unlocked."""
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: self.ready and self.version >= version)
        assert self._tables is not None
        return self._tables

    # -- lifecycle ----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="placement-client")

    async def update_actor_types(self, actor_types: Iterable[str]) -> None:
        """Re-REPORTs with new actor types (or reports them on the next connect)."""
        self._actor_types = list(actor_types)
        call, protocol = self._call, self._protocol
        if call is not None and protocol is not None:
            with contextlib.suppress(
                grpc.aio.AioRpcError, grpc.aio.UsageError, asyncio.InvalidStateError
            ):
                await self._write(call, protocol.report(self._actor_types))

    # -- the connection loop --------------------------------------------------------------------

    def retry_delay(self) -> float:
        return max(0.0, self.retry_interval + random.uniform(-self.retry_jitter, self.retry_jitter))

    async def _run(self) -> None:
        attempt = 0
        while True:
            address = self.addresses[attempt % len(self.addresses)]
            attempt += 1
            try:
                await self._stream(address)
            except grpc.aio.AioRpcError as error:
                self._failed(address, f"{error.code().name}: {error.details()}")
                if NOT_LEADER in (error.details() or ""):
                    log.debug("Placement server %s is not the leader; trying the next", address)
                else:
                    log.warning("Placement stream to %s failed: %s", address, self.last_error)
            except (ProtocolError, DisseminationTimeoutError, StreamClosedError, OSError) as error:
                self._failed(address, str(error) or type(error).__name__)
                log.warning("Placement stream to %s closed: %s", address, self.last_error)
            except Exception as error:  # never let one bad stream end the client
                self._failed(address, f"{type(error).__name__}: {error}")
                log.exception("Placement stream to %s failed unexpectedly", address)
            await asyncio.sleep(self.retry_delay())

    def _failed(self, address: str, reason: str) -> None:
        self.last_error = f"{address}: {reason}"

    async def _write(self, call: grpc.aio.StreamStreamCall, message: placement_pb2.Host) -> None:
        async with self._write_lock:
            await call.write(message)

    async def _stream(self, address: str) -> None:
        protocol = ClientProtocol(
            app_id=self.app_id,
            namespace=self.namespace,
            host_name=self.host_name,
            ring_impl=self.ring_impl,
            tables=self._tables,
        )
        async with self.credentials.connect(address) as channel:
            stub = placement_pb2_grpc.PlacementStub(channel)  # type: ignore[no-untyped-call]
            call = stub.ReportDaprStatus()
            self._call, self._protocol, self.address = call, protocol, address
            self.connections += 1
            try:
                await self._write(call, protocol.report(self._actor_types))
                await self._follow(call, protocol)
            finally:
                self._call, self._protocol, self.address = None, None, None
                self._ready.clear()
                call.cancel()
                async with self._changed:
                    self._changed.notify_all()

    async def _follow(self, call: grpc.aio.StreamStreamCall, protocol: ClientProtocol) -> None:
        deadline: float | None = None
        while True:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                async with asyncio.timeout(remaining):
                    order = await call.read()
            except TimeoutError:
                raise DisseminationTimeoutError(
                    f"no update within {self.disseminate_timeout:g}s of lock "
                    f"(version {protocol.version})"
                ) from None
            if order is grpc.aio.EOF:
                raise StreamClosedError("the server closed the stream")
            ack = protocol.receive(order)  # ProtocolError ends the stream
            if order.operation == "lock":
                deadline = time.monotonic() + self.disseminate_timeout
            elif order.operation == "update":
                deadline = None
                self._applied(protocol)
            if ack is not None:
                await self._write(call, ack)
                if ack.operation == placement_pb2.UNLOCK:
                    self._ready.set()
                    async with self._changed:
                        self._changed.notify_all()

    def _applied(self, protocol: ClientProtocol) -> None:
        tables = protocol.tables
        assert tables is not None
        self._tables = tables
        log.debug(
            "Applied placement table version %d (%d types)", tables.version, len(tables.types)
        )
        for callback in list(self._observers):
            try:
                callback(tables)
            except Exception:
                log.exception("Placement table observer failed")
