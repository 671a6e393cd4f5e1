"""A running injector behind the real API server, with its identity from a real sentry.

The webhook is registered the way Dapr's Helm chart registers it: ``clientConfig.service``
(``dapr-sidecar-injector`` in the control-plane namespace) and no ``caBundle``; the injector
writes the trust anchors there itself. The API server then checks the serving certificate for
``dapr-sidecar-injector.<namespace>.svc``, the DNS name sentry puts in the injector's SVID. The
Service is an ExternalName pointing at ``localhost``, which is how the API server reaches a
webhook on loopback under its Service name (a URL with ``127.0.0.1`` would need an IP SAN that
sentry never issues).

The injector runs as a user bound to exactly Dapr's injector ClusterRole, so the test also shows
it needs no more permissions than Dapr's does.
"""

from __future__ import annotations

import base64
import contextlib
import secrets
import signal
import ssl
import subprocess
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.integration.launchers import LoopbackPorts, free_port, started, wait_until_healthy
from tests.integration.sentry.conftest import SentryProcess, run_sentry, sentry_configuration
from tests.k8s.cluster import KubeCluster

SIDECAR_IMAGE = "ghcr.io/dapr/daprd:1.18.3"
WEBHOOK = "dapr-sidecar-injector"
SELECTOR_LABEL = "daprplane-injector-test"
# Short-lived serving certificates: renewed about 6.5 s after issue.
SENTRY_CONFIG = sentry_configuration(workload_cert_ttl="12s", allowed_clock_skew="1s")
INJECTOR_USER = "daprplane-injector"
DAPR_INJECTOR_CLUSTER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1",
    "kind": "ClusterRole",
    "metadata": {"name": "daprplane-test-injector"},
    "rules": [
        {"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["get", "list"]},
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["mutatingwebhookconfigurations"],
            "verbs": ["patch"],
            "resourceNames": [WEBHOOK],
        },
        {"apiGroups": ["dapr.io"], "resources": ["components"], "verbs": ["get", "list"]},
        {"apiGroups": ["dapr.io"], "resources": ["configurations"], "verbs": ["get"]},
    ],
}


@dataclass
class Injector:
    process: subprocess.Popen[str]
    port: int
    healthz_port: int
    metrics_port: int
    namespace: str
    anchors_file: Path
    selector: str
    sentry: SentryProcess

    @property
    def server_name(self) -> str:
        return f"dapr-sidecar-injector.{self.namespace}.svc"

    def ssl_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=self.anchors_file.read_text())
        return context

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def apply(api: Any, path: str, body: dict[str, Any]) -> None:
    from kubernetes import client

    from tests.k8s.cluster import raw_request

    try:
        raw_request(api, "POST", path, body=body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


def delete(api: Any, path: str) -> None:
    from kubernetes import client

    from tests.k8s.cluster import raw_request

    with contextlib.suppress(client.ApiException):
        raw_request(api, "DELETE", path)


def register_webhook(api: Any, namespace: str, port: int, selector: str) -> None:
    apply(
        api,
        f"/api/v1/namespaces/{namespace}/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": WEBHOOK},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
    )
    apply(
        api,
        "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations",
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK},
            "webhooks": [
                {
                    "name": "sidecar-injector.dapr.io",
                    "clientConfig": {
                        "service": {
                            "namespace": namespace,
                            "name": WEBHOOK,
                            "path": "/mutate",
                            "port": port,
                        }
                    },
                    "rules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["pods"],
                        }
                    ],
                    "namespaceSelector": {"matchLabels": {SELECTOR_LABEL: selector}},
                    "failurePolicy": "Fail",
                    "sideEffects": "None",
                    "reinvocationPolicy": "IfNeeded",
                    "admissionReviewVersions": ["v1", "v1beta1"],
                }
            ],
        },
    )


def injector_kubeconfig(cluster: KubeCluster, api: Any) -> Path:
    apply(api, "/apis/rbac.authorization.k8s.io/v1/clusterroles", DAPR_INJECTOR_CLUSTER_ROLE)
    apply(
        api,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "daprplane-test-injector"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "daprplane-test-injector",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": INJECTOR_USER}
            ],
        },
    )
    return cluster.user_kubeconfig(INJECTOR_USER)


def injector_env(
    namespace: str, anchors: Path, sentry: SentryProcess, **extra: str
) -> dict[str, str]:
    return {
        "NAMESPACE": namespace,
        "SIDECAR_IMAGE": SIDECAR_IMAGE,
        "SIDECAR_IMAGE_PULL_POLICY": "IfNotPresent",
        "KUBE_CLUSTER_DOMAIN": "cluster.local",
        "DAPR_TRUST_ANCHORS_FILE": str(anchors),
        "DAPR_SENTRY_ADDRESS": sentry.address,
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
        "ALLOWED_SERVICE_ACCOUNTS": "*:builder-*",
        **extra,
    }


@contextlib.contextmanager
def run_injector(
    kubeconfig: Path, env: dict[str, str], port: int | None = None, log: Path | None = None
) -> Iterator[tuple[subprocess.Popen[str], int, int, int]]:
    """Start the launcher; its output is piped, or written to ``log`` for a long-lived process."""
    ports = LoopbackPorts(port=port or free_port())
    with started(
        "daprplane-injector", *ports.flags(), f"--kubeconfig={kubeconfig}", env=env, log=log
    ) as process:
        yield process, ports.port, ports.healthz, ports.metrics


@pytest.fixture(scope="module")
def injector(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Injector]:
    directory = tmp_path_factory.mktemp("injector")
    namespace = kube_cluster.create_namespace(f"dapr-cp-{secrets.token_hex(3)}")
    selector = secrets.token_hex(4)
    port = free_port()
    with kube_cluster.api_client() as api:
        register_webhook(api, namespace, port, selector)
        kubeconfig = injector_kubeconfig(kube_cluster, api)
        try:
            with run_sentry(
                directory / "sentry",
                "--trust-domain=cluster.local",
                env={"NAMESPACE": namespace},
                config=SENTRY_CONFIG,
            ) as sentry:
                anchors = directory / "anchors.pem"
                anchors.write_bytes(sentry.trust_anchors)
                env = injector_env(namespace, anchors, sentry)
                log = directory / "injector.log"
                with run_injector(kubeconfig, env, port, log) as (process, _, healthz, metrics):
                    wait_until_healthy(process, healthz, what="injector", output=log.read_text)
                    yield Injector(
                        process, port, healthz, metrics, namespace, anchors, selector, sentry
                    )
        finally:
            delete(
                api,
                f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{WEBHOOK}",
            )
            kube_cluster.delete_namespace(namespace)


@pytest.fixture
def app_namespace(injector: Injector, kube_namespace: str, kube_api: Any) -> str:
    """A fresh namespace the webhook applies to."""
    from kubernetes import client

    client.CoreV1Api(kube_api).patch_namespace(
        kube_namespace, {"metadata": {"labels": {SELECTOR_LABEL: injector.selector}}}
    )
    return kube_namespace


def ca_bundle(api: Any) -> bytes:
    from tests.k8s.cluster import raw_request

    path = f"/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/{WEBHOOK}"
    bundle = raw_request(api, "GET", path)["webhooks"][0]["clientConfig"].get("caBundle")
    return base64.b64decode(bundle) if bundle else b""
