"""``daprplane up --kubeconfig``: all four components here, against a cluster's API server.

Sentry runs in kubernetes mode and keeps its CA in the namespace, as in a cluster; placement,
the operator and the injector get their identities from it with tokens bound to stand-in pods
(see :mod:`.cluster_objects`). Everything the run needs only while it lasts is removed at stop.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.core.kube.client import KubeApiError, KubeConfigError, load_cluster_config
from daprplane.core.local import cluster_bootstrap as bootstrap
from daprplane.core.local import console
from daprplane.core.local.cluster_objects import TRUST_BUNDLE
from daprplane.core.local.plan import ComponentProcess, Settings, cluster_components, cluster_sentry
from daprplane.core.local.supervisor import Supervisor

READY_TIMEOUT = 60.0


class ClusterRun:
    """One run's state in the cluster, so that a stop can undo exactly what was done."""

    def __init__(self, settings: Settings) -> None:
        assert settings.kubeconfig
        self.settings = settings
        self.kubeconfig: str = settings.kubeconfig
        self.stand_ins: Mapping[str, Mapping[str, Any]] = {}
        self.renewal: bootstrap.TokenRenewal | None = None
        self.components: list[ComponentProcess] = []

    def server(self) -> str:
        try:
            return load_cluster_config(self.kubeconfig, environ={}).host
        except KubeConfigError as error:
            raise bootstrap.ClusterError(str(error)) from None

    def prepare(self) -> dict[str, Any]:
        """Check the cluster, create the objects and the stand-ins; the token files."""
        settings, namespace = self.settings, self.settings.namespace
        sentry_address = f"{settings.listen_address}:{settings.sentry_port}"
        bootstrap.with_api(self.kubeconfig, lambda api: bootstrap.check(api, namespace))
        bootstrap.with_api(
            self.kubeconfig,
            lambda api: bootstrap.prepare(
                api,
                namespace,
                settings.trust_domain,
                sentry_address,
                settings.webhook_host,
                settings.injector_port,
            ),
        )
        self.stand_ins = bootstrap.with_api(
            self.kubeconfig, lambda api: bootstrap.create_stand_ins(api, namespace)
        )
        tokens = self._write_tokens()
        self.renewal = bootstrap.TokenRenewal(self._write_tokens)
        self.renewal.start()
        return tokens

    def _write_tokens(self) -> dict[str, Any]:
        audience = bootstrap.sentry_audience(self.settings.trust_domain, self.settings.namespace)
        return bootstrap.with_api(
            self.kubeconfig,
            lambda api: bootstrap.write_tokens(
                api, self.settings.namespace, self.stand_ins, audience, self.settings.state.cluster
            ),
        )

    def start(self, supervisor: Supervisor) -> None:
        settings = self.settings
        server = self.server()
        console.say("cluster", f"{server}, namespace {settings.namespace}")
        tokens = self.prepare()
        console.say("cluster", "ready: CRDs found, stand-in pods and tokens created")
        sentry = cluster_sentry(settings)
        self.components.append(sentry)
        _start(supervisor, settings, sentry)
        anchors = settings.state.cluster / "ca.crt"
        anchors.write_bytes(
            bootstrap.with_api(
                self.kubeconfig, lambda api: bootstrap.published_anchors(api, settings.namespace)
            )
        )
        console.say("", f"trust anchors published in {TRUST_BUNDLE}")
        for component in cluster_components(settings, sentry, anchors, tokens):
            self.components.append(component)
            _start(supervisor, settings, component)
        console.cluster_summary(settings, self.components, anchors, server)

    def stop(self) -> list[str]:
        """Undo the run's objects; the problems met, for the caller to print."""
        problems = []
        if self.renewal is not None:
            self.renewal.stop()
            problems += [f"token renewal failed: {failure}" for failure in self.renewal.failures]
        try:
            bootstrap.with_api(
                self.kubeconfig,
                lambda api: bootstrap.clean_up(api, self.settings.namespace, self.stand_ins),
            )
        except (KubeApiError, OSError) as error:
            problems.append(f"could not remove the stand-in pods and the webhook: {error}")
        return problems


def _start(supervisor: Supervisor, settings: Settings, component: ComponentProcess) -> None:
    log = settings.state.log_of(component.name)
    console.say(component.name, f"starting (log: {log})")
    child = supervisor.start(component, log)
    seconds = supervisor.wait_ready(child, settings.listen_address, READY_TIMEOUT)
    console.say(component.name, f"ready in {seconds:.1f}s on {component.address}", fg="green")
