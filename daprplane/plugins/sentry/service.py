"""The sentry process: options, configuration, CA, validators, the gRPC server and reloads.

Where Dapr restarts its whole inner runner when the credentials change, this service reloads
the CA in place and swaps the serving certificate: the gRPC server keeps running, and a reload
that fails keeps the previous CA serving (logged) instead of stopping the process.

Start-up order, and fatal errors named by their stage as Dapr names them: options ("Invalid
options: …"); the configuration ("loading default config. …", worded by the loader); in
kubernetes mode the refusal to run as root ("error creating security: …", checked before the CA
so that a refused sentry writes nothing); the CA ("error creating CA: …"); then the token
validators start, while the serving identity is issued and the gRPC server binds ("error running
Sentry: …"). Each stage imports what it needs when it is reached (grpc, the validators, the
Kubernetes client), so an early fatal error exits before the heavy imports and a standalone
sentry never imports what only another mode or validator needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
from typing import TYPE_CHECKING, Any

from daprplane.core.runtime import FatalError
from daprplane.plugins.sentry.options import OptionsError, SentryOptions

if TYPE_CHECKING:
    from daprplane.core.component import ComponentContext
    from daprplane.plugins.sentry import config as config_mod
    from daprplane.plugins.sentry import validators as validators_mod
    from daprplane.plugins.sentry.ca import CredentialStore

#: Module that provides kubernetes mode: ``load_configuration(options, extra_validators)`` and
#: ``credential_store(options) -> CredentialStore`` (Secret + ConfigMap ``dapr-trust-bundle``).
KUBE_MODULE = "daprplane.plugins.sentry.ca.kube"
GRACE_PERIOD = 5.0


def _kube_module() -> Any:
    # Imported only in kubernetes mode: standalone sentry never loads the Kubernetes client.
    return importlib.import_module(KUBE_MODULE)


async def _load_config(options: SentryOptions, extra: list[str]) -> config_mod.SentryConfig:
    from daprplane.plugins.sentry import config as config_mod

    try:
        if options.mode == "kubernetes":
            loaded: config_mod.SentryConfig = await _kube_module().load_configuration(
                options, extra
            )
        else:
            loaded = await asyncio.to_thread(config_mod.load_standalone, options.config, extra)
    except config_mod.ConfigError as error:
        raise FatalError(str(error)) from None
    return loaded.with_trust_domain(options.trust_domain)


def _store(options: SentryOptions) -> CredentialStore:
    from daprplane.plugins.sentry.ca.files import FileCredentialStore

    if options.mode == "kubernetes":
        store: CredentialStore = _kube_module().credential_store(options)
        return store
    return FileCredentialStore(options.files)


def _check_watched(store: CredentialStore) -> None:
    """Every directory sentry watches for credential changes must exist, as Dapr requires."""
    import os

    for directory in getattr(store, "watched_paths", list)():
        if not os.path.exists(directory):
            raise FatalError(f"failed to add target {directory}: no such file or directory")


class Sentry:
    """One running sentry; :meth:`reload` swaps its CA in place."""

    def __init__(self, context: ComponentContext, options: SentryOptions) -> None:
        from daprplane.plugins.sentry.metrics import SentryMetrics

        self.context = context
        self.options = options
        self.log = context.logger
        self.metrics = SentryMetrics().register(context.metrics)
        # Registered before the first await: healthz must not report ready before sentry is.
        self.provider_target = context.health.add_target("security-provider")
        self.server_target = context.health.add_target("sentry-server")
        self.oidc_target = None
        self.workers: Any = None  # a workers.WorkerPool once worker processes serve
        if options.oidc_enabled and options.jwt_enabled:
            self.oidc_target = context.health.add_target("oidc-server")

    async def run(self) -> None:
        from daprplane.plugins.sentry import validators as validators_mod
        from daprplane.plugins.sentry.ca import CaSettings, CredentialsError, JwtSettings
        from daprplane.plugins.sentry.ca.bundle import sentry_spiffe_id

        options, context = self.options, self.context
        plugins = validators_mod.plugin_validators(context.hook, self.log)
        config = await _load_config(options, sorted(plugins))
        if options.mode == "kubernetes":
            from daprplane.core.security import usergroup

            try:
                usergroup.check_user(options.mode)
            except usergroup.RootUserError as error:
                raise FatalError(f"error creating security: {error}") from None
        self.settings = CaSettings(
            trust_domain=config.trust_domain,
            namespace=options.namespace,
            allowed_clock_skew=config.allowed_clock_skew,
            jwt=JwtSettings(options.jwt_enabled, options.jwt_key_id, options.jwt_signing_algorithm),
        )
        self.store = _store(options)
        _check_watched(self.store)
        try:
            credentials = await self.store.load(self.settings)
        except CredentialsError as error:
            raise FatalError(f"error creating CA: {error}") from None
        self._record_ca(credentials, changed=credentials.generated)

        from daprplane.plugins.sentry.server import Authority

        self.authority = Authority(
            credentials=credentials,
            workload_cert_ttl=config.workload_cert_ttl,
            allowed_clock_skew=config.allowed_clock_skew,
            namespace=options.namespace,
            # Standalone mode has no cluster DNS; kubernetes mode may resolve the real domain.
            cluster_domain=getattr(options, "cluster_domain", "") or config.trust_domain,
            jwt_enabled=options.jwt_enabled,
            jwt_ttl=options.jwt_ttl,
            jwt_issuer=options.jwt_issuer,
        )
        environment = validators_mod.ValidatorEnvironment(
            mode=options.mode,
            trust_domain=config.trust_domain,
            namespace=options.namespace,
            sentry_id=sentry_spiffe_id(config.trust_domain, options.namespace),
            logger=self.log,
            extras={"kubeconfig": options.kubeconfig},
        )
        try:
            validators = validators_mod.build(config, environment, plugins)
        except validators_mod.ValidatorSetupError as error:
            raise FatalError(str(error)) from None

        validator_targets = {
            id(v): context.health.add_target(v.healthz_target)
            for v in validators
            if v.healthz_target
        }
        # Validators start first: a JWKS source that cannot be fetched stops sentry while the
        # serving identity is still being issued, not after the server has started.
        tasks = [
            asyncio.create_task(
                self._start_validator(v, validator_targets.get(id(v))), name="validator"
            )
            for v in validators
        ]
        server: Any = None
        try:
            await asyncio.sleep(0)  # let the validators send their first requests
            server = await self._start_server(validators, config.trust_domain)
            tasks.append(asyncio.create_task(self.identity.keep_renewed(), name="identity"))
            tasks.append(asyncio.create_task(self.store.watch(self.reload), name="watcher"))
            if self.oidc_target is not None:
                tasks.append(asyncio.create_task(self._serve_oidc(self.oidc_target), name="oidc"))
            # After the watcher and the renewal started: a change while workers start is not missed.
            await self._start_workers(validators)
            await self._supervise(tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            stopping = [server.stop(GRACE_PERIOD)] if server is not None else []
            if self.workers is not None:
                stopping.append(self.workers.stop())
            await asyncio.gather(*stopping)
            await self.store.close()
            for validator in validators:
                with contextlib.suppress(Exception):
                    await validator.stop()

    async def _start_server(
        self, validators: validators_mod.ValidatorSet, trust_domain: str
    ) -> Any:
        """Issue the serving identity and start the gRPC server; returns the running server."""
        import grpc

        from daprplane.plugins.sentry.identity import ServingIdentity
        from daprplane.plugins.sentry.server import CAServicer, add_to_server

        options = self.options
        self.identity = ServingIdentity(
            self.authority,
            trust_domain,
            options.namespace,
            self.metrics,
            self._serving_certificate_changed,
        )
        try:
            self.identity.issue()
        except Exception as error:
            raise FatalError(
                f"error running Sentry: failed to issue sentry's serving certificate: {error}"
            ) from None

        server = grpc.aio.server()
        # Registered through the raw-bytes handler, so an undecodable request gets Dapr's
        # INTERNAL "grpc: error unmarshalling request" instead of grpc's own UNKNOWN.
        add_to_server(
            CAServicer(self.authority, validators, self.metrics, self.context.hook), server
        )
        try:
            bound = server.add_secure_port(options.grpc_address, self.identity.server_credentials())
        except RuntimeError as error:
            bound = 0
            detail = str(error)
        else:
            detail = "address in use or not available"
        if not bound and options.port != 0:
            raise FatalError(
                f"error running Sentry: could not listen on port {options.port}: {detail}"
            )
        self.bound_port = bound
        await server.start()
        self.server_target.ready()
        self.log.info("Sentry is running; gRPC server listening on %s", options.grpc_address)
        return server

    def _serving_certificate_changed(self) -> None:
        self.provider_target.ready()
        current = self.identity.current
        if self.workers is not None and current is not None:
            self.workers.broadcast("serving", (current.key_pem, current.chain_pem))

    async def _start_workers(self, validators: validators_mod.ValidatorSet) -> None:
        """Start worker processes on the same port (:mod:`.workers`) when they can serve."""
        from daprplane.plugins.sentry import workers as workers_mod

        count = workers_mod.process_count() - 1
        if count < 1 or not self.bound_port:
            return
        reason = workers_mod.why_not(validators, self.options.jwt_enabled, self.context.hook)
        if reason is not None:
            self.log.info("Serving gRPC from this process only: %s", reason)
            return
        host = self.options.grpc_address.rsplit(":", 1)[0]
        authority, current = self.authority, self.identity.current
        assert current is not None  # issued before the server started
        self.workers = workers_mod.WorkerPool(count, self.metrics)
        await self.workers.start(
            {
                "address": f"{host}:{self.bound_port}",
                "ttl": authority.workload_cert_ttl,
                "skew": authority.allowed_clock_skew,
                "namespace": authority.namespace,
                "cluster_domain": authority.cluster_domain,
                "default_validator": validators.default,
                "ca": workers_mod.ca_payload(authority.credentials),
                "serving": (current.key_pem, current.chain_pem),
            }
        )
        # The CA or the serving certificate may have changed while the workers were starting.
        self.workers.broadcast("ca", workers_mod.ca_payload(self.authority.credentials))
        self._serving_certificate_changed()

    async def _supervise(self, tasks: list[asyncio.Task[None]]) -> None:
        pending = set(tasks)
        while pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                error = task.exception()
                if isinstance(error, FatalError):
                    raise error
                if error is not None:
                    message = f"error running Sentry: {task.get_name()} failed: {error}"
                    raise FatalError(message) from error

    async def _start_validator(self, validator: validators_mod.Validator, target: Any) -> None:
        try:
            await validator.start()
        except Exception as error:
            from daprplane.plugins.sentry.validators import kind_name

            raise FatalError(
                "error running Sentry: failed to start the "
                f"{kind_name(validator.kind)} token validator: {error}"
            ) from None
        if target is not None:
            target.ready()

    async def _serve_oidc(self, target: Any) -> None:
        """The OIDC discovery server (only with both ``--oidc-enabled`` and ``--jwt-enabled``)."""
        from daprplane.plugins.sentry import oidc

        flags = self.options.flags
        material = self.authority.credentials.jwt

        def jwks() -> Any:
            current = self.authority.credentials.jwt
            return current.jwks if current is not None else None

        cert, key = flags.oidc_server_tls_cert_file, flags.oidc_server_tls_key_file
        try:
            app = oidc.application(
                jwks=jwks,
                jwt_issuer=self.options.jwt_issuer,
                jwks_uri=flags.oidc_jwks_uri,
                path_prefix=flags.oidc_path_prefix,
                allowed_hosts=list(flags.oidc_allowed_hosts),
                tls_configured=bool(cert and key),
                algorithm=material.algorithm if material else self.options.jwt_signing_algorithm,
            )
            await oidc.serve_oidc(
                app,
                flags.oidc_server_listen_address,
                flags.oidc_server_listen_port,
                cert_file=cert,
                key_file=key,
                on_ready=lambda _port: target.ready(),
            )
        except (ValueError, oidc.OidcServerError) as error:
            raise FatalError(f"error running Sentry: OIDC server failed: {error}") from None

    def _record_ca(self, credentials: Any, changed: bool) -> None:
        issuer = credentials.bundle.issuer
        self.metrics.issuer_expiry(issuer.not_valid_after_utc.timestamp())
        if changed:
            self.metrics.issuer_changed()

    async def reload(self) -> None:
        from daprplane.plugins.sentry.ca import CredentialsError

        self.log.info("Issuer credentials changed; reloading")
        self.metrics.issuer_changed()
        try:
            credentials = await self.store.load(self.settings)
        except CredentialsError as error:
            self.log.error("Failed to reload the CA; still serving the previous one: %s", error)
            return
        self._record_ca(credentials, changed=False)
        self.authority.credentials = credentials
        if self.workers is not None:
            from daprplane.plugins.sentry.workers import ca_payload

            self.workers.broadcast("ca", ca_payload(credentials))
        self.identity.reissue_soon()


async def run(context: ComponentContext) -> None:
    try:
        options = SentryOptions.from_flags(context.flags)
    except OptionsError as error:
        raise FatalError(f"Invalid options: {error}") from None
    logging.getLogger("dapr.sentry").debug("Starting sentry in %s mode", options.mode)
    await Sentry(context, options).run()
