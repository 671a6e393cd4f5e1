"""``dapr.proto.placement.v1.Placement/ReportDaprStatus``: accepting streams and plumbing them.

Each RPC gets a :class:`GrpcConnection` (the disseminator's view of it), a reader task that
authorizes every message and forwards it, and a writer task that drains the connection's
outbox. The RPC ends with whatever status closed the connection first: a dissemination timeout,
an authorization failure, the peer's EOF, or leadership loss.

Requests are taken as raw bytes and decoded here, so that undecodable input closes that one
stream with a clear status instead of surfacing as an error inside gRPC's own machinery. The
same goes for the :class:`~.options.Limits`: a message, or a report, over a limit ends that
stream with a status and a log line naming the host, and never reaches a namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from typing import Any

import grpc

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core import grpc_decoding
from daprplane.core.kube.leadership import Leadership
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.authorizer import AuthorizationError, authorize
from daprplane.plugins.placement.namespaces import Namespaces
from daprplane.plugins.placement.options import Limits, limits_from_env
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


def default_limits() -> Limits:
    """The limits of this process's environment (checked at start by the options)."""
    return limits_from_env(os.environ)


def transport_limit(limits: Limits) -> int:
    """gRPC's own receive limit: above ours, so that what we refuse reaches us and is logged
    with the host's name; gRPC itself refuses (with the same code) only far larger messages."""
    wanted = limits.max_message_size + max(limits.max_message_size, 1 << 20)
    return min(wanted, 2**31 - 1)  # gRPC keeps it in a C int


def host_table_size(host: placement_pb2.Host, encoded_size: int) -> int:
    """About how many bytes ``host`` adds to an UPDATE: its report once per actor type."""
    types = set(host.entities)
    per_type = encoded_size + len(host.name.encode()) + 12  # map entry framing
    return sum(len(actor_type.encode()) + 12 for actor_type in types) + len(types) * per_type


def _describe(host: placement_pb2.Host | None, context: Any) -> str:
    if host is None:
        return f"peer={context.peer()}"
    return f"host={host.name} id={host.id} namespace={host.namespace}"


def _peek(data: bytes) -> placement_pb2.Host | None:
    """The Host in an oversized message, only to name it in the log."""
    try:
        host: placement_pb2.Host = placement_pb2.Host.FromString(data)
    except Exception:
        return None
    return host


class PlacementServicer:
    def __init__(
        self,
        namespaces: Namespaces,
        leadership: Leadership,
        *,
        node_id: str,
        mtls: bool,
        limits: Limits | None = None,
    ) -> None:
        self.namespaces = namespaces
        self.leadership = leadership
        self.node_id = node_id
        self.mtls = mtls
        self.limits = limits or default_limits()
        self.shutting_down = False

    def handler(self) -> grpc.GenericRpcHandler:
        # No (de)serializers: requests arrive as bytes, and orders go out pre-serialised.
        return grpc.method_handlers_generic_handler(
            SERVICE, {METHOD: grpc.stream_stream_rpc_method_handler(self.report_dapr_status)}
        )

    def _client_id(self, context: Any) -> SpiffeId | None:
        if not self.mtls:
            return None
        from daprplane.core.security import authz  # mTLS only: it loads cryptography

        try:
            return authz.peer_id(context)
        except authz.PeerAuthError:
            return None

    async def _receive(
        self, context: Any, client_id: SpiffeId | None, first: placement_pb2.Host | None = None
    ) -> placement_pb2.Host | None:
        """The next authorized Host within the limits; None at EOF. Raises AuthorizationError.

        ``first`` is the stream's first Host, which names the sidecar in the log.
        """
        data = await context.read()
        if data is grpc.aio.EOF:
            return None
        limit = self.limits.max_message_size
        if len(data) > limit:
            # grpc-go's status for a message over its receive limit.
            details = f"grpc: received message larger than max ({len(data)} vs. {limit})"
            self._reject(first or _peek(data), context, details)
            raise AuthorizationError(grpc.StatusCode.RESOURCE_EXHAUSTED, details)
        host = decode_host(data)
        authorize(host, mtls=self.mtls, client_id=client_id)
        self._check_report(host, len(data), context)
        return host

    def _check_report(self, host: placement_pb2.Host, encoded_size: int, context: Any) -> None:
        if not host.entities:
            return
        count, most = len(host.entities), self.limits.max_actor_types_per_host
        if count > most:
            details = (
                f"host {host.name} reports {count} actor types; at most {most} are accepted "
                "per host"
            )
            self._reject(host, context, details)
            raise AuthorizationError(grpc.StatusCode.INVALID_ARGUMENT, details)
        size, largest = host_table_size(host, encoded_size), self.limits.max_host_table_size
        if size > largest:
            details = (
                f"host {host.name} would take {size} bytes of the placement table ({count} "
                f"actor types, each listing its {encoded_size}-byte report); at most {largest} "
                "are accepted per host"
            )
            self._reject(host, context, details)
            raise AuthorizationError(grpc.StatusCode.RESOURCE_EXHAUSTED, details)

    @staticmethod
    def _reject(host: placement_pb2.Host | None, context: Any, details: str) -> None:
        log.warning("Closing the stream of %s: %s", _describe(host, context), details)

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
        # Whatever ends the RPC (the peer cancelling included) ends the connection, so that
        # its namespace always learns that the stream is gone.
        context.add_done_callback(
            lambda _: connection.close(Status(grpc.StatusCode.CANCELLED, "context canceled"))
        )
        ticket = self.namespaces.connect(first, connection)
        writer = asyncio.create_task(connection.pump(context), name="placement-send")
        reader = asyncio.create_task(
            self._read(context, ticket, connection, client_id, first), name="placement-recv"
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
        self,
        context: Any,
        ticket: Any,
        connection: GrpcConnection,
        client_id: SpiffeId | None,
        first: placement_pb2.Host,
    ) -> None:
        while True:
            try:
                host = await self._receive(context, client_id, first)
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


def new_server(
    keepalive_time: float, keepalive_timeout: float, limits: Limits | None = None
) -> grpc.aio.Server:
    """A server that pings idle sidecars, so a vanished one is noticed within seconds."""
    return grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", transport_limit(limits or default_limits())),
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
