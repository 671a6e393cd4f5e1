"""A running operator against the real API server, with its identity from a real sentry.

The operator runs as a user bound to Dapr's operator RBAC (the ClusterRole and the namespaced
Role of Dapr's chart, plus Event creation in app namespaces), so the tests also show it needs
no more than that. Sidecars are simulated with the identity library: a workload SVID from the
same sentry (``spiffe://public/ns/<namespace>/<app-id>``) and a channel that accepts only the
operator's own SPIFFE ID, as daprd pins it.

Sentry is standalone (insecure validator) by default. ``control_plane_in(...,
sentry_mode="kubernetes")`` runs it in kubernetes mode instead, as the chart does: it keeps its
CA in the ``dapr-trust-bundle`` Secret, reads ``daprsystem`` from the API server and signs only
for a ServiceAccount token of a real pod, so the operator gets a pod annotated
``dapr.io/control-plane: operator`` and a token bound to it (``DAPR_SENTRY_TOKEN_FILE``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import secrets
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.injector.conftest import apply
from tests.integration.launchers import (
    LoopbackPorts,
    free_port,
    metric_samples,
    started,
    wait_until_healthy,
)
from tests.integration.operator.crds import install_crds
from tests.integration.sentry.conftest import (
    TRUST_BUNDLE,
    SentryProcess,
    published_anchors,
    run_sentry,
    sentry_configuration,
)
from tests.k8s.cluster import KubeCluster, raw_request

TRUST_DOMAIN = "cluster.local"
OPERATOR_USER = "daprplane-operator"
SENTRY_CONFIG = sentry_configuration(workload_cert_ttl="1h", allowed_clock_skew="1m")

DAPR_RESOURCES = [
    "components",
    "configurations",
    "subscriptions",
    "resiliencies",
    "httpendpoints",
    "mcpservers",
    "workflowaccesspolicies",
]
OPERATOR_CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "daprplane-test-operator"},
    "rules": [
        {
            "apiGroups": ["apiextensions.k8s.io"],
            "resources": ["customresourcedefinitions"],
            "verbs": ["get", "patch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments", "statefulsets"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["apps"],
            "resources": ["deployments/finalizers", "statefulsets/finalizers"],
            "verbs": ["get", "list", "watch", "update"],
        },
        # patch: the chart adds it with watchdogCanPatchPodLabels, which one test uses.
        {
            "apiGroups": [""],
            "resources": ["pods"],
            "verbs": ["get", "list", "delete", "watch", "patch"],
        },
        {
            "apiGroups": [""],
            "resources": ["services", "services/finalizers"],
            "verbs": ["get", "list", "watch", "update", "create"],
        },
        {"apiGroups": [""], "resources": ["services"], "verbs": ["delete"]},
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["dapr.io"], "resources": DAPR_RESOURCES, "verbs": ["get", "list", "watch"]},
        # Not in Dapr's chart: the Warning Event on a workload with an invalid app ID.
        {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]},
    ],
}


def operator_role(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "Role",
        "metadata": {"name": "dapr-operator", "namespace": namespace},
        "rules": [
            {
                "apiGroups": ["coordination.k8s.io"],
                "resources": ["leases"],
                "verbs": ["get", "list", "watch", "update", "create"],
                "resourceNames": ["operator.dapr.io", "webhooks.dapr.io"],
            },
            {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]},
            {"apiGroups": [""], "resources": ["configmaps", "events"], "verbs": ["create"]},
        ],
    }


def grant_operator_rbac(cluster: KubeCluster, api: Any, namespace: str) -> Path:
    """A kubeconfig for a user with exactly the operator's permissions."""
    rbac = "/apis/rbac.authorization.k8s.io/v1"
    apply(api, f"{rbac}/clusterroles", OPERATOR_CLUSTER_ROLE)
    subject = {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": OPERATOR_USER}
    apply(
        api,
        f"{rbac}/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "daprplane-test-operator"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "daprplane-test-operator",
            },
            "subjects": [subject],
        },
    )
    apply(api, f"{rbac}/namespaces/{namespace}/roles", operator_role(namespace))
    apply(
        api,
        f"{rbac}/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "dapr-operator", "namespace": namespace},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "dapr-operator",
            },
            "subjects": [subject],
        },
    )
    return cluster.user_kubeconfig(OPERATOR_USER)


def system_configuration(namespace: str, **mtls: str) -> dict[str, Any]:
    """The ``daprsystem`` Configuration: mTLS on in our trust domain, plus ``mtls`` fields."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": "daprsystem", "namespace": namespace},
        "spec": {"mtls": {"enabled": True, "controlPlaneTrustDomain": TRUST_DOMAIN, **mtls}},
    }


def sentry_spiffe_id(namespace: str) -> str:
    return f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/dapr-sentry"


@dataclass
class ControlPlane:
    cluster: KubeCluster
    namespace: str
    sentry: SentryProcess
    kubeconfig: Path
    directory: Path
    #: Added to every operator's environment (its sentry token when sentry is in kubernetes mode).
    operator_env: dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def sentry_id(self) -> str:
        """Sentry's SPIFFE ID: the audience of the ServiceAccount tokens it accepts."""
        return sentry_spiffe_id(self.namespace)

    @property
    def anchors_file(self) -> Path:
        path = self.directory / "ca.crt"
        if not path.exists():
            path.write_bytes(self.sentry.trust_anchors)
        return path

    @property
    def operator_id(self) -> str:
        return f"spiffe://{TRUST_DOMAIN}/ns/{self.namespace}/dapr-operator"


@dataclass
class Operator:
    process: subprocess.Popen[str]
    port: int
    healthz_port: int
    metrics_port: int
    webhook_port: int
    log: Path
    control_plane: ControlPlane

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def metrics(self) -> dict[str, float]:
        return metric_samples(self.metrics_port, "dapr_operator_", "daprplane_operator_")

    def output(self) -> str:
        return self.log.read_text()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=30)


@contextlib.contextmanager
def run_operator(
    control_plane: ControlPlane,
    *args: str,
    env: dict[str, str] | None = None,
    name: str = "operator",
    wait_healthy: bool = True,
) -> Iterator[Operator]:
    """Start ``daprplane-operator`` with an empty environment but for ``env`` (NAMESPACE and
    the uid opt-out by default) on free loopback ports; its output goes to a log file."""
    ports, webhook = LoopbackPorts(), free_port()
    log = control_plane.directory / f"{name}-{secrets.token_hex(3)}.log"
    environment = {
        "NAMESPACE": control_plane.namespace,
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
        **control_plane.operator_env,
        **(env or {}),
    }
    with started(
        "daprplane-operator",
        *ports.flags(),
        f"--webhook-server-port={webhook}",
        "--webhook-server-listen-address=127.0.0.1",
        f"--kubeconfig={control_plane.kubeconfig}",
        f"--trust-anchors-file={control_plane.anchors_file}",
        *args,
        env=environment,
        log=log,
    ) as process:
        if wait_healthy:
            wait_until_healthy(process, ports.healthz, what=name, timeout=60, output=log.read_text)
        yield Operator(
            process, ports.port, ports.healthz, ports.metrics, webhook, log, control_plane
        )


@contextlib.contextmanager
def control_plane_in(
    cluster: KubeCluster,
    directory: Path,
    *,
    webhook_port: int | None = None,
    sentry_mode: str = "standalone",
) -> Iterator[ControlPlane]:
    """A control-plane namespace with the CRDs, the operator's RBAC, ``daprsystem`` and a
    running sentry (``sentry_mode``: ``standalone`` or ``kubernetes``)."""
    if sentry_mode not in ("standalone", "kubernetes"):
        raise ValueError(f"unknown sentry mode {sentry_mode!r}")
    namespace = cluster.create_namespace(f"dapr-cp-{secrets.token_hex(3)}")
    try:
        with cluster.api_client() as api:
            install_crds(api)
            kubeconfig = grant_operator_rbac(cluster, api, namespace)
            run = _kubernetes_sentry if sentry_mode == "kubernetes" else _standalone_sentry
            with run(cluster, api, namespace, directory) as (sentry, operator_env):
                yield ControlPlane(cluster, namespace, sentry, kubeconfig, directory, operator_env)
    finally:
        cluster.delete_namespace(namespace)


@contextlib.contextmanager
def _standalone_sentry(
    cluster: KubeCluster, api: Any, namespace: str, directory: Path
) -> Iterator[tuple[SentryProcess, dict[str, str]]]:
    with run_sentry(
        directory / "sentry",
        f"--trust-domain={TRUST_DOMAIN}",
        env={"NAMESPACE": namespace},
        config=SENTRY_CONFIG,
    ) as sentry:
        apply(
            api,
            f"/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations",
            system_configuration(namespace, sentryAddress=sentry.address),
        )
        yield sentry, {}


OPERATOR_POD = "dapr-operator-0"
OPERATOR_SERVICE_ACCOUNT = "dapr-operator"


def _control_plane_pod(name: str, service: str, service_account: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": {"dapr.io/control-plane": service}},
        "spec": {
            "serviceAccountName": service_account,
            "containers": [{"name": service, "image": f"ghcr.io/dapr/{service}:1.18.3"}],
        },
    }


def pod_token(
    cluster: KubeCluster, namespace: str, pod_name: str, audience: str, path: Path
) -> Path:
    """A ServiceAccount token bound to an existing pod, for ``audience``, written to ``path``
    (what the kubelet projects into ``/var/run/secrets/dapr.io/sentrytoken``)."""
    from kubernetes import client

    with cluster.api_client() as api:
        pod = client.CoreV1Api(api).read_namespaced_pod(pod_name, namespace)
    token = cluster.service_account_token(
        namespace,
        pod.spec.service_account_name,
        audiences=[audience],
        bound_object={"kind": "Pod", "apiVersion": "v1", "name": pod_name, "uid": pod.metadata.uid},
    )
    path.write_text(token)
    return path


@contextlib.contextmanager
def _kubernetes_sentry(
    cluster: KubeCluster, api: Any, namespace: str, directory: Path
) -> Iterator[tuple[SentryProcess, dict[str, str]]]:
    from kubernetes import client

    core = client.CoreV1Api(api)
    # What the chart installs before sentry starts: empty trust bundle objects, daprsystem.
    core.create_namespaced_secret(namespace, {"metadata": {"name": TRUST_BUNDLE}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": TRUST_BUNDLE}})
    configurations = f"/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations"
    configuration = system_configuration(namespace, workloadCertTTL="1h", allowedClockSkew="1m")
    apply(api, configurations, configuration)
    core.create_namespaced_service_account(
        namespace, {"metadata": {"name": OPERATOR_SERVICE_ACCOUNT}}
    )
    apply(
        api,
        f"/api/v1/namespaces/{namespace}/pods",
        _control_plane_pod(OPERATOR_POD, "operator", OPERATOR_SERVICE_ACCOUNT),
    )
    token = pod_token(
        cluster, namespace, OPERATOR_POD, sentry_spiffe_id(namespace), directory / "operator-token"
    )
    with run_sentry(
        directory / "sentry",
        "--mode=kubernetes",
        # After run_sentry's own --config (a file): in kubernetes mode it names a Configuration.
        "--config=daprsystem",
        f"--trust-domain={TRUST_DOMAIN}",
        env={
            "NAMESPACE": namespace,
            # The admin kubeconfig: sentry's own RBAC is not what these tests are about.
            "KUBECONFIG": str(cluster.kubeconfig),
            "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
        },
    ) as sentry:
        # The anchors are in the API server, not in sentry's credentials directory.
        anchors = directory / "sentry-trust-anchors"
        anchors.mkdir(exist_ok=True)
        (anchors / "ca.crt").write_bytes(published_anchors(api, namespace))
        raw_request(
            api,
            "PATCH",
            f"{configurations}/daprsystem",
            body={"spec": {"mtls": {"sentryAddress": sentry.address}}},
            content_type="application/merge-patch+json",
        )
        yield (
            dataclasses.replace(sentry, credentials=anchors),
            {"DAPR_SENTRY_TOKEN_FILE": str(token)},
        )


@pytest.fixture(scope="module")
def control_plane(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    with control_plane_in(kube_cluster, tmp_path_factory.mktemp("control-plane")) as plane:
        yield plane


@pytest.fixture(scope="module")
def operator(control_plane: ControlPlane) -> Iterator[Operator]:
    # ENABLE_WEBHOOKS=false: the module-wide operator leaves the shared Subscription CRD alone;
    # the conversion tests run an operator of their own.
    with run_operator(control_plane, env={"ENABLE_WEBHOOKS": "false"}) as process:
        yield process


class Sidecar:
    """A sidecar's view of the operator: an mTLS channel with a workload identity."""

    def __init__(self, operator: Operator, app_id: str, namespace: str) -> None:
        self.operator = operator
        self.app_id = app_id
        self.namespace = namespace
        self.channel: Any = None

    @contextlib.asynccontextmanager
    async def stub(self) -> AsyncIterator[Any]:
        from daprplane._proto.operator.v1 import operator_pb2_grpc
        from daprplane.core.security.anchors import StaticTrustAnchors
        from daprplane.core.security.authz import allow_ids
        from daprplane.core.security.dialer import SpiffeChannel
        from daprplane.core.security.rotation import SvidSource
        from daprplane.core.security.sentry_client import SentryClient

        plane = self.operator.control_plane
        anchors = StaticTrustAnchors.from_pem(plane.sentry.trust_anchors)
        sentry = SentryClient(
            address=plane.sentry.address,
            anchors=anchors,
            app_id=self.app_id,
            namespace=self.namespace,
            control_plane_trust_domain=TRUST_DOMAIN,
            control_plane_namespace=plane.namespace,
            environ={},
        )
        async with SvidSource(sentry.sign) as svid:
            await svid.wait_ready()
            channel = SpiffeChannel(
                self.operator.address,
                anchors=anchors,
                authorize=allow_ids(plane.operator_id),
                svid=svid,
            )
            async with channel as grpc_channel:
                self.channel = grpc_channel
                yield operator_pb2_grpc.OperatorStub(grpc_channel)  # type: ignore[no-untyped-call]


def dapr_path(namespace: str, plural: str, name: str = "", version: str = "v1alpha1") -> str:
    path = f"/apis/dapr.io/{version}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path
