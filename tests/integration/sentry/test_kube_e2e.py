"""``daprplane-sentry --mode kubernetes`` as a process against the real API server."""

from __future__ import annotations

import base64
import datetime
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.security import spiffe
from daprplane.plugins.sentry import images
from tests.integration.launchers import LoopbackPorts, run, started_healthy
from tests.integration.sentry.client import ca_stub
from tests.integration.sentry.test_kube_validator import (
    create_configuration,
    create_pod,
    token_for,
)
from tests.k8s.cluster import KubeCluster
from tests.k8s.helpers import install_crds
from tests.pki import csr_pem

pytestmark = pytest.mark.k8s

CRDS = Path(__file__).resolve().parents[3] / "deploy" / "crds" / "configuration.yaml"
NAME = "dapr-trust-bundle"


@pytest.fixture(scope="module")
def crds(kube_cluster: KubeCluster) -> None:
    with kube_cluster.api_client() as api:
        install_crds(api, [CRDS])


@pytest.fixture
def control_plane(kube_cluster: KubeCluster, kube_api: Any, crds: None) -> Iterator[str]:
    """A control-plane namespace as the Dapr chart leaves it: empty trust bundle objects and the
    ``daprsystem`` Configuration."""
    namespace = kube_cluster.create_namespace(prefix="dapr-system-")
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_secret(namespace, {"metadata": {"name": NAME}})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": NAME}})
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "dapr.io",
        "v1alpha1",
        namespace,
        "configurations",
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "daprsystem"},
            "spec": {"mtls": {"enabled": True, "workloadCertTTL": "2h", "allowedClockSkew": "1m"}},
        },
    )
    yield namespace
    kube_cluster.delete_namespace(namespace)


def environment(
    cluster: KubeCluster, namespace: str | None, skip_root_check: bool = True
) -> dict[str, str]:
    env = {"KUBECONFIG": str(cluster.kubeconfig)}
    if namespace is not None:
        env["NAMESPACE"] = namespace
    if skip_root_check:
        env["DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK"] = "true"
    return env


def sentry_args(ports: LoopbackPorts) -> list[str]:
    return ["--mode=kubernetes", *ports.flags()]


def test_issues_a_certificate_for_a_real_pod(
    kube_cluster: KubeCluster, kube_api: Any, kube_namespace: str, control_plane: str
) -> None:
    create_configuration(kube_api, kube_namespace, "appconfig", "example.org")
    pod = create_pod(
        kube_api,
        kube_namespace,
        "app-pod",
        "app-sa",
        {"dapr.io/app-id": "myapp", "dapr.io/config": "appconfig"},
    )
    token = token_for(kube_cluster, pod, [f"spiffe://localhost/ns/{control_plane}/dapr-sentry"])
    ports = LoopbackPorts()
    with started_healthy(
        "daprplane-sentry",
        *sentry_args(ports),
        healthz_port=ports.healthz,
        env=environment(kube_cluster, control_plane),
    ) as process:
        configmap = client.CoreV1Api(kube_api).read_namespaced_config_map(NAME, control_plane)
        anchors = configmap.data["ca.crt"].encode()
        secret = client.CoreV1Api(kube_api).read_namespaced_secret(NAME, control_plane)
        assert base64.b64decode(secret.data["ca.crt"]) == anchors

        csr = csr_pem()  # an Ed25519 key, as daprd's
        sentry_id = f"spiffe://localhost/ns/{control_plane}/dapr-sentry"
        with ca_stub(ports.port, anchors, sentry_id) as (stub, _proxy):
            response = stub.SignCertificate(
                sentry_pb2.SignCertificateRequest(
                    id="myapp",
                    namespace=kube_namespace,
                    token=token,
                    certificate_signing_request=csr,
                    token_validator=sentry_pb2.SignCertificateRequest.KUBERNETES,
                ),
                timeout=10,
            )
        leaf, issuer = x509.load_pem_x509_certificates(response.workload_certificate)
        (root,) = x509.load_pem_x509_certificates(anchors)
        leaf.verify_directly_issued_by(issuer)
        issuer.verify_directly_issued_by(root)
        assert (
            str(spiffe.from_certificate(leaf)) == f"spiffe://example.org/ns/{kube_namespace}/myapp"
        )
        assert leaf.not_valid_after_utc - leaf.not_valid_before_utc == datetime.timedelta(
            hours=2, minutes=1
        )
        assert images.parse_images_extension(leaf) == [
            {"role": "daprd", "containerName": "daprd", "image": "ghcr.io/dapr/daprd:1.18.0"},
            {"role": "app", "containerName": "app", "image": "example/app:1"},
        ]
    assert process.returncode is not None


def test_secret_change_is_served_within_seconds(
    kube_cluster: KubeCluster, kube_api: Any, control_plane: str
) -> None:
    from daprplane.plugins.sentry.ca import bundle as bundle_mod
    from tests.integration.sentry.client import handshake

    ports = LoopbackPorts()
    with started_healthy(
        "daprplane-sentry",
        *sentry_args(ports),
        healthz_port=ports.healthz,
        env=environment(kube_cluster, control_plane),
    ):
        own = bundle_mod.generate("localhost", control_plane, datetime.timedelta(minutes=1))
        core = client.CoreV1Api(kube_api)
        core.patch_namespaced_config_map(
            NAME, control_plane, {"data": {"ca.crt": own.trust_anchors_pem.decode()}}
        )
        core.patch_namespaced_secret(
            NAME,
            control_plane,
            {
                "data": {
                    "ca.crt": base64.b64encode(own.trust_anchors_pem).decode(),
                    "issuer.crt": base64.b64encode(own.issuer_chain_pem).decode(),
                    "issuer.key": base64.b64encode(own.issuer_key_pem).decode(),
                }
            },
        )
        deadline = time.monotonic() + 4
        while True:
            try:
                handshake(ports.port, own.trust_anchors_pem)
                break
            except ssl.SSLError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


def test_missing_configuration_is_fatal(
    kube_cluster: KubeCluster, kube_namespace: str, crds: None
) -> None:
    result = run(
        "daprplane-sentry",
        *sentry_args(LoopbackPorts()),
        env=environment(kube_cluster, kube_namespace),
    )
    assert result.returncode == 1
    logged = (result.stdout + result.stderr).replace('\\"', '"')  # logfmt escapes quotes
    assert (
        'loading default config. couldn\'t find config name "daprsystem": config CRD not found'
        in logged
    )


def test_namespace_is_required(kube_cluster: KubeCluster) -> None:
    result = run(
        "daprplane-sentry",
        *sentry_args(LoopbackPorts()),
        env=environment(kube_cluster, None),
    )
    assert result.returncode == 1
    assert "'NAMESPACE' environment variable not set" in result.stdout + result.stderr


@pytest.mark.skipif(
    not hasattr(__import__("os"), "geteuid") or __import__("os").geteuid() != 0,
    reason="only meaningful when the tests run as root",
)
def test_refuses_to_run_as_root(kube_cluster: KubeCluster, control_plane: str) -> None:
    result = run(
        "daprplane-sentry",
        *sentry_args(LoopbackPorts()),
        env=environment(kube_cluster, control_plane, skip_root_check=False),
        timeout=10,
    )
    assert result.returncode == 1
    assert "current user UID(0) is root. Dapr must be run as a non-root user" in (
        result.stdout + result.stderr
    )
