"""``dapr.proto.placement.v1.Placement/ReportDaprStatus``: accepting streams and plumbing them.

Each RPC gets a :class:`GrpcConnection` (the disseminator's view of it), a reader task that
authorizes every message and forwards it, and a writer task that drains the connection's
outbox. The RPC ends with whatever status closed the connection first: a dissemination timeout,
an authorization failure, the peer's EOF, or leadership loss.

Requests are taken as raw bytes and decoded here, so that undecodable input closes that one
stream with a clear status instead of surfacing as an error inside gRPC's own machinery.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core import grpc_decoding
from daprplane.core.kube.leadership import Leadership
from daprplane.core.security import authz
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.authorizer import AuthorizationError, authorize
from daprplane.plugins.placement.namespaces import Namespaces
from daprplane.plugins.placement.streams import Status
from daprplane.plugins.placement.tables import Order

SERVICE = "dapr.proto.placement.v1.Placement"
METHOD = "ReportDaprStatus"
SHUTTING_DOWN = Status(grpc.StatusCode.UNAVAILABLE, "placement server is shutting down")

log = logging.getLogger("dapr.placement.server")


class GrpcConnection:
    """A stream as the disseminator sees it: non-blocking ``send``, first-``close``-wins."""

    def __init__(self) -> None:
        self._outbox: asyncio.Queue[Order] = asyncio.Queue()
        self._closed: asyncio.Future[Status] = asyncio.get_running_loop().create_future()

    @property
    def closed(self) -> bool:
        return self._closed.done()

    def send(self, order: Order) -> None:
        if not self._closed.done():
            self._outbox.put_nowait(order)

    def close(self, status: Status) -> None:
        if not self._closed.done():
            self._closed.set_result(status)

    async def wait_closed(self) -> Status:
        return await asyncio.shield(self._closed)

    async def pump(self, context: grpc.aio.ServicerContext) -> None:
        while True:
            order = await self._outbox.get()
            try:
                await context.write(order.wire)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                self.close(Status(grpc.StatusCode.UNKNOWN, f"failed to send: {error}"))
                return


def decode_host(data: bytes) -> placement_pb2.Host:
    try:
        return grpc_decoding.decode(placement_pb2.Host, data)
    except grpc_decoding.UndecodableRequest as error:
        # grpc-go's wording for a stream message it cannot unmarshal.
        raise AuthorizationError(error.code, error.details(grpc_decoding.STREAM_DETAILS)) from None


class PlacementServicer:
    def __init__(
        self,
        namespaces: Namespaces,
        leadership: Leadership,
        *,
        node_id: str,
        mtls: bool,
    ) -> None:
        self.namespaces = namespaces
        self.leadership = leadership
        self.node_id = node_id
        self.mtls = mtls
        self.shutting_down = False

    def handler(self) -> grpc.GenericRpcHandler:
        # No (de)serializers: requests arrive as bytes, and orders go out pre-serialised.
        return grpc.method_handlers_generic_handler(
            SERVICE, {METHOD: grpc.stream_stream_rpc_method_handler(self.report_dapr_status)}
        )

    def _client_id(self, context: Any) -> SpiffeId | None:
        if not self.mtls:
            return None
        try:
            return authz.peer_id(context)
        except authz.PeerAuthError:
            return None

    async def _receive(self, context: Any, client_id: SpiffeId | None) -> placement_pb2.Host | None:
        """The next authorized Host; None at EOF. Raises AuthorizationError."""
        data = await context.read()
        if data is grpc.aio.EOF:
            return None
        host = decode_host(data)
        authorize(host, mtls=self.mtls, client_id=client_id)
        return host

    async def report_dapr_status(self, _requests: Any, context: grpc.aio.ServicerContext) -> None:
        if not self.leadership.is_leader:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                f"node id={self.node_id} is not a leader. Only the leader can serve requests",
            )
        if self.shutting_down:
            await context.abort(SHUTTING_DOWN.code, SHUTTING_DOWN.details)
        client_id = self._client_id(context)
        try:
            first = await self._receive(context, client_id)
        except AuthorizationError as error:
            await context.abort(error.status.code, error.status.details)
        if first is None:
            await context.abort(grpc.StatusCode.UNKNOWN, "EOF")
        assert first is not None
        log.info(
            "Received status report connection from new namespace=%s id=%s host=%s",
            first.namespace,
            first.id,
            first.name,
        )
        status = await self._serve(context, first, client_id)
        await context.abort(status.code, status.details)

    async def _serve(
        self, context: Any, first: placement_pb2.Host, client_id: SpiffeId | None
    ) -> Status:
        connection = GrpcConnection()
        ticket = self.namespaces.connect(first, connection)
        writer = asyncio.create_task(connection.pump(context), name="placement-send")
        reader = asyncio.create_task(
            self._read(context, ticket, connection, client_id), name="placement-recv"
        )
        try:
            return await connection.wait_closed()
        finally:
            for task in (reader, writer):
                task.cancel()
            for task in (reader, writer):
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            self.namespaces.disconnect(ticket)

    async def _read(
        self, context: Any, ticket: Any, connection: GrpcConnection, client_id: SpiffeId | None
    ) -> None:
        while True:
            try:
                host = await self._receive(context, client_id)
            except AuthorizationError as error:
                connection.close(error.status)
                return
            except asyncio.CancelledError:
                raise
            except Exception as error:
                connection.close(Status(grpc.StatusCode.UNKNOWN, str(error) or "context canceled"))
                return
            if host is None:
                # Go hands the recv error (io.EOF) to the stream's cancel cause.
                connection.close(Status(grpc.StatusCode.UNKNOWN, "EOF"))
                return
            self.namespaces.report(ticket, host)

    def shut_down(self) -> None:
        self.shutting_down = True
        self.namespaces.close_all(SHUTTING_DOWN)


def new_server(keepalive_time: float, keepalive_timeout: float) -> grpc.aio.Server:
    """A server that pings idle sidecars, so a vanished one is noticed within seconds."""
    return grpc.aio.server(
        options=[
            ("grpc.keepalive_time_ms", int(keepalive_time * 1000)),
            ("grpc.keepalive_timeout_ms", int(keepalive_timeout * 1000)),
            # Keep pinging a stream on which nothing is sent between rounds (Go's server does).
            ("grpc.http2.max_pings_without_data", 0),
            ("grpc.keepalive_permit_without_calls", 1),
            # When thousands of sidecars connect at once the event loop falls behind accepting
            # calls; gRPC's defaults would cancel the calls still waiting (sidecars then retry,
            # and the table takes far longer to settle).
            ("grpc.server.max_pending_requests", 100_000),
            ("grpc.server.max_pending_requests_hard_limit", 100_000),
            ("grpc.server_max_unrequested_time_in_server", 600),
        ]
    )
