"""The placement process: options, identity, the gRPC server, leadership and the HTTP extras."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import grpc
import pluggy

import daprplane
from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core.component import ComponentContext
from daprplane.core.hookcall import call_each
from daprplane.core.kube.leadership import Leadership
from daprplane.core.runtime import FatalError
from daprplane.plugins.placement import state_http
from daprplane.plugins.placement.disseminator import Disseminator, Settings
from daprplane.plugins.placement.leadership import RaftLeadership, RaftListenError
from daprplane.plugins.placement.metrics import PlacementMetrics
from daprplane.plugins.placement.namespaces import NamespaceLoop, Namespaces
from daprplane.plugins.placement.options import OptionsError, PlacementOptions
from daprplane.plugins.placement.server import PlacementServicer, new_server
from daprplane.plugins.placement.streams import Status
from daprplane.plugins.placement.tables import EncodedTables, observed_tables

if TYPE_CHECKING:  # cryptography and the sentry client load only with --tls-enabled
    from daprplane.plugins.placement.identity import PlacementIdentity

PLACEMENT_APP_ID = "dapr-placement"
GRACE_PERIOD = 5.0


def _leadership(
    options: PlacementOptions,
    log: logging.Logger | None = None,
    identity: PlacementIdentity | None = None,
) -> Leadership:
    if options.mode == "kubernetes" and len(options.peers) > 1:
        # Several peers elect on a Lease: the API server authenticates every peer, and Helm's
        # HA install grants the RBAC for it.
        from daprplane.core.kube.lease import LeaseConfigError
        from daprplane.plugins.placement.lease import LeaseLeadership

        try:
            return LeaseLeadership.from_environ(options.node_id, options.namespace, log=log)
        except LeaseConfigError as error:
            raise FatalError(str(error)) from None
    # Raft otherwise, even for a single peer: Dapr listens on this node's raft address either
    # way. With --tls-enabled the peers speak mTLS and accept only placement's SPIFFE ID.
    if options.tls_enabled and identity is None:
        from daprplane.plugins.placement.identity import PlacementIdentity

        identity = PlacementIdentity(options)
    try:
        tls = identity.raft_tls() if identity is not None else None
        return RaftLeadership(options.node_id, options.peers, tls=tls)
    except ValueError as error:
        raise FatalError(f"invalid raft configuration: {error}") from None


class TableObservers:
    """Calls ``daprplane_placement_table_disseminated`` through pluggy, each observer on its own:
    one failing observer must not affect dissemination or the other observers."""

    def __init__(self, hook: Any, log: logging.Logger) -> None:
        self._caller = getattr(hook, "daprplane_placement_table_disseminated", None)
        self._log = log

    def __call__(self, namespace: str, version: int, tables: EncodedTables) -> None:
        if self._caller is None:
            return
        if not self._caller.get_hookimpls():
            return  # nobody observes: the tables are not copied
        arguments: Mapping[str, Any] = {
            "namespace": namespace,
            "version": version,
            "tables": observed_tables(tables),
        }
        call_each(self._caller, arguments, self._failed)

    def _failed(self, impl: pluggy.HookImpl, error: Exception) -> None:
        self._log.error("Table observer of plugin %s failed: %s", impl.plugin_name, error)


class PlacementService:
    def __init__(self, context: ComponentContext, options: PlacementOptions) -> None:
        self.context = context
        self.options = options
        self.log = context.logger
        self.metrics = PlacementMetrics(context.metrics)
        # Registered before the first await: healthz is built right after the task starts.
        self.grpc_target = context.health.add_target("placement-grpc-server")
        self.leadership_target = context.health.add_target("placement-raft-leadership")
        self.provider_target = (
            context.health.add_target("security-provider") if options.tls_enabled else None
        )
        if options.metadata_enabled:
            context.health.add_route("GET", "/placement/state", state_http.handler(self.snapshot))
        self.identity: PlacementIdentity | None = None
        if options.tls_enabled:
            from daprplane.plugins.placement.identity import PlacementIdentity

            self.identity = PlacementIdentity(options, self.provider_target)
        self.leadership = _leadership(options, self.log, self.identity)
        self.observers = TableObservers(context.hook, self.log)
        settings = Settings(
            replication_factor=options.replication_factor,
            timeout=options.disseminate_timeout,
            coalesce_window=options.coalesce_window,
        )

        def machine(namespace: str, loop: NamespaceLoop) -> Disseminator:
            return Disseminator(
                namespace,
                loop,
                settings,
                on_streams_changed=self.metrics.streams_changed,
                on_round_completed=self.observers,
            )

        self.namespaces = Namespaces(machine)
        self.servicer = PlacementServicer(
            self.namespaces,
            self.leadership,
            node_id=options.node_id,
            mtls=options.tls_enabled,
            limits=options.limits,
        )

    def snapshot(self) -> Mapping[str, tuple[list[placement_pb2.Host], int]] | None:
        if not self.leadership.is_leader:
            return None
        return {ns: machine.snapshot() for ns, machine in self.namespaces.machines().items()}

    async def run(self) -> None:
        self.log.info(
            "Starting Dapr Placement Service -- version %s -- commit %s",
            daprplane.__version__,
            "unknown",
        )
        async with contextlib.AsyncExitStack() as stack:
            server = new_server(
                self.options.keepalive_time, self.options.keepalive_timeout, self.options.limits
            )
            server.add_generic_rpc_handlers((self.servicer.handler(),))
            if self.identity is not None:
                await self.identity.start(stack)
                await self.identity.serve_mtls(server, stack)
            else:
                self._bind(server)
                await server.start()
            stack.push_async_callback(self._stop_server, server)
            self.grpc_target.ready()
            self.log.info("Placement service started on port %d", self.options.port)

            self.leadership.on_lost(self._lost_leadership)
            stack.push_async_callback(self.leadership.aclose)
            try:
                await self.leadership.start()
            except RaftListenError as error:
                raise FatalError(str(error)) from None
            self.leadership_target.ready()
            await self._lead_forever()

    def _bind(self, server: grpc.aio.Server) -> None:
        address = self.options.grpc_address
        try:
            bound = server.add_insecure_port(address)
        except RuntimeError as error:
            raise FatalError(f"failed to listen on {address}: {error}") from None
        if not bound and self.options.port != 0:
            raise FatalError(f"failed to listen on {address}: address in use or not available")

    async def _lead_forever(self) -> None:
        node = self.options.node_id
        while True:
            self.log.info("Node id=%s is waiting for leadership", node)
            await self.leadership.wait_for_leadership()
            self.metrics.set_leader(True)
            self.log.info("Node id=%s has acquired leadership", node)
            await self.leadership.wait_for_loss()

    def _lost_leadership(self) -> None:
        self.metrics.set_leader(False)
        self.log.warning("Node id=%s lost leadership; closing every stream", self.options.node_id)
        self.namespaces.close_all(
            Status(
                grpc.StatusCode.UNAVAILABLE,
                f"node id={self.options.node_id} lost leadership",
            )
        )

    async def _stop_server(self, server: grpc.aio.Server) -> None:
        self.servicer.shut_down()
        await server.stop(GRACE_PERIOD)
        await self.namespaces.aclose()


async def run(context: ComponentContext) -> None:
    try:
        options = PlacementOptions.from_flags(context.flags)
    except OptionsError as error:
        raise FatalError(str(error)) from None
    await PlacementService(context, options).run()
