"""The operator process (Dapr ``cmd/operator``): caches, the sidecar API, the conversion
webhook, and the leader's Service reconciler and watchdog.

Start-up order: options and the refusal to run as root; the API server client; the control
plane's Configuration (fatal when missing, as in Dapr); the trust anchors and this process's
SVID from Sentry; the caches, listed once before anything is served (a sidecar must never be
told "no components" because the operator had not read them yet); the gRPC API behind the mTLS
front; the conversion webhook and its CRD patch; then leader election, and when leading, the
reconciler and the watchdog. Losing the lease is fatal, as in Dapr: the pod restarts and
competes again with a clean state.

Options and the root check need only this package's parsers; the Kubernetes client, grpc and the
security library are imported once they pass, so a misconfigured operator exits at once.

Healthz targets besides the shared ones: ``security-provider``, ``operator-cache``,
``operator-api-server``, ``operator-webhook``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import uuid
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import daprplane
from daprplane.core.runtime import FatalError
from daprplane.core.security.usergroup import RootUserError, check_user
from daprplane.plugins.operator import secrets
from daprplane.plugins.operator.options import OperatorOptions, OptionsError

if TYPE_CHECKING:
    from daprplane.core.component import ComponentContext
    from daprplane.core.kube.leadership import Leadership
    from daprplane.plugins.operator.api import OperatorApi
    from daprplane.plugins.operator.caches import KindCache
    from daprplane.plugins.operator.system_config import SystemConfig

APP_ID = "dapr-operator"
LEASE_NAME = "operator.dapr.io"
#: Prefix of the environment variables that tune the operator's Lease (``..._DURATION`` ...).
LEASE_PREFIX = "DAPRPLANE_OPERATOR_LEASE_"
GRACE_PERIOD = 5.0
EVENT_NAMES = {"ADDED": "CREATED", "MODIFIED": "UPDATED", "DELETED": "DELETED"}

RESOLVERS = {
    "components": secrets.resolve_component,
    "configurations": secrets.resolve_configuration,
    "httpendpoints": secrets.resolve_http_endpoint,
    "mcpservers": secrets.resolve_mcp_server,
}


class OperatorService:
    def __init__(
        self, context: ComponentContext, options: OperatorOptions, environ: Mapping[str, str]
    ) -> None:
        self.context = context
        self.options = options
        from daprplane.plugins.operator.metrics import OperatorMetrics

        self.environ = environ
        self.log = context.logger
        self.metrics = OperatorMetrics(context.metrics)
        # Registered before the first await: the healthz app is built right after start.
        health = context.health
        self.provider_target = health.add_target("security-provider")
        self.cache_target = health.add_target("operator-cache")
        self.api_target = health.add_target("operator-api-server")
        self.webhook_target = health.add_target("operator-webhook")
        self.system: SystemConfig | None = None
        self.caches: dict[str, KindCache] = {}
        self._background: set[asyncio.Task[None]] = set()

    # -- pieces ----------------------------------------------------------------------------------

    def _observe(self, kind: str) -> Any:
        log = self.log
        caller = getattr(self.context.hook, "daprplane_operator_resource_changed", None)

        def listener(event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            if caller is None:
                return
            try:
                caller(kind=kind, event=EVENT_NAMES[event], resource=obj)
            except Exception as error:
                log.error("A resource observer plugin failed: %s: %s", type(error).__name__, error)

        return listener

    def _build_api(self, api: Any, lookup: secrets.SecretLookup) -> OperatorApi:
        """The caches of every kind, their streams, and the API serving them."""
        from daprplane.plugins.operator import kinds
        from daprplane.plugins.operator.api import OperatorApi, ServedKind
        from daprplane.plugins.operator.caches import KindCache, dapr_pod_metadata
        from daprplane.plugins.operator.streams import EventHub

        watch = self.options.watch_namespace
        pods = KindCache(api, kinds.PODS, watch_namespace=watch, transform=dapr_pod_metadata())
        served: dict[str, ServedKind] = {}
        operator_api = OperatorApi(served, pods, lookup, self.metrics.streams)
        for kind in kinds.DAPR_KINDS:
            cache = KindCache(api, kind, watch_namespace=watch)
            resolve = RESOLVERS.get(kind.plural)
            hub = EventHub(operator_api.stream_encoder(kind, resolve), scoped=kind.scoped)
            served[kind.plural] = ServedKind(kind, cache, hub, resolve)
            cache.add_listener(hub.publish)
            cache.add_listener(self._observe(kind.kind))
            self.caches[kind.plural] = cache
        self.caches["pods"] = pods
        return operator_api

    def mtls_enabled(self) -> bool:
        """The Configuration's current ``spec.mtls.enabled``; the value read at start when the
        Configuration is gone or outside ``--watch-namespace``."""
        from daprplane.plugins.operator.system_config import mtls_enabled

        assert self.system is not None
        cache = self.caches.get("configurations")
        current = cache.get(self.options.namespace, self.options.config_name) if cache else None
        if current is None:
            return self.system.mtls_enabled
        return mtls_enabled(current)

    # -- run -------------------------------------------------------------------------------------

    async def run(self) -> None:
        from daprplane.core.kube.client import KubeConfigError, new_api_client
        from daprplane.core.security.bootstrap import IdentitySettings, open_anchors, start_identity
        from daprplane.plugins.operator.caches import wait_ready
        from daprplane.plugins.operator.secret_cache import SecretCache
        from daprplane.plugins.operator.system_config import SystemConfigError, load_system_config

        options = self.options
        self.log.info(
            "Starting Dapr Operator -- version %s -- commit %s", daprplane.__version__, "unknown"
        )
        async with contextlib.AsyncExitStack() as stack:
            try:
                api = new_api_client(options.kubeconfig or None, self.environ)
            except KubeConfigError as error:
                raise FatalError(str(error)) from None
            stack.push_async_callback(api.close)
            try:
                self.system = await load_system_config(api, options.namespace, options.config_name)
            except SystemConfigError as error:
                raise FatalError(str(error)) from None

            anchors = await open_anchors(options.trust_anchors_file, stack)
            identity = await start_identity(
                IdentitySettings(
                    app_id=APP_ID,
                    sentry_address=self.system.sentry_address,
                    namespace=options.namespace,
                    trust_domain=self.system.control_plane_trust_domain,
                ),
                anchors,
                stack,
                self.provider_target,
            )

            secret_cache = SecretCache(api, watch_namespace=options.watch_namespace)
            stack.push_async_callback(secret_cache.aclose)
            operator_api = self._build_api(api, secret_cache.lookup)
            for cache in self.caches.values():
                cache.start()
                stack.push_async_callback(cache.stop)
            await wait_ready(self.caches.values())
            self.cache_target.ready()

            await self._serve_api(operator_api, identity, anchors, stack)
            await self._start_webhook(api, identity, anchors, stack)
            await self._lead(api, stack)

    async def _serve_api(
        self,
        operator_api: OperatorApi,
        identity: Any,
        anchors: Any,
        stack: contextlib.AsyncExitStack,
    ) -> None:
        import grpc

        from daprplane.core.security.front import MtlsFront

        options = self.options
        server = grpc.aio.server()
        server.add_generic_rpc_handlers((operator_api.handler(),))
        front = MtlsFront(identity.svid, anchors)
        server.add_insecure_port(front.backend_target)
        await server.start()

        async def stop() -> None:
            # Streams end with OK before the server stops taking calls.
            for item in operator_api.served.values():
                item.hub.close_all()
            await front.aclose()
            await server.stop(GRACE_PERIOD)

        stack.push_async_callback(stop)
        try:
            await front.start(options.listen_address or None, options.port)
        except OSError as error:
            raise FatalError(
                f"failed to listen on {options.listen_address or '*'}:{options.port}: {error}"
            ) from None
        self.api_target.ready()
        self.log.info("Starting gRPC server on port %d", options.port)

    async def _start_webhook(
        self, api: Any, identity: Any, anchors: Any, stack: contextlib.AsyncExitStack
    ) -> None:
        from daprplane.core.runtime import serving

        options = self.options
        if not options.webhooks:
            self.webhook_target.ready()
            return
        from daprplane.plugins.operator.crd_patch import ConversionWebhookSync
        from daprplane.plugins.operator.webhook import conversion_application

        app = conversion_application(self.log)
        await stack.enter_async_context(
            serving(
                app,
                options.webhook_listen_address,
                options.webhook_port,
                "conversion webhook server",
                ssl_context=identity.tls.context,
            )
        )
        # Patches the CRD now and whenever the trust anchors change; only ends by failing.
        sync = ConversionWebhookSync(api, options.namespace, anchors, self.webhook_target)
        self._supervise(asyncio.create_task(sync.run(), name="conversion-webhook-sync"), stack)

    def _supervise(self, task: asyncio.Task[None], stack: contextlib.AsyncExitStack) -> None:
        """Run ``task`` for the life of the process: it ending (by failing) ends the process."""
        from daprplane.core.background import cancel_and_wait

        self._background.add(task)
        stack.push_async_callback(cancel_and_wait, task)

    async def _until(self, awaitable: Any) -> None:
        """Await ``awaitable``, unless a supervised task fails first (then fail with it)."""
        from daprplane.core.background import cancel_and_wait

        waiter = asyncio.ensure_future(awaitable)
        try:
            done, _ = await asyncio.wait(
                {waiter, *self._background}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            if not waiter.done():
                await cancel_and_wait(waiter)
        for task in done - {waiter}:
            error = task.exception() if not task.cancelled() else None
            raise FatalError(f"{task.get_name()} stopped: {error or 'cancelled'}")
        waiter.result()

    async def _lead(self, api: Any, stack: contextlib.AsyncExitStack) -> None:
        from daprplane.core.kube.leadership import SingleNode
        from daprplane.core.kube.lease import LeaseConfigError, LeaseEnvironment, LeaseLeadership

        options = self.options
        leadership: Leadership
        if options.leader_election:
            try:
                leadership = LeaseLeadership.from_environ(
                    f"{socket.gethostname()}_{uuid.uuid4()}",
                    options.namespace,
                    name=LEASE_NAME,
                    variables=LeaseEnvironment.with_prefix(LEASE_PREFIX),
                    environ=self.environ,
                    api_factory=lambda: api,
                    owns_api=False,
                    log=self.log,
                )
            except LeaseConfigError as error:
                raise FatalError(str(error)) from None
        else:
            leadership = SingleNode()
        await leadership.start()
        stack.push_async_callback(leadership.aclose)
        await self._until(leadership.wait_for_leadership())
        self.log.info("Leading: starting the Service reconciler and the watchdog")
        async with contextlib.AsyncExitStack() as leading:
            await self._start_leader_work(api, leading)
            await self._until(leadership.wait_for_loss())
        raise FatalError("leader election lost")

    async def _start_leader_work(self, api: Any, stack: contextlib.AsyncExitStack) -> None:
        from daprplane.core.background import cancel_and_wait
        from daprplane.plugins.operator import kinds
        from daprplane.plugins.operator.caches import KindCache, wait_ready

        options = self.options
        if options.service_reconciler:
            from daprplane.plugins.operator.reconciler import ServiceReconciler, workload_essentials

            watch = options.watch_namespace
            workloads = {
                kind.kind: (
                    kind,
                    KindCache(api, kind, watch_namespace=watch, transform=workload_essentials),
                )
                for kind in (kinds.DEPLOYMENTS, kinds.STATEFULSETS)
            }
            services = KindCache(
                api, kinds.SERVICES, watch_namespace=watch, label_selector="dapr.io/enabled"
            )
            reconciler = ServiceReconciler(
                api, workloads, services, mtls_enabled=self.mtls_enabled,
                metrics=self.metrics, log=self.log,
            )  # fmt: skip
            for cache in (services, *(cache for _, cache in workloads.values())):
                cache.start()
                stack.push_async_callback(cache.stop)
            await wait_ready([services, *(cache for _, cache in workloads.values())])
            reconciler.start()
            stack.push_async_callback(reconciler.aclose)
        if options.watch_interval is not None:
            from daprplane.plugins.operator.watchdog import Watchdog

            watchdog = Watchdog(
                api, interval=options.watch_interval,
                max_restarts_per_minute=options.max_pod_restarts_per_minute,
                can_patch_labels=options.watchdog_can_patch_pod_labels,
                watch_namespace=options.watch_namespace, log=self.log,
            )  # fmt: skip
            task = asyncio.create_task(watchdog.run(), name="watchdog")
            stack.push_async_callback(cancel_and_wait, task)


async def run(context: ComponentContext) -> None:
    environ = dict(os.environ)
    try:
        options = OperatorOptions.from_flags(context.flags, environ)
    except OptionsError as error:
        raise FatalError(str(error)) from None
    try:
        check_user("kubernetes", environ)
    except RootUserError as error:
        raise FatalError(str(error)) from None
    await OperatorService(context, options, environ).run()
