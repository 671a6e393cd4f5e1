"""The watchdog (``--watch-interval``) against the real API server: Dapr pods that started
without their sidecar are deleted once the injector is ready; the others are left alone, and
with ``--watchdog-can-patch-pod-labels`` those with a sidecar are labelled."""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.operator.conftest import ControlPlane, run_operator
from tests.k8s.cluster import raw_request
from tests.k8s.helpers import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def pod(name: str, containers: list[str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations},
        "spec": {"containers": [{"name": c, "image": "registry.invalid/x:1"} for c in containers]},
    }


def injector_deployment(api: Any, namespace: str, ready: int) -> None:
    path = f"/apis/apps/v1/namespaces/{namespace}/deployments"
    body = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "dapr-sidecar-injector", "labels": {"app": "dapr-sidecar-injector"}},
        "spec": {
            "selector": {"matchLabels": {"app": "dapr-sidecar-injector"}},
            "template": {
                "metadata": {"labels": {"app": "dapr-sidecar-injector"}},
                "spec": {"containers": [{"name": "injector", "image": "registry.invalid/i:1"}]},
            },
        },
    }
    created = raw_request(api, "POST", path, body=body)
    # No controller-manager runs here: the test sets the status a real one would report.
    created["status"] = {"replicas": 1, "readyReplicas": ready}
    raw_request(api, "PUT", f"{path}/dapr-sidecar-injector/status", body=created)


def pod_names(api: Any, namespace: str) -> set[str]:
    listed = raw_request(api, "GET", f"/api/v1/namespaces/{namespace}/pods")
    return {item["metadata"]["name"] for item in listed["items"]}


def test_watchdog_deletes_pods_missing_their_sidecar(
    control_plane: ControlPlane, kube_namespace: str, kube_api: Any
) -> None:
    enabled = {"dapr.io/enabled": "true", "dapr.io/app-id": "app"}
    pods = f"/api/v1/namespaces/{kube_namespace}/pods"
    raw_request(kube_api, "POST", pods, body=pod("orphan", ["app"], enabled))
    raw_request(kube_api, "POST", pods, body=pod("injected", ["app", "daprd"], enabled))
    raw_request(kube_api, "POST", pods, body=pod("plain", ["app"], {}))
    injector_deployment(kube_api, kube_namespace, ready=1)
    with run_operator(
        control_plane,
        "--watch-interval=once",
        f"--watch-namespace={kube_namespace}",
        "--watchdog-can-patch-pod-labels",
        "--disable-leader-election",
        "--disable-service-reconciler",
        env={"ENABLE_WEBHOOKS": "false"},
    ) as operator:
        wait_for(lambda: "orphan" not in pod_names(kube_api, kube_namespace), message="deletion")
        assert pod_names(kube_api, kube_namespace) == {"injected", "plain"}

        def labelled() -> bool:
            injected = raw_request(kube_api, "GET", f"{pods}/injected")
            labels = injected["metadata"].get("labels") or {}
            return labels.get("dapr.io/watchdog-patched") == "true"

        wait_for(labelled, message="the watchdog label")
        plain = raw_request(kube_api, "GET", f"{pods}/plain")
        assert "dapr.io/watchdog-patched" not in (plain["metadata"].get("labels") or {})
        assert "Deleted pod" in operator.output()
        assert operator.stop() == 0
