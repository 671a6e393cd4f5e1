"""``daprplane up --kubeconfig`` against the real test API server.

All four components run here; the test then uses the cluster as a user would: an annotated Pod is
stored with daprd injected (the API server calls the local injector), the operator creates the
Deployment's ``<app-id>-dapr`` Service, and a sidecar token for the app gets an SVID from the local
sentry. Ctrl-C stops everything and removes the run's stand-in pods and webhook registration.
"""

from __future__ import annotations

import asyncio
import secrets
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helm.apply import ensure_crds
from tests.helm.loop_apps import (
    IDENTITY_VOLUME,
    containers_by_name,
    create_injected_pod,
    nodeapp_deployment,
    tracing_configuration,
)
from tests.helm.loop_pods import pod_from_template, pod_name
from tests.integration.launchers import free_port
from tests.integration.local.up_process import UpProcess, status_json, wait_dead
from tests.k8s.cluster import KubeCluster, raw_request

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

ROOT = Path(__file__).parents[3]
WEBHOOK = (
    "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations/dapr-sidecar-injector"
)
STAND_INS = "app.kubernetes.io/managed-by=daprplane-up"


def _exists(api: Any, path: str) -> bool:
    from kubernetes import client

    try:
        raw_request(api, "GET", path)
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def _wait(condition: Any, what: str, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := condition()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)
    return result


def _stand_ins(api: Any, namespace: str) -> list[dict[str, Any]]:
    listing = raw_request(
        api, "GET", f"/api/v1/namespaces/{namespace}/pods", query=[("labelSelector", STAND_INS)]
    )
    return list(listing["items"])


@pytest.fixture
def control_plane_namespace(kube_cluster: KubeCluster, kube_api: Any) -> Iterator[str]:
    ensure_crds(kube_api, ROOT / "deploy" / "crds")
    name = f"up-{secrets.token_hex(3)}"
    yield name
    kube_cluster.delete_namespace(name)


def _start(state: Path, kubeconfig: Path, namespace: str) -> UpProcess:
    return UpProcess.start(
        state,
        f"--kubeconfig={kubeconfig}",
        f"--namespace={namespace}",
        f"--operator-port={free_port()}",
        f"--injector-port={free_port()}",
    )


def test_up_runs_the_control_plane_for_a_cluster(
    kube_cluster: KubeCluster,
    kube_api: Any,
    kube_namespace: str,
    control_plane_namespace: str,
    tmp_path: Path,
) -> None:
    state = tmp_path / "state"
    up = _start(state, kube_cluster.kubeconfig, control_plane_namespace)
    try:
        up.wait_up()
        pids = up.child_pids()
        assert set(pids) == {"sentry", "placement", "operator", "injector"}
        stand_ins = _stand_ins(kube_api, control_plane_namespace)
        assert {pod["metadata"]["annotations"]["dapr.io/control-plane"] for pod in stand_ins} == {
            "placement",
            "operator",
            "injector",
        }
        assert all(pod["spec"]["schedulingGates"] for pod in stand_ins)
        anchors = (state / "cluster" / "ca.crt").read_text()
        published = raw_request(
            kube_api,
            "GET",
            f"/api/v1/namespaces/{control_plane_namespace}/configmaps/dapr-trust-bundle",
        )
        assert published["data"]["ca.crt"] == anchors

        # The API server reaches the local injector and stores the pod with daprd in it.
        raw_request(
            kube_api,
            "POST",
            f"/apis/dapr.io/v1alpha1/namespaces/{kube_namespace}/configurations",
            body=tracing_configuration(kube_namespace),
        )
        deployment = raw_request(
            kube_api,
            "POST",
            f"/apis/apps/v1/namespaces/{kube_namespace}/deployments",
            body=nodeapp_deployment(kube_namespace),
        )
        pod = create_injected_pod(kube_api, pod_from_template(deployment, pod_name(deployment)))
        daprd = containers_by_name(pod)["daprd"]
        assert f"dapr-sentry.{control_plane_namespace}.svc.cluster.local:443" in daprd["args"]
        environ = {entry["name"]: entry.get("value") for entry in daprd["env"]}
        assert environ["DAPR_TRUST_ANCHORS"].strip() == anchors.strip()
        assert any(volume["name"] == IDENTITY_VOLUME for volume in pod["spec"]["volumes"])
        app = containers_by_name(pod)["node"]
        app_environ = {entry["name"]: entry.get("value") for entry in app["env"]}
        assert (app_environ["DAPR_HTTP_PORT"], app_environ["DAPR_GRPC_PORT"]) == ("3500", "50001")

        # The operator creates the Deployment's Service.
        service_path = f"/api/v1/namespaces/{kube_namespace}/services/nodeapp-dapr"
        _wait(lambda: _exists(kube_api, service_path), "nodeapp-dapr")

        # A sidecar token for the app gets its identity from the local sentry.
        token = kube_cluster.service_account_token(
            kube_namespace,
            pod["spec"]["serviceAccountName"],
            audiences=[f"spiffe://cluster.local/ns/{control_plane_namespace}/dapr-sentry"],
            bound_object={
                "kind": "Pod",
                "apiVersion": "v1",
                "name": pod["metadata"]["name"],
                "uid": pod["metadata"]["uid"],
            },
            create=False,
        )
        svid = asyncio.run(
            _sign(up, tmp_path / "token", token, kube_namespace, control_plane_namespace, anchors)
        )
        assert svid == f"spiffe://public/ns/{kube_namespace}/nodeapp"

        code, report = status_json(state)
        assert code == 0, report
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, up.output()
    assert all(wait_dead(pid, timeout=1) for pid in pids.values())
    # What only made sense while up ran is gone; the CA stays in the namespace.
    assert _stand_ins(kube_api, control_plane_namespace) == []
    assert not _exists(kube_api, WEBHOOK)
    assert _exists(
        kube_api, f"/api/v1/namespaces/{control_plane_namespace}/secrets/dapr-trust-bundle"
    )


async def _sign(
    up: UpProcess, path: Path, token: str, namespace: str, control_plane: str, anchors: str
) -> str:
    from daprplane.core.security.anchors import StaticTrustAnchors
    from daprplane.core.security.sentry_client import SentryClient

    path.write_text(token)
    client = SentryClient(
        address=f"127.0.0.1:{up.sentry_port}",
        anchors=StaticTrustAnchors.from_pem(anchors.encode()),
        app_id="nodeapp",
        namespace=namespace,
        control_plane_trust_domain="cluster.local",
        control_plane_namespace=control_plane,
        kubernetes_mode=True,
        environ={"DAPR_SENTRY_TOKEN_FILE": str(path)},
    )
    return str((await client.sign()).spiffe_id)


def test_up_refuses_a_namespace_with_an_installed_control_plane(
    kube_cluster: KubeCluster, kube_api: Any, control_plane_namespace: str, tmp_path: Path
) -> None:
    kube_cluster.create_namespace(control_plane_namespace)
    deployment = nodeapp_deployment(control_plane_namespace)
    deployment["metadata"]["name"] = "dapr-sentry"
    raw_request(
        kube_api,
        "POST",
        f"/apis/apps/v1/namespaces/{control_plane_namespace}/deployments",
        body=deployment,
    )
    up = _start(tmp_path / "state", kube_cluster.kubeconfig, control_plane_namespace)
    assert up.popen.wait(timeout=60) == 1
    assert (
        f"a control plane is installed in namespace {control_plane_namespace} "
        "(Deployment dapr-sentry)" in up.output()
    )
    assert _stand_ins(kube_api, control_plane_namespace) == []
