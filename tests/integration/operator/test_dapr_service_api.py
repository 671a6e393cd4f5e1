"""The ``<app-id>-dapr`` Service against a real API server.

The API server is the judge of what the Service builder produces: it must accept the Service as
built, return it unchanged in everything the operator sets (so the drift check sees no
difference), and accept the replace the operator sends when the workload changes. It also
checks the builder's own validation (app IDs, annotation keys) against Kubernetes' rules.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubernetes.client.exceptions import ApiException

from daprplane.plugins.operator.dapr_service import (
    InvalidAppId,
    desired_service,
    service_annotations,
    service_differs,
    updated_service,
    validate_app_id,
)
from tests.k8s.cluster import raw_request

pytestmark = pytest.mark.k8s

_FIXTURE_REUSE = settings(
    max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments"


def services(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/services"


def deployment(annotations: dict[str, str], name: str = "checkout-web") -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 1,
            "selector": {
                "matchLabels": {"app": "checkout"},
                "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
            },
            "template": {
                "metadata": {
                    "labels": {"app": "checkout", "env": "prod"},
                    "annotations": annotations,
                },
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/checkout:1"}]},
            },
        },
    }


def local_deployment(annotations: dict[str, str], namespace: str) -> dict[str, Any]:
    """A Deployment as if read back from the API server, without creating it."""
    workload = deployment(annotations)
    workload["metadata"].update(namespace=namespace, uid="4f1c0a52-0000-4000-8000-000000000001")
    return workload


def build(workload: dict[str, Any], mtls: bool = True) -> dict[str, Any]:
    return desired_service(workload, kind="Deployment", api_version="apps/v1", mtls_enabled=mtls)


def rejection(api: Any, namespace: str, service: dict[str, Any]) -> str | None:
    """The API server's complaint about ``service`` (a dry-run create), or None if accepted."""
    try:
        raw_request(api, "POST", services(namespace), body=service, query=[("dryRun", "All")])
    except ApiException as error:
        assert error.status == 422, error.body
        return str(json.loads(error.body or "{}")["message"])
    return None


def assert_kept(live: dict[str, Any], desired: dict[str, Any]) -> None:
    """Everything ``desired`` sets is in ``live`` with the same value."""
    for field in ("name", "namespace", "labels", "annotations", "ownerReferences"):
        assert live["metadata"][field] == desired["metadata"][field], field
    assert live["spec"]["selector"] == desired["spec"]["selector"]
    assert live["spec"]["clusterIP"] == "None"
    assert len(live["spec"]["ports"]) == len(desired["spec"]["ports"])
    for got, want in zip(live["spec"]["ports"], desired["spec"]["ports"], strict=True):
        assert {k: got.get(k) for k in want} == want


def test_create_read_and_replace(kube_api: Any, kube_namespace: str) -> None:
    annotations = {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "checkout",
        "dapr.io/sidecar-svc-annotations": "team=payments,example.com/tier=web",
    }
    owner = raw_request(kube_api, "POST", deployments(kube_namespace), body=deployment(annotations))
    desired = build(owner)
    assert desired["metadata"]["ownerReferences"][0]["uid"] == owner["metadata"]["uid"]

    created = raw_request(kube_api, "POST", services(kube_namespace), body=desired)
    assert_kept(created, desired)
    live = raw_request(kube_api, "GET", f"{services(kube_namespace)}/checkout-dapr")
    assert_kept(live, desired)
    # The API server filled in its defaults, and they are not a difference.
    assert live["spec"]["clusterIPs"] == ["None"]
    assert live["spec"]["type"] == "ClusterIP"
    assert not service_differs(live, desired)
    assert not service_differs(live, build(owner))

    # New ports, no metrics, one extra annotation less: the Service must be replaced.
    patch = {
        "spec": {
            "template": {
                "metadata": {
                    "annotations": {
                        "dapr.io/grpc-port": "40001",
                        "dapr.io/internal-grpc-port": "40002",
                        "dapr.io/enable-metrics": "false",
                        "dapr.io/sidecar-svc-annotations": "team=payments",
                    }
                }
            }
        }
    }
    owner = raw_request(
        kube_api,
        "PATCH",
        f"{deployments(kube_namespace)}/checkout-web",
        body=patch,
        content_type="application/merge-patch+json",
    )
    changed = build(owner, mtls=False)
    assert service_differs(live, changed)

    replaced = raw_request(
        kube_api,
        "PUT",
        f"{services(kube_namespace)}/checkout-dapr",
        body=updated_service(live, changed),
    )
    assert replaced["metadata"]["resourceVersion"] != live["metadata"]["resourceVersion"]
    assert replaced["metadata"]["uid"] == live["metadata"]["uid"]
    assert_kept(replaced, changed)
    assert replaced["metadata"]["annotations"] == {
        "dapr.io/app-id": "checkout",
        "team": "payments",
    }
    assert [(p["name"], p["port"], p["appProtocol"]) for p in replaced["spec"]["ports"]] == [
        ("dapr-http", 80, "http"),
        ("dapr-grpc", 40001, "grpc"),
        ("dapr-internal", 40002, "grpc"),
        ("dapr-metrics", 9090, "http"),
    ]
    live = raw_request(kube_api, "GET", f"{services(kube_namespace)}/checkout-dapr")
    assert not service_differs(live, changed)


def test_replace_drops_foreign_labels_and_keeps_allocations(
    kube_api: Any, kube_namespace: str
) -> None:
    owner = raw_request(
        kube_api,
        "POST",
        deployments(kube_namespace),
        body=deployment({"dapr.io/enabled": "true", "dapr.io/app-id": "orders"}),
    )
    desired = build(owner)
    raw_request(kube_api, "POST", services(kube_namespace), body=desired)
    live = raw_request(
        kube_api,
        "PATCH",
        f"{services(kube_namespace)}/orders-dapr",
        body={"metadata": {"labels": {"team": "payments"}, "annotations": {"stale": "x"}}},
        content_type="application/merge-patch+json",
    )
    assert live["metadata"]["labels"]["team"] == "payments"
    assert service_differs(live, desired)  # the stray annotation

    replaced = raw_request(
        kube_api,
        "PUT",
        f"{services(kube_namespace)}/orders-dapr",
        body=updated_service(live, desired),
    )
    assert "team" not in replaced["metadata"]["labels"]
    assert "stale" not in replaced["metadata"]["annotations"]
    for field in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert replaced["spec"][field] == live["spec"][field]
    assert not service_differs(replaced, desired)


def test_replace_without_allocations_is_also_accepted(kube_api: Any, kube_namespace: str) -> None:
    """A headless Service can be replaced by the bare desired object: the API server restores
    the allocated fields itself. ``updated_service`` still restates them, which costs nothing."""
    owner = raw_request(
        kube_api,
        "POST",
        deployments(kube_namespace),
        body=deployment({"dapr.io/enabled": "true", "dapr.io/app-id": "bare"}),
    )
    desired = build(owner)
    live = raw_request(kube_api, "POST", services(kube_namespace), body=desired)
    body = dict(desired, metadata=dict(desired["metadata"]))
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    replaced = raw_request(kube_api, "PUT", f"{services(kube_namespace)}/bare-dapr", body=body)
    for field in ("clusterIPs", "ipFamilies", "ipFamilyPolicy"):
        assert replaced["spec"][field] == live["spec"][field]


def test_ports_go_would_parse_make_an_invalid_service(kube_api: Any, kube_namespace: str) -> None:
    """Why out-of-range port annotations fall back to the default instead of passing through."""
    service = build(local_deployment({"dapr.io/app-id": "ports"}, kube_namespace))
    for value in (0, -1, 65536):
        broken = json.loads(json.dumps(service))
        broken["spec"]["ports"][1]["port"] = value
        broken["spec"]["ports"][1]["targetPort"] = value
        message = rejection(kube_api, kube_namespace, broken)
        assert message is not None and "spec.ports[1]" in message
    for text in ("0", "-1", "65536"):
        annotations = {"dapr.io/app-id": "ports", "dapr.io/grpc-port": text}
        fallback = build(local_deployment(annotations, kube_namespace))
        assert rejection(kube_api, kube_namespace, fallback) is None


def test_colliding_port_annotations_are_refused(kube_api: Any, kube_namespace: str) -> None:
    annotations = {"dapr.io/app-id": "clash", "dapr.io/grpc-port": "80"}
    message = rejection(
        kube_api, kube_namespace, build(local_deployment(annotations, kube_namespace))
    )
    assert message is not None and "spec.ports[1]: Duplicate value" in message


_APP_IDS = [
    "a",
    "checkout",
    "x--y",
    "9lives",
    "a" * 58,
    "a" * 59,
    "a" * 70,
    "Checkout",
    "check_out",
    "check.out",
    "a.b.c",
    "a..b",
    "é",
    "a" * 55 + ".bc",
    "-lead",
    "trail-",
    "A" * 60,
]


@pytest.mark.parametrize("app_id", _APP_IDS)
def test_app_id_check_agrees_with_the_api_server(
    kube_api: Any, kube_namespace: str, app_id: str
) -> None:
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": f"{app_id}-dapr"},
        "spec": {"clusterIP": "None", "ports": [{"name": "x", "port": 80}]},
    }
    refused = rejection(kube_api, kube_namespace, service)
    try:
        validate_app_id(app_id)
    except InvalidAppId as error:
        assert refused is not None
        # Each rule we quote is a rule the API server quotes, word for word.
        for problem in str(error).split("): ", 1)[1].split("; "):
            assert problem in refused
    else:
        assert refused is None


_KEYS = st.text(alphabet="aZ09-_./", min_size=1, max_size=12) | st.sampled_from(
    ["x" * 63, "x" * 64, "a" * 254 + "/b", "a" * 253 + "/b", "Example.COM/Key", "A/b", "é"]
)


@_FIXTURE_REUSE
@given(key=_KEYS)
def test_annotation_key_check_agrees_with_the_api_server(
    kube_api: Any, kube_namespace: str, key: str
) -> None:
    kept = key in service_annotations(
        {"dapr.io/app-id": "a", "dapr.io/sidecar-svc-annotations": f"{key}=v"}
    )
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "keys-dapr", "annotations": {key: "v"}},
        "spec": {"clusterIP": "None", "ports": [{"name": "x", "port": 80}]},
    }
    assert kept == (rejection(kube_api, kube_namespace, service) is None)


_PORT_VALUES = st.one_of(
    st.integers(-70000, 140000).map(str),
    st.sampled_from(["", "x", "80", "3500", "50001", "50002", "9090", "0", "+65535"]),
)
_ANNOTATIONS = st.fixed_dictionaries(
    {"dapr.io/app-id": st.sampled_from(["checkout", "a" * 58, "Bad", "a" * 59])},
    optional={
        "dapr.io/grpc-port": _PORT_VALUES,
        "dapr.io/internal-grpc-port": _PORT_VALUES,
        "dapr.io/metrics-port": _PORT_VALUES,
        "dapr.io/enable-metrics": st.sampled_from(["true", "false", "", "junk"]),
        "dapr.io/sidecar-svc-annotations": st.lists(
            st.tuples(st.text(alphabet="ab./-_ =", max_size=8), st.text(max_size=6)).map("=".join),
            max_size=4,
        ).map(",".join),
    },
)


@_FIXTURE_REUSE
@given(annotations=_ANNOTATIONS, mtls=st.booleans())
def test_the_api_server_accepts_every_service_built(
    kube_api: Any, kube_namespace: str, annotations: dict[str, str], mtls: bool
) -> None:
    try:
        service = build(local_deployment(annotations, kube_namespace), mtls)
    except InvalidAppId:
        return
    message = rejection(kube_api, kube_namespace, service)
    numbers = [p["port"] for p in service["spec"]["ports"]]
    if len(set(numbers)) == len(numbers):
        assert message is None
    else:
        # Two annotations naming the same port: a Service cannot publish it twice.
        assert message is not None and "Duplicate value" in message


def test_a_service_with_a_cluster_ip_cannot_be_made_headless(
    kube_api: Any, kube_namespace: str
) -> None:
    """The one drift a replace cannot repair: an allocated cluster IP is immutable.

    The replace leaves the old addresses out, so the refusal names only the real problem.
    """
    owner = raw_request(
        kube_api,
        "POST",
        deployments(kube_namespace),
        body=deployment({"dapr.io/enabled": "true", "dapr.io/app-id": "legacy"}),
    )
    desired = build(owner)
    squatter = json.loads(json.dumps(desired))
    del squatter["spec"]["clusterIP"]
    live = raw_request(kube_api, "POST", services(kube_namespace), body=squatter)
    assert live["spec"]["clusterIP"] not in ("", "None")
    assert service_differs(live, desired)

    body = updated_service(live, desired)
    assert "clusterIPs" not in body["spec"]
    with pytest.raises(ApiException) as caught:
        raw_request(kube_api, "PUT", f"{services(kube_namespace)}/legacy-dapr", body=body)
    assert caught.value.status == 422
    message = json.loads(caught.value.body or "{}")["message"]
    assert 'spec.clusterIPs[0]: Invalid value: ["None"]: may not change once set' in message
    assert live["spec"]["clusterIP"] not in message
