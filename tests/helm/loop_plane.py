"""The whole chart running: rendered, created on the test API server, its four pods run here.

:func:`control_plane` renders the chart into a fresh namespace, creates every object (CRDs
first), creates each workload's first Pod and runs its container as a local process
(:mod:`tests.helm.loop_pods`): sentry first, then, once sentry has published the trust anchors
in the ``dapr-trust-bundle`` ConfigMap and they are in every pod's mount, placement, the
operator and the injector together. Each is waited for on its ``/healthz``.

Overrides, all of them, because the pods run on one loopback beside other tests:

* ports (every listening port of every component, to a free one):

  ========================= ====================================================================
  sentry                    ``--port`` ``--healthz-port`` ``--metrics-port``
  placement                 ``--port`` ``--healthz-port`` ``--metrics-port``, and the raft
                            port in ``--initial-cluster`` (its own entry, on 127.0.0.1)
  operator                  ``--port`` ``--webhook-server-port`` ``--healthz-port``
                            ``--metrics-port``
  injector                  ``--port`` ``--healthz-port`` ``--metrics-port``
  ========================= ====================================================================

* sentry's address: the chart's own value ``global.mtls.sentryAddress`` is
  ``127.0.0.1:<sentry port>``, because ``dapr-sentry.<ns>.svc`` does not resolve here. That one
  value is what the operator (``daprsystem``), placement (``--sentry-address``) and the
  injector (``DAPR_SENTRY_ADDRESS``) dial; sidecars are still given the Service names.
  Placement is dialed only by the tests, at its local port.

Stand-ins for the parts of a cluster that do not run here (no controller-manager, no
kube-proxy, no cluster DNS):

* the ``kube-root-ca.crt`` ConfigMap the controller-manager publishes in every namespace (the
  ``kube-api-access`` volume of each pod reads it);
* the API server reaches the webhooks through their Services. Those get no ClusterIP route here,
  so ``dapr-sidecar-injector`` and ``dapr-webhook`` are replaced with ``ExternalName`` Services
  for ``localhost`` (the API server then dials ``localhost``, still verifying the certificate
  for ``<service>.<ns>.svc``), and the injector's webhook gets the injector's local port in
  ``clientConfig.service.port`` (the Service's 443 -> targetPort mapping is kube-proxy's work).

Everything else runs as rendered: each volume is mounted at its own ``mountPath`` and the API
server is reached with the pod's in-cluster configuration (:mod:`tests.helm.loop_pods`), with
the chart's ServiceAccounts and RBAC. The operator points the shared Subscription CRD's
conversion webhook at its namespace, as it does in a cluster; :meth:`LoopPlane.remove` puts the
chart's stanza back.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client

from tests.helm.apply import Created, crd_documents, create_into, delete_cluster_scoped, ensure_crds
from tests.helm.cases import WEBHOOK_COLLECTION
from tests.helm.chart import CHART_CRDS_DIR, Rendered, render
from tests.helm.loop_pods import (
    Launch,
    PodRoot,
    create_pod,
    launch_for,
    pod_from_template,
    pod_name,
)
from tests.integration.launchers import free_port, wait_until_healthy
from tests.integration.sentry.conftest import published_anchors
from tests.k8s.cluster import KubeCluster, raw_request

SENTRY = "dapr-sentry"
PLACEMENT = "dapr-placement-server"
OPERATOR = "dapr-operator"
INJECTOR = "dapr-sidecar-injector"
#: The port flags each workload's container gets a free port for.
PORT_FLAGS: dict[str, tuple[str, ...]] = {
    SENTRY: ("port", "healthz-port", "metrics-port"),
    PLACEMENT: ("port", "healthz-port", "metrics-port"),
    OPERATOR: ("port", "webhook-server-port", "healthz-port", "metrics-port"),
    INJECTOR: ("port", "healthz-port", "metrics-port"),
}
#: Services the API server itself calls (admission and conversion webhooks).
WEBHOOK_SERVICES = (INJECTOR, "dapr-webhook")
TRUST_BUNDLE = "dapr-trust-bundle"
SUBSCRIPTIONS_CRD = "subscriptions.dapr.io"
STARTUP_TIMEOUT = 60.0
STOP_TIMEOUT = 30.0


def loop_values(sentry_port: int, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The chart's defaults but for sentry's address (see the module docstring) and ``extra``."""
    from tests.helm.cases import merged

    values = {"global": {"mtls": {"sentryAddress": f"127.0.0.1:{sentry_port}"}}}
    return merged(values, dict(extra or {}))


@dataclass
class Component:
    """One workload's pod, run here."""

    workload: str
    pod: PodRoot
    ports: dict[str, int | str]  # port flags, and placement's --initial-cluster
    launch: Launch
    log: Path
    process: subprocess.Popen[bytes] | None = None
    exit_code: int | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.ports['port']}"

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def start(self) -> None:
        with self.log.open("ab") as output:
            self.process = subprocess.Popen(
                self.launch.argv,
                env=self.launch.env,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd="/",
            )

    def wait_healthy(self, deadline: float) -> None:
        assert self.process is not None
        wait_until_healthy(
            self.process,
            int(self.ports["healthz-port"]),
            what=self.workload,
            timeout=deadline - time.monotonic(),
            output=self.output,
        )

    def stop(self) -> int | None:
        """SIGTERM, as the kubelet stops a container; the exit code (None: never started)."""
        if self.process is None:
            return None
        if self.exit_code is None:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
            try:
                self.exit_code = self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                self.exit_code = -signal.SIGKILL
        return self.exit_code


@dataclass
class LoopPlane:
    cluster: KubeCluster
    api: Any
    namespace: str
    values: dict[str, Any]
    rendered: Rendered
    created: list[Created]
    directory: Path
    components: dict[str, Component] = field(default_factory=dict)
    anchors: bytes = b""
    removed: bool = False

    @property
    def sentry(self) -> Component:
        return self.components[SENTRY]

    @property
    def placement(self) -> Component:
        return self.components[PLACEMENT]

    @property
    def operator(self) -> Component:
        return self.components[OPERATOR]

    @property
    def injector(self) -> Component:
        return self.components[INJECTOR]

    def stop(self) -> dict[str, int | None]:
        """Stop every component (injector, operator, placement, then sentry); exit codes."""
        return {name: self.components[name].stop() for name in reversed(list(self.components))}

    def remove(self) -> None:
        """Delete the cluster-scoped objects, the namespace, and the local pod roots."""
        if self.removed:
            return
        self.removed = True
        try:
            delete_cluster_scoped(self.api, self.created)
            restore_subscriptions_crd(self.api)
            self.cluster.delete_namespace(self.namespace)
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


# -- stand-ins -------------------------------------------------------------------------------------


def publish_root_ca(cluster: KubeCluster, api: Any, namespace: str) -> None:
    """``kube-root-ca.crt``, which the controller-manager publishes in every namespace."""
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kube-root-ca.crt", "namespace": namespace},
        "data": {"ca.crt": cluster.ca.cert_pem.decode()},
    }
    try:
        raw_request(api, "POST", f"/api/v1/namespaces/{namespace}/configmaps", body=body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def route_webhooks_to_localhost(api: Any, namespace: str, injector_port: int) -> None:
    """See the module docstring: the webhook Services as ExternalName, the injector's port."""
    services = f"/api/v1/namespaces/{namespace}/services"
    for name in WEBHOOK_SERVICES:
        rendered = raw_request(api, "GET", f"{services}/{name}")
        raw_request(api, "DELETE", f"{services}/{name}")
        raw_request(
            api,
            "POST",
            services,
            body={
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": name, "labels": rendered["metadata"].get("labels", {})},
                "spec": {"type": "ExternalName", "externalName": "localhost"},
            },
        )
    raw_request(
        api,
        "PATCH",
        f"{WEBHOOK_COLLECTION}/{INJECTOR}",
        body=[
            {
                "op": "replace",
                "path": "/webhooks/0/clientConfig/service/port",
                "value": injector_port,
            }
        ],
        content_type="application/json-patch+json",
    )


def restore_subscriptions_crd(api: Any) -> None:
    """Put the shared Subscription CRD's conversion stanza back as the chart installs it (the
    operator points it at its own namespace and trust anchors)."""
    (document,) = (
        doc for doc in crd_documents(CHART_CRDS_DIR) if doc["metadata"]["name"] == SUBSCRIPTIONS_CRD
    )
    client_config = document["spec"]["conversion"]["webhook"]["clientConfig"]
    path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{SUBSCRIPTIONS_CRD}"
    live = raw_request(api, "GET", path)["spec"]["conversion"]["webhook"]["clientConfig"]
    patch = [
        {
            "op": "replace",
            "path": "/spec/conversion/webhook/clientConfig/service/namespace",
            "value": client_config["service"]["namespace"],
        }
    ]
    if "caBundle" in live and "caBundle" not in client_config:
        patch.append({"op": "remove", "path": "/spec/conversion/webhook/clientConfig/caBundle"})
    raw_request(api, "PATCH", path, body=patch, content_type="application/json-patch+json")


# -- bringing it up --------------------------------------------------------------------------------


@contextlib.contextmanager
def control_plane(
    cluster: KubeCluster, api: Any, extra_values: Mapping[str, Any] | None = None
) -> Iterator[LoopPlane]:
    """The running control plane; stopped and removed afterwards (unless a test did it)."""
    namespace = cluster.create_namespace(f"dapr-loop-{secrets.token_hex(3)}")
    directory = Path(tempfile.mkdtemp(prefix="daprplane-loop-"))
    ports = {
        workload: {flag: free_port() for flag in flags} for workload, flags in PORT_FLAGS.items()
    }
    values = loop_values(ports[SENTRY]["port"], extra_values)
    rendered = render(values, namespace=namespace)
    plane = LoopPlane(cluster, api, namespace, values, rendered, [], directory)
    try:
        ensure_crds(api, CHART_CRDS_DIR)
        create_into(api, rendered, plane.created)
        publish_root_ca(cluster, api, namespace)
        route_webhooks_to_localhost(api, namespace, ports[INJECTOR]["port"])
        for workload in PORT_FLAGS:  # sentry first
            plane.components[workload] = _component(plane, workload, ports[workload])
        _start(plane)
        yield plane
    finally:
        try:
            plane.stop()
        finally:
            plane.remove()


def _component(plane: LoopPlane, workload: str, ports: dict[str, int]) -> Component:
    rendered = plane.rendered.workload(workload)
    stored = create_pod(plane.api, pod_from_template(rendered, pod_name(rendered)))
    pod = PodRoot(plane.cluster, plane.api, stored, plane.directory / stored["metadata"]["name"])
    pod.materialise()
    flags: dict[str, int | str] = dict(ports)
    if workload == PLACEMENT:
        # The peer's own entry, as rendered but on loopback: its Service name does not resolve
        # here, and placement listens for raft on that address.
        flags["initial-cluster"] = f"{stored['metadata']['name']}=127.0.0.1:{free_port()}"
    log = plane.directory / f"{workload}.log"
    return Component(workload, pod, flags, launch_for(pod, flags), log)


def _start(plane: LoopPlane) -> None:
    plane.sentry.start()
    plane.sentry.wait_healthy(time.monotonic() + STARTUP_TIMEOUT)
    plane.anchors = published_anchors(plane.api, plane.namespace, STARTUP_TIMEOUT)
    others = [component for name, component in plane.components.items() if name != SENTRY]
    for component in others:
        component.pod.materialise()  # the kubelet's sync of the updated ConfigMap
        component.start()
    deadline = time.monotonic() + STARTUP_TIMEOUT
    for component in others:
        component.wait_healthy(deadline)
