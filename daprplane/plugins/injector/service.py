"""The injector process (Dapr ``cmd/injector/app/app.go``).

Start-up, in Dapr's order: configuration from the environment (a bad value exits 1), the refusal
to run as root in Kubernetes, the allowed-ServiceAccount patterns, the API server client and the
UIDs of the allowed ServiceAccounts, the trust anchors and the serving SVID from Sentry, the HTTPS
webhook, then the ``caBundle`` of the webhook configuration, kept in step with the anchors.
The first two need only this package's parsers; the Kubernetes client, the security library and
the webhook server (aiohttp) are imported once they pass, so a misconfigured injector exits at
once.

Healthz targets besides the shared ``healthz-server`` and ``metrics-exporter``:
``security-provider`` (first SVID), ``injector-service`` (webhook listening) and
``webhook-configuration`` (first ``caBundle`` patch).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import daprplane
from daprplane.core.runtime import FatalError
from daprplane.core.security.usergroup import RootUserError, check_user
from daprplane.plugins.injector.config import ConfigError, InjectorConfig

if TYPE_CHECKING:
    from daprplane.core.component import ComponentContext
    from daprplane.core.security.anchors import TrustBundle
    from daprplane.plugins.injector.admission import AdmissionRequest
    from daprplane.plugins.injector.authz import ServiceAccountMatcher
    from daprplane.plugins.injector.webhook import MutateHandler

LIST_TIMEOUT = 10.0
#: Lookups made while the API server waits for the admission answer (its own timeout is 10 s).
LOOKUP_TIMEOUT = 5.0
MTLS_CACHE_SECONDS = 5.0


def has_kubernetes_token(environ: Mapping[str, str] | None = None) -> bool:
    """Whether this process has a Kubernetes token (Dapr ``token.HasKubernetesToken``): without
    one, injected sidecars get no projected token volume either. Besides Dapr's two paths, a
    token named by ``$DAPR_SENTRY_TOKEN_FILE`` counts: an injector run outside a pod (``daprplane
    up --kubeconfig``) keeps its token there, and its sidecars need theirs all the same."""
    from daprplane.core.security import tokens

    env = os.environ if environ is None else environ
    named = env.get(tokens.TOKEN_FILE_ENV)
    return (
        tokens.SENTRY_TOKEN_PATH.exists()
        or tokens.LEGACY_TOKEN_PATH.exists()
        or bool(named and os.path.isfile(named))
    )


#: Dapr's webhook server waits this long for requests in flight when stopping.
GRACE_PERIOD = 5.0


async def list_service_accounts(api: Any) -> list[Mapping[str, Any]]:
    """Every ServiceAccount in the cluster, page by page."""
    from daprplane.core.kube.client import list_items

    return await list_items(api, "/api/v1/serviceaccounts", timeout=LIST_TIMEOUT)


class InjectorService:
    def __init__(
        self, context: ComponentContext, config: InjectorConfig, environ: Mapping[str, str]
    ) -> None:
        from daprplane.plugins.injector.metrics import InjectorMetrics

        self.context = context
        self.config = config
        self.environ = environ
        self.log = context.logger
        self.metrics = InjectorMetrics(context.metrics)
        # Registered before the first await: the healthz app is built right after the task starts.
        health = context.health
        self.provider_target = health.add_target("security-provider")
        self.service_target = health.add_target("injector-service")
        self.webhook_target = health.add_target("webhook-configuration")
        self.anchors: Any = None
        self.anchors_pem = ""
        self.api: Any = None
        self._mtls: bool | None = None
        self._mtls_read_at = 0.0
        self._mtls_lookup: asyncio.Future[bool] | None = None

    def authorizer_patterns(self) -> ServiceAccountMatcher:
        from daprplane.plugins.injector.authz import PatternError, ServiceAccountMatcher

        allowed = self.config.allowed_service_accounts
        prefixes = self.config.allowed_service_accounts_prefix_names
        if prefixes.strip():
            self.log.warning(
                "ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES is deprecated and will be removed; "
                "use ALLOWED_SERVICE_ACCOUNTS"
            )
        try:
            return ServiceAccountMatcher.from_settings(allowed, prefixes)
        except PatternError as error:
            raise FatalError(str(error)) from None

    async def allowed_uids(self, api: Any) -> frozenset[str]:
        from daprplane.core.kube.client import KubeApiError
        from daprplane.plugins.injector.authz import account_uids

        try:
            accounts = await list_service_accounts(api)
        except KubeApiError as error:
            raise FatalError(f"failed to get the service account UIDs: {error.message}") from None
        except (OSError, TimeoutError) as error:
            raise FatalError(f"failed to get the service account UIDs: {error}") from None
        return frozenset(account_uids(accounts, self.config.allowed_service_accounts))

    def _keep_anchors_pem(self, bundle: TrustBundle) -> None:
        # Encoded once per change rather than per admission.
        self.anchors_pem = bundle.pem.decode()

    async def mtls_enabled(self) -> bool:
        """``spec.mtls.enabled`` of the ``daprsystem`` Configuration; true when it is absent or
        cannot be read. Dapr reads it for every admission; here one read serves the admissions
        of the next :data:`MTLS_CACHE_SECONDS` (and concurrent ones share a read in flight), so
        a change applies to pods created a few seconds later at most."""
        now = time.monotonic()
        if self._mtls is not None and now - self._mtls_read_at < MTLS_CACHE_SECONDS:
            return self._mtls
        if self._mtls_lookup is None:
            self._mtls_lookup = asyncio.ensure_future(self._read_mtls())
        lookup = self._mtls_lookup
        try:
            enabled = await asyncio.shield(lookup)
        finally:
            if lookup.done() and self._mtls_lookup is lookup:
                self._mtls_lookup = None
        self._mtls, self._mtls_read_at = enabled, time.monotonic()
        return enabled

    async def _read_mtls(self) -> bool:
        from daprplane.core.kube.client import KubeApiError, path_of, request

        path = path_of(
            "apis", "dapr.io", "v1alpha1", "namespaces", self.config.namespace,
            "configurations", "daprsystem",
        )  # fmt: skip
        try:
            configuration = await request(self.api, "GET", path, timeout=LOOKUP_TIMEOUT)
        except (KubeApiError, OSError, TimeoutError):
            return True
        spec = (configuration or {}).get("spec") if isinstance(configuration, Mapping) else None
        mtls = spec.get("mtls") if isinstance(spec, Mapping) else None
        enabled = mtls.get("enabled") if isinstance(mtls, Mapping) else None
        return enabled if isinstance(enabled, bool) else True

    async def components(self, namespace: str) -> list[Mapping[str, Any]]:
        from daprplane.core.kube.client import KubeApiError, path_of, request
        from daprplane.plugins.injector import patcher

        path = path_of("apis", "dapr.io", "v1alpha1", "namespaces", namespace, "components")
        try:
            listed = await request(self.api, "GET", path, timeout=LOOKUP_TIMEOUT)
        except KubeApiError as error:
            raise patcher.PatchError(f"error listing components: {error.message}") from None
        except (OSError, TimeoutError) as error:
            raise patcher.PatchError(f"error listing components: {error}") from None
        return list((listed or {}).get("items") or [])

    async def build_patch(
        self, pod: Mapping[str, Any], review: AdmissionRequest
    ) -> Sequence[Mapping[str, Any]]:
        from daprplane.plugins.injector import patcher

        # ``pod`` is ``review.object``; ``review.pod`` is the handler's reading of it, reused.
        admitted = review.pod
        components = None
        # Listed only for pods that ask for pluggable components (the patcher reads the value).
        if admitted.asks_for_components:
            components = await self.components(review.namespace)
        return patcher.build_patch(
            admitted,
            self.config,
            namespace=review.namespace,
            trust_anchors=self.anchors_pem,
            hook=self.context.hook,
            scheduler_enabled=bool(self.context.flags.scheduler_enabled),
            mtls_enabled=await self.mtls_enabled(),
            token_volume_enabled=has_kubernetes_token(),
            components=components,
            on_plugin_failure=self.metrics.plugin_failure,
        )

    async def run(self) -> None:
        from daprplane.core.kube.client import KubeConfigError, new_api_client
        from daprplane.plugins.injector import patcher
        from daprplane.plugins.injector.authz import Authorizer
        from daprplane.plugins.injector.cabundle import CaBundleError, CaBundleSync
        from daprplane.plugins.injector.identity import open_anchors, start_identity
        from daprplane.plugins.injector.webhook import MutateHandler

        flags = self.context.flags
        self.log.info(
            "Starting Dapr Sidecar Injector -- version %s -- commit %s",
            daprplane.__version__,
            "unknown",
        )
        matcher = self.authorizer_patterns()
        async with contextlib.AsyncExitStack() as stack:
            try:
                api = new_api_client(flags.kubeconfig or None, self.environ)
            except KubeConfigError as error:
                raise FatalError(str(error)) from None
            stack.push_async_callback(api.close)
            self.api = api
            authorizer = Authorizer(matcher, await self.allowed_uids(api))

            namespace = self.config.namespace
            self.anchors = await open_anchors(self.config.trust_anchors_file, stack)
            self._keep_anchors_pem(self.anchors.current)
            stack.callback(self.anchors.subscribe(self._keep_anchors_pem))
            identity = await start_identity(
                self.config.sentry_address,
                namespace,
                self.config.control_plane_trust_domain,
                self.anchors,
                stack,
                self.provider_target,
            )

            handler = MutateHandler(
                authorizer=authorizer,
                build_patch=self.build_patch,
                metrics=self.metrics,
                log=self.log,
                expected_errors=(patcher.PatchError,),
            )
            await self._serve(handler, identity.tls.context, stack)
            self.service_target.ready()

            try:
                await CaBundleSync(api, self.anchors, self.webhook_target).run()
            except CaBundleError as error:
                raise FatalError(str(error)) from None

    async def _serve(
        self, handler: MutateHandler, ssl_context: Any, stack: contextlib.AsyncExitStack
    ) -> None:
        from daprplane.core.runtime import serving
        from daprplane.plugins.injector.webhook import application

        flags = self.context.flags
        host, port = flags.listen_address or "", int(flags.port)
        await stack.enter_async_context(
            serving(
                application(handler),
                host,
                port,
                "the webhook server",
                ssl_context=ssl_context,
                shutdown_timeout=GRACE_PERIOD,
            )
        )
        self.log.info("Sidecar injector is listening on %s:%d", host or "*", port)


async def run(context: ComponentContext) -> None:
    environ = dict(os.environ)
    try:
        config = InjectorConfig.from_environ(environ)
    except ConfigError as error:
        raise FatalError(f"error getting config: {error}") from None
    try:
        check_user("kubernetes", environ)
    except RootUserError as error:
        raise FatalError(str(error)) from None
    await InjectorService(context, config, environ).run()
