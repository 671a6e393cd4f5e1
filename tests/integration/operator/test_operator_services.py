"""The leader's Service reconciler against the real API server: ``<app-id>-dapr`` for
Deployments and StatefulSets, updates only when something changed, invalid app IDs reported."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.integration.operator.conftest import Operator
from tests.k8s.cluster import raw_request
from tests.k8s.helpers import wait_for

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def workload(kind: str, name: str, annotations: dict[str, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "replicas": 1,
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}]},
        },
    }
    if kind == "statefulsets":
        spec["serviceName"] = name
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment" if kind == "deployments" else "StatefulSet",
        "metadata": {"name": name},
        "spec": spec,
    }


def create(api: Any, namespace: str, kind: str, body: dict[str, Any]) -> dict[str, Any]:
    created: dict[str, Any] = raw_request(
        api, "POST", f"/apis/apps/v1/namespaces/{namespace}/{kind}", body=body
    )
    return created


def service(api: Any, namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes import client

    try:
        found: dict[str, Any] = raw_request(
            api, "GET", f"/api/v1/namespaces/{namespace}/services/{name}"
        )
    except client.ApiException as error:
        if error.status == 404:
            return None
        raise
    return found


@pytest.mark.parametrize("kind", ["deployments", "statefulsets"])
def test_service_for_dapr_workload(
    operator: Operator, kube_namespace: str, kube_api: Any, kind: str
) -> None:
    owner = create(
        kube_api,
        kube_namespace,
        kind,
        workload(
            kind,
            "checkout",
            {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "checkout",
                "dapr.io/grpc-port": "51001",
                "dapr.io/sidecar-svc-annotations": "team=payments, dapr.io/app-id=spoofed",
            },
        ),
    )
    created = wait_for(
        lambda: service(kube_api, kube_namespace, "checkout-dapr"), message="checkout-dapr"
    )
    assert created["metadata"]["labels"] == {"dapr.io/enabled": "true"}
    annotations = created["metadata"]["annotations"]
    assert annotations["dapr.io/app-id"] == "checkout"
    assert annotations["team"] == "payments"
    assert annotations["prometheus.io/scrape"] == "true"
    reference = created["metadata"]["ownerReferences"][0]
    assert (reference["kind"], reference["name"], reference["uid"]) == (
        owner["kind"],
        "checkout",
        owner["metadata"]["uid"],
    )
    assert reference["controller"] is True
    spec = created["spec"]
    assert spec["clusterIP"] == "None"
    assert spec["selector"] == {"app": "checkout"}
    ports = [(p["name"], p["port"], p["targetPort"], p.get("appProtocol")) for p in spec["ports"]]
    assert ports == [
        ("dapr-http", 80, 3500, "http"),
        ("dapr-grpc", 51001, 51001, "grpc"),
        ("dapr-internal", 50002, 50002, "tls"),
        ("dapr-metrics", 9090, 9090, "http"),
    ]


def test_unchanged_service_is_not_rewritten_and_drift_is_repaired(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    annotations = {"dapr.io/enabled": "true", "dapr.io/app-id": "cart"}
    create(kube_api, kube_namespace, "deployments", workload("deployments", "cart", annotations))
    first = wait_for(lambda: service(kube_api, kube_namespace, "cart-dapr"), message="cart-dapr")
    updated = 'dapr_operator_service_updated_total{app_id="cart"}'

    # A change to the workload that does not touch its Service: nothing is written.
    path = f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/cart"
    raw_request(
        kube_api,
        "PATCH",
        path,
        body={"metadata": {"labels": {"touched": "yes"}}},
        content_type="application/merge-patch+json",
    )
    time.sleep(2)
    again = service(kube_api, kube_namespace, "cart-dapr")
    assert again is not None
    assert again["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    assert operator.metrics().get(updated, 0) == 0

    # Someone edits the Service: the operator puts its ports back.
    again["spec"]["ports"][0]["port"] = 8080
    raw_request(
        kube_api, "PUT", f"/api/v1/namespaces/{kube_namespace}/services/cart-dapr", body=again
    )

    def repaired() -> bool:
        current = service(kube_api, kube_namespace, "cart-dapr")
        return current is not None and current["spec"]["ports"][0]["port"] == 80

    wait_for(repaired, message="the Service repaired")
    assert operator.metrics()[updated] >= 1

    # A new app ID gets its own Service; the old one stays (Dapr never deletes).
    raw_request(
        kube_api,
        "PATCH",
        path,
        body={"spec": {"template": {"metadata": {"annotations": {"dapr.io/app-id": "cart2"}}}}},
        content_type="application/merge-patch+json",
    )
    wait_for(lambda: service(kube_api, kube_namespace, "cart2-dapr"), message="cart2-dapr")
    assert service(kube_api, kube_namespace, "cart-dapr") is not None


def test_workload_without_dapr_gets_no_service(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    create(kube_api, kube_namespace, "deployments", workload("deployments", "plain", {}))
    disabled = {"dapr.io/enabled": "false", "dapr.io/app-id": "off"}
    create(kube_api, kube_namespace, "deployments", workload("deployments", "off", disabled))
    # A Dapr workload created afterwards is reconciled: the earlier ones were seen by then.
    enabled = {"dapr.io/enabled": "true", "dapr.io/app-id": "marker"}
    create(kube_api, kube_namespace, "deployments", workload("deployments", "marker", enabled))
    wait_for(lambda: service(kube_api, kube_namespace, "marker-dapr"), message="marker-dapr")
    listed = raw_request(kube_api, "GET", f"/api/v1/namespaces/{kube_namespace}/services")
    assert [s["metadata"]["name"] for s in listed["items"]] == ["marker-dapr"]


def test_invalid_app_id_is_reported_as_an_event(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    annotations = {"dapr.io/enabled": "true", "dapr.io/app-id": "Not_Valid"}
    create(kube_api, kube_namespace, "deployments", workload("deployments", "bad", annotations))

    def warning() -> list[dict[str, Any]]:
        events = raw_request(kube_api, "GET", f"/api/v1/namespaces/{kube_namespace}/events")
        return [e for e in events["items"] if e["involvedObject"]["name"] == "bad"]

    events = wait_for(warning, message="a Warning event")
    assert events[0]["type"] == "Warning"
    assert "Not_Valid" in events[0]["message"]
    assert "Not_Valid" in operator.output()
    listed = raw_request(kube_api, "GET", f"/api/v1/namespaces/{kube_namespace}/services")
    assert listed["items"] == []
