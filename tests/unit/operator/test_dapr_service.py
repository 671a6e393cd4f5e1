"""The ``<app-id>-dapr`` Service: its exact shape, the annotation rules, and when to rewrite it."""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.operator import dapr_service
from daprplane.plugins.operator.dapr_service import (
    InvalidAppId,
    desired_service,
    is_truthy,
    service_annotations,
    service_differs,
    template_annotations,
    updated_service,
    validate_app_id,
    wants_service,
)

UID = "0b6e8d4c-5a51-4d8e-9d3c-2f1f4b1e7a10"
RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
PROMETHEUS = {
    "prometheus.io/probe": "true",
    "prometheus.io/scrape": "true",
    "prometheus.io/port": "9090",
    "prometheus.io/path": "/",
}


def workload(
    annotations: dict[str, Any] | None = None,
    *,
    selector: dict[str, Any] | None = None,
    **metadata: Any,
) -> dict[str, Any]:
    """A Deployment as the API server returns it, with a Dapr-enabled pod template."""
    template_annotations = {"dapr.io/enabled": "true", "dapr.io/app-id": "checkout"}
    template_annotations.update(annotations or {})
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "checkout-web", "namespace": "shop", "uid": UID, **metadata},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "checkout"}} if selector is None else selector,
            "template": {
                "metadata": {"labels": {"app": "checkout"}, "annotations": template_annotations},
                "spec": {"containers": [{"name": "app", "image": "shop/checkout:1"}]},
            },
        },
    }


def build(annotations: dict[str, Any] | None = None, **kwargs: Any) -> dict[str, Any]:
    return desired_service(
        workload(annotations, **kwargs), kind="Deployment", api_version="apps/v1", mtls_enabled=True
    )


def ports(service: dict[str, Any]) -> dict[str, tuple[int, int, str]]:
    return {
        p["name"]: (p["port"], p["targetPort"], p["appProtocol"]) for p in service["spec"]["ports"]
    }


# --- truthiness ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["y", "Y", "yes", "YES", "true", "True", "t", "T", "on", "ON", "1", " true ", "\tOn\n"]
)
def test_truthy_values(value: str) -> None:
    assert is_truthy(value)


@pytest.mark.parametrize(
    "value", [None, "", " ", "no", "false", "0", "2", "yess", "truee", "enabled", "t r u e"]
)
def test_falsy_values(value: str | None) -> None:
    assert not is_truthy(value)


def test_truthy_trims_unicode_white_space_as_go_does() -> None:
    assert is_truthy("\u00a0yes\u3000")
    assert is_truthy("\x85on\u2028")
    # File/group/record/unit separators are not White_Space in Go, though Python strips them.
    assert not is_truthy("\x1ctrue")
    assert not is_truthy("true\x1f")


# --- app ID ----------------------------------------------------------------------------------


def test_empty_app_id() -> None:
    with pytest.raises(InvalidAppId) as caught:
        validate_app_id("")
    assert str(caught.value) == "value for the dapr.io/app-id annotation is empty"


def test_invalid_app_id_is_a_value_error() -> None:
    assert issubclass(InvalidAppId, ValueError)


@pytest.mark.parametrize("app_id", ["a", "0", "checkout", "order-processor", "x--y", "9lives"])
def test_valid_app_ids(app_id: str) -> None:
    validate_app_id(app_id)


def test_58_characters_is_the_longest_app_id() -> None:
    validate_app_id("a" * 58)  # "<58>-dapr" is 63 characters
    with pytest.raises(InvalidAppId) as caught:
        validate_app_id("a" * 59)
    service = "a" * 59 + "-dapr"
    assert str(caught.value) == (
        f"invalid app id (input: '{'a' * 59}', service: '{service}'): "
        "must be no more than 63 characters"
    )


@pytest.mark.parametrize(
    "app_id", ["Checkout", "check_out", "-checkout", "check out", "chéckout", "a/b", "a..b"]
)
def test_app_id_must_make_a_dns_label(app_id: str) -> None:
    with pytest.raises(InvalidAppId) as caught:
        validate_app_id(app_id)
    assert (
        str(caught.value) == f"invalid app id (input: '{app_id}', service: '{app_id}-dapr'): {RULE}"
    )


@pytest.mark.parametrize("app_id", ["check.out", "a.b.c", "v1.2"])
def test_dotted_app_id(app_id: str) -> None:
    # A valid DNS subdomain that is no label: Kubernetes says what is wrong in plain words.
    with pytest.raises(InvalidAppId) as caught:
        validate_app_id(app_id)
    assert str(caught.value) == (
        f"invalid app id (input: '{app_id}', service: '{app_id}-dapr'): must not contain dots"
    )


def test_app_id_breaking_both_rules_names_both() -> None:
    app_id = "A" * 60
    with pytest.raises(InvalidAppId) as caught:
        validate_app_id(app_id)
    assert str(caught.value) == (
        f"invalid app id (input: '{app_id}', service: '{app_id}-dapr'): "
        f"must be no more than 63 characters; {RULE}"
    )


def test_length_counts_bytes() -> None:
    # Kubernetes measures names in bytes; a multi-byte app ID also breaks the character rule.
    with pytest.raises(InvalidAppId, match="no more than 63 characters"):
        validate_app_id("é" * 30)


# --- reading the workload --------------------------------------------------------------------


def test_template_annotations() -> None:
    assert template_annotations(workload({"a": "b"})) == {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "checkout",
        "a": "b",
    }


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"spec": None},
        {"spec": []},
        {"spec": {"template": "x"}},
        {"spec": {"template": {"metadata": None}}},
        {"spec": {"template": {"metadata": {"annotations": ["dapr.io/enabled"]}}}},
        {"spec": {"template": {"metadata": {"annotations": {"dapr.io/enabled": True}}}}},
        [],
        None,
    ],
)
def test_template_annotations_tolerate_missing_and_ill_typed_parts(value: Any) -> None:
    assert template_annotations(value) == {}


def test_template_annotations_keep_only_strings() -> None:
    obj = workload({"dapr.io/grpc-port": 50005, "ok": "yes"})
    assert template_annotations(obj) == {
        "dapr.io/enabled": "true",
        "dapr.io/app-id": "checkout",
        "ok": "yes",
    }


@pytest.mark.parametrize("enabled", ["true", "TRUE", "yes", "1", "on", " t "])
def test_wants_service_when_enabled(enabled: str) -> None:
    assert wants_service(workload({"dapr.io/enabled": enabled}))


@pytest.mark.parametrize("enabled", ["false", "", "no", "0", "maybe"])
def test_no_service_when_not_enabled(enabled: str) -> None:
    assert not wants_service(workload({"dapr.io/enabled": enabled}))


def test_no_service_without_the_annotation() -> None:
    obj = workload()
    del obj["spec"]["template"]["metadata"]["annotations"]["dapr.io/enabled"]
    assert not wants_service(obj)


def test_no_service_while_deleting() -> None:
    assert not wants_service(workload(deletionTimestamp="2026-01-01T00:00:00Z"))


@pytest.mark.parametrize("value", [{}, None, [], {"metadata": "x", "spec": 3}])
def test_wants_service_tolerates_ill_typed_workloads(value: Any) -> None:
    assert not wants_service(value)


# --- annotations -----------------------------------------------------------------------------


def test_default_annotations() -> None:
    assert service_annotations({"dapr.io/app-id": "checkout"}, None) == {
        "dapr.io/app-id": "checkout",
        **PROMETHEUS,
    }


@pytest.mark.parametrize("value", ["false", "FALSE", "0", "no", "off", "", " ", "nope"])
def test_metrics_disabled_removes_the_prometheus_annotations(value: str) -> None:
    annotations = {"dapr.io/app-id": "checkout", "dapr.io/enable-metrics": value}
    assert service_annotations(annotations, None) == {"dapr.io/app-id": "checkout"}


@pytest.mark.parametrize("value", ["true", "1", " Yes "])
def test_metrics_on(value: str) -> None:
    annotations = {"dapr.io/app-id": "checkout", "dapr.io/enable-metrics": value}
    assert service_annotations(annotations, None) == {"dapr.io/app-id": "checkout", **PROMETHEUS}


def test_prometheus_port_follows_the_metrics_port() -> None:
    annotations = {"dapr.io/app-id": "a", "dapr.io/metrics-port": "9876"}
    assert service_annotations(annotations, None)["prometheus.io/port"] == "9876"
    annotations["dapr.io/metrics-port"] = "junk"
    assert service_annotations(annotations, None)["prometheus.io/port"] == "9090"


def test_sidecar_svc_annotations_parsing() -> None:
    extra = (
        " team = payments ,noequals,=novalue,  ,empty=,eq=a=b,dapr.io/custom=x,"
        "example.com/owner=ops,,trailing=1,"
    )
    annotations = {"dapr.io/app-id": "checkout", "dapr.io/sidecar-svc-annotations": extra}
    assert service_annotations(annotations, None) == {
        "dapr.io/app-id": "checkout",
        **PROMETHEUS,
        "team": "payments",
        "empty": "",
        "eq": "a=b",
        "dapr.io/custom": "x",
        "example.com/owner": "ops",
        "trailing": "1",
    }


def test_sidecar_svc_annotations_later_duplicate_wins() -> None:
    annotations = {"dapr.io/app-id": "a", "dapr.io/sidecar-svc-annotations": "k=1,k=2"}
    assert service_annotations(annotations, None)["k"] == "2"


def test_reserved_keys_are_ignored_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.reserved")
    extra = "dapr.io/app-id=evil,prometheus.io/port=1,prometheus.io/path=/x,kept=yes"
    annotations = {"dapr.io/app-id": "checkout", "dapr.io/sidecar-svc-annotations": extra}
    with caplog.at_level(logging.WARNING, logger="test.reserved"):
        result = service_annotations(annotations, logger)
    assert result == {"dapr.io/app-id": "checkout", **PROMETHEUS, "kept": "yes"}
    warned = [r.getMessage() for r in caplog.records if r.name == "test.reserved"]
    assert len(warned) == 3
    assert all("dapr.io/sidecar-svc-annotations" in m for m in warned)
    assert any("'dapr.io/app-id'" in m for m in warned)
    assert any("'prometheus.io/port'" in m for m in warned)


def test_prometheus_keys_are_free_when_metrics_are_off() -> None:
    annotations = {
        "dapr.io/app-id": "checkout",
        "dapr.io/enable-metrics": "false",
        "dapr.io/sidecar-svc-annotations": "prometheus.io/scrape=false,dapr.io/app-id=x",
    }
    assert service_annotations(annotations, None) == {
        "dapr.io/app-id": "checkout",
        "prometheus.io/scrape": "false",
    }


@pytest.mark.parametrize(
    "key", ["bad key", "a/b/c", "/name", "-lead", "trail-", "x" * 64, "ex_ample.com/k", "é"]
)
def test_keys_the_api_server_refuses_are_skipped(
    key: str, caplog: pytest.LogCaptureFixture
) -> None:
    annotations = {"dapr.io/app-id": "a", "dapr.io/sidecar-svc-annotations": f"{key}=v,ok=v"}
    with caplog.at_level(logging.WARNING, logger="dapr.operator.handlers"):
        result = service_annotations(annotations)
    assert key not in result
    assert result["ok"] == "v"
    assert any("not a valid annotation key" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "key", ["Example.COM/Key", "a.b/c_d.e-f", "x" * 63, "k8s.io/" + "x" * 63, "A1", "dapr.io/x"]
)
def test_keys_the_api_server_accepts_are_kept(key: str) -> None:
    annotations = {"dapr.io/app-id": "a", "dapr.io/sidecar-svc-annotations": f"{key}=v"}
    assert service_annotations(annotations)[key] == "v"


# --- the Service -----------------------------------------------------------------------------


def test_default_service() -> None:
    assert build() == {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": "checkout-dapr",
            "namespace": "shop",
            "labels": {"dapr.io/enabled": "true"},
            "annotations": {"dapr.io/app-id": "checkout", **PROMETHEUS},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "Deployment",
                    "name": "checkout-web",
                    "uid": UID,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "selector": {"app": "checkout"},
            "clusterIP": "None",
            "ports": [
                {
                    "name": "dapr-http",
                    "protocol": "TCP",
                    "port": 80,
                    "targetPort": 3500,
                    "appProtocol": "http",
                },
                {
                    "name": "dapr-grpc",
                    "protocol": "TCP",
                    "port": 50001,
                    "targetPort": 50001,
                    "appProtocol": "grpc",
                },
                {
                    "name": "dapr-internal",
                    "protocol": "TCP",
                    "port": 50002,
                    "targetPort": 50002,
                    "appProtocol": "tls",
                },
                {
                    "name": "dapr-metrics",
                    "protocol": "TCP",
                    "port": 9090,
                    "targetPort": 9090,
                    "appProtocol": "http",
                },
            ],
        },
    }


def test_without_mtls_the_internal_port_speaks_grpc() -> None:
    service = desired_service(
        workload(), kind="Deployment", api_version="apps/v1", mtls_enabled=False
    )
    assert ports(service) == {
        "dapr-http": (80, 3500, "http"),
        "dapr-grpc": (50001, 50001, "grpc"),
        "dapr-internal": (50002, 50002, "grpc"),
        "dapr-metrics": (9090, 9090, "http"),
    }


def test_custom_ports() -> None:
    service = build(
        {
            "dapr.io/grpc-port": "40001",
            "dapr.io/internal-grpc-port": "40002",
            "dapr.io/metrics-port": "9999",
            "dapr.io/http-port": "3600",  # the Service keeps 80 -> 3500 regardless
        }
    )
    assert ports(service) == {
        "dapr-http": (80, 3500, "http"),
        "dapr-grpc": (40001, 40001, "grpc"),
        "dapr-internal": (40002, 40002, "tls"),
        "dapr-metrics": (9999, 9999, "http"),
    }
    assert service["metadata"]["annotations"]["prometheus.io/port"] == "9999"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+40001", 40001),  # Go's ParseInt takes a sign
        ("0040001", 40001),  # and leading zeros
        ("0" * 5000 + "40001", 40001),  # of any length
        ("1", 1),
        ("65535", 65535),
        # Go would parse these; the API server would reject the Service: the default instead.
        ("0", 50001),
        ("-1", 50001),
        ("-40001", 50001),
        ("65536", 50001),
        ("2147483647", 50001),
        # Go would refuse these too.
        ("", 50001),
        ("abc", 50001),
        (" 40001", 50001),
        ("40001 ", 50001),
        ("40_001", 50001),
        ("0x10", 50001),
        ("4e4", 50001),
        ("+", 50001),
        ("2147483648", 50001),
        ("9" * 5000, 50001),
        ("\u0664\u0660\u0660\u0660\u0661", 50001),  # Arabic-Indic digits, which int() accepts
    ],
)
def test_port_values(value: str, expected: int) -> None:
    assert ports(build({"dapr.io/grpc-port": value}))["dapr-grpc"][:2] == (expected, expected)


@pytest.mark.parametrize(
    ("key", "name", "default"),
    [
        ("dapr.io/grpc-port", "dapr-grpc", 50001),
        ("dapr.io/internal-grpc-port", "dapr-internal", 50002),
        ("dapr.io/metrics-port", "dapr-metrics", 9090),
    ],
)
@pytest.mark.parametrize("bad", ["x", "-5", "0", "70000", "99999999999"])
def test_each_bad_port_falls_back_to_its_default(
    key: str, name: str, default: int, bad: str
) -> None:
    assert ports(build({key: bad}))[name][:2] == (default, default)


def test_colliding_ports_are_kept_as_given() -> None:
    # No port choice would be right for the sidecar here; the API server's refusal says why.
    service = build({"dapr.io/grpc-port": "80", "dapr.io/internal-grpc-port": "9090"})
    assert [p["port"] for p in service["spec"]["ports"]] == [80, 80, 9090, 9090]


def test_metrics_disabled_service() -> None:
    service = build({"dapr.io/enable-metrics": "false", "dapr.io/metrics-port": "9999"})
    assert service["metadata"]["annotations"] == {"dapr.io/app-id": "checkout"}
    # The metrics port is still published: only the scrape hints go.
    assert ports(service)["dapr-metrics"] == (9999, 9999, "http")


def test_sidecar_svc_annotations_reach_the_service() -> None:
    service = build({"dapr.io/sidecar-svc-annotations": "team=payments, dapr.io/app-id=x"})
    assert service["metadata"]["annotations"] == {
        "dapr.io/app-id": "checkout",
        **PROMETHEUS,
        "team": "payments",
    }


def test_match_expressions_are_ignored() -> None:
    selector = {
        "matchLabels": {"app": "checkout", "tier": "web"},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod"]}],
    }
    assert build(selector=selector)["spec"]["selector"] == {"app": "checkout", "tier": "web"}


@pytest.mark.parametrize(
    "selector",
    [{}, {"matchExpressions": [{"key": "a", "operator": "Exists"}]}, {"matchLabels": None}, []],
)
def test_selector_without_match_labels_is_empty(selector: Any) -> None:
    assert build(selector=selector)["spec"]["selector"] == {}


@pytest.mark.parametrize(
    ("kind", "api_version"),
    [("StatefulSet", "apps/v1"), ("Rollout", "argoproj.io/v1alpha1"), ("Deployment", "apps/v1")],
)
def test_owner_reference(kind: str, api_version: str) -> None:
    owner = workload(name="orders", uid="1234")
    owner["kind"] = kind
    service = desired_service(owner, kind=kind, api_version=api_version, mtls_enabled=True)
    assert service["metadata"]["ownerReferences"] == [
        {
            "apiVersion": api_version,
            "kind": kind,
            "name": "orders",
            "uid": "1234",
            "controller": True,
            "blockOwnerDeletion": True,
        }
    ]


def test_app_id_names_the_service() -> None:
    service = build({"dapr.io/app-id": "order-processor"})
    assert service["metadata"]["name"] == "order-processor-dapr"
    assert service["metadata"]["annotations"]["dapr.io/app-id"] == "order-processor"


@pytest.mark.parametrize("app_id", ["", "Bad", "a" * 59])
def test_desired_service_rejects_bad_app_ids(app_id: str) -> None:
    with pytest.raises(InvalidAppId):
        build({"dapr.io/app-id": app_id})


def test_missing_app_id_does_not_fall_back_to_a_name() -> None:
    obj = workload()
    del obj["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"]
    with pytest.raises(InvalidAppId, match="annotation is empty"):
        desired_service(obj, kind="Deployment", api_version="apps/v1", mtls_enabled=True)


def test_desired_service_does_not_share_state_with_its_input() -> None:
    obj = workload()
    before = copy.deepcopy(obj)
    service = build()
    service["spec"]["selector"]["app"] = "changed"
    service["metadata"]["labels"]["x"] = "y"
    assert obj == before
    assert build()["spec"]["selector"] == {"app": "checkout"}
    assert dapr_service.SERVICE_LABELS == {"dapr.io/enabled": "true"}


# --- drift -----------------------------------------------------------------------------------


def as_created(desired: dict[str, Any]) -> dict[str, Any]:
    """``desired`` as the API server returns it after a create: defaults and bookkeeping added."""
    live = copy.deepcopy(desired)
    live["metadata"].update(
        {
            "uid": "5d7c3f5e-6f5e-4c1e-8f5e-1e2d3c4b5a69",
            "resourceVersion": "4711",
            "creationTimestamp": "2026-01-01T00:00:00Z",
            "managedFields": [{"manager": "daprplane", "operation": "Update"}],
        }
    )
    live["spec"].update(
        {
            "clusterIPs": ["None"],
            "type": "ClusterIP",
            "sessionAffinity": "None",
            "ipFamilies": ["IPv4"],
            "ipFamilyPolicy": "SingleStack",
            "internalTrafficPolicy": "Cluster",
        }
    )
    live["status"] = {"loadBalancer": {}}
    return live


def test_a_freshly_created_service_does_not_differ() -> None:
    desired = build()
    assert not service_differs(as_created(desired), desired)


def test_empty_selector_reads_as_absent() -> None:
    desired = build(selector={})
    live = as_created(desired)
    del live["spec"]["selector"]  # the API server drops an empty map
    assert not service_differs(live, desired)


def test_foreign_labels_and_owners_are_not_a_difference() -> None:
    desired = build()
    live = as_created(desired)
    live["metadata"]["labels"]["team"] = "payments"
    live["metadata"]["ownerReferences"].append(
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "x", "uid": "y"}
    )
    live["spec"]["ports"][0]["nodePort"] = 30000
    live["spec"]["publishNotReadyAddresses"] = False
    assert not service_differs(live, desired)


def _walk(obj: Any, parts: tuple[str, ...]) -> Any:
    for part in parts:
        obj = obj[int(part)] if isinstance(obj, list) else obj[part]
    return obj


def _set(*path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        parent = _walk(obj, path[:-1])
        parent[int(path[-1]) if isinstance(parent, list) else path[-1]] = value

    return mutate


def _delete(*path: str) -> Callable[[dict[str, Any]], None]:
    def mutate(obj: dict[str, Any]) -> None:
        parent = _walk(obj, path[:-1])
        del parent[int(path[-1]) if isinstance(parent, list) else path[-1]]

    return mutate


DRIFTS: dict[str, Callable[[dict[str, Any]], None]] = {
    "label changed": _set("metadata", "labels", "dapr.io/enabled", value="false"),
    "label missing": _set("metadata", "labels", value={"team": "payments"}),
    "labels absent": _delete("metadata", "labels"),
    "annotation changed": _set("metadata", "annotations", "prometheus.io/port", value="1"),
    "annotation missing": _delete("metadata", "annotations", "prometheus.io/scrape"),
    "foreign annotation": _set("metadata", "annotations", "stale", value="x"),
    "annotations absent": _delete("metadata", "annotations"),
    "owner uid": _set("metadata", "ownerReferences", "0", "uid", value="other"),
    "owner name": _set("metadata", "ownerReferences", "0", "name", value="other"),
    "owner kind": _set("metadata", "ownerReferences", "0", "kind", value="StatefulSet"),
    "owner not controller": _set("metadata", "ownerReferences", "0", "controller", value=False),
    "owner not blocking": _delete("metadata", "ownerReferences", "0", "blockOwnerDeletion"),
    "owners absent": _delete("metadata", "ownerReferences"),
    "selector changed": _set("spec", "selector", "app", value="other"),
    "selector extra": _set("spec", "selector", "tier", value="web"),
    "selector absent": _delete("spec", "selector"),
    "cluster IP": _set("spec", "clusterIP", value="10.96.0.12"),
    "port number": _set("spec", "ports", "1", "port", value=50005),
    "target port": _set("spec", "ports", "0", "targetPort", value=3600),
    "target port by name": _set("spec", "ports", "0", "targetPort", value="http"),
    "port name": _set("spec", "ports", "2", "name", value="internal"),
    "protocol": _set("spec", "ports", "3", "protocol", value="UDP"),
    "app protocol": _set("spec", "ports", "2", "appProtocol", value="grpc"),
    "app protocol absent": _delete("spec", "ports", "0", "appProtocol"),
    "port missing": _delete("spec", "ports", "3"),
    "port extra": lambda s: s["spec"]["ports"].append({"name": "x", "port": 1}),
    "ports reordered": lambda s: s["spec"]["ports"].reverse(),
    "ports absent": _delete("spec", "ports"),
}


@pytest.mark.parametrize("drift", DRIFTS.values(), ids=list(DRIFTS))
def test_each_drift_is_a_difference(drift: Callable[[dict[str, Any]], None]) -> None:
    desired = build()
    live = as_created(desired)
    drift(live)
    assert service_differs(live, desired)


def test_changed_workload_is_a_difference() -> None:
    live = as_created(build())
    assert service_differs(live, build({"dapr.io/grpc-port": "40001"}))
    assert service_differs(live, build({"dapr.io/enable-metrics": "false"}))
    assert service_differs(live, build({"dapr.io/sidecar-svc-annotations": "a=b"}))
    assert service_differs(live, build(selector={"matchLabels": {"app": "v2"}}))
    other_mtls = desired_service(
        workload(), kind="Deployment", api_version="apps/v1", mtls_enabled=False
    )
    assert service_differs(live, other_mtls)


def test_a_removed_extra_annotation_is_a_difference() -> None:
    live = as_created(build({"dapr.io/sidecar-svc-annotations": "a=b"}))
    assert service_differs(live, build())


# --- replace ---------------------------------------------------------------------------------


def test_updated_service_is_the_desired_object_at_the_live_version() -> None:
    desired = build({"dapr.io/grpc-port": "40001"})
    live = as_created(build())
    live["metadata"]["labels"]["team"] = "payments"
    live["metadata"]["annotations"]["stale"] = "x"
    before = (copy.deepcopy(live), copy.deepcopy(desired))

    result = updated_service(live, desired)

    expected = copy.deepcopy(desired)
    expected["metadata"]["resourceVersion"] = "4711"
    expected["spec"]["clusterIPs"] = ["None"]
    expected["spec"]["ipFamilies"] = ["IPv4"]
    expected["spec"]["ipFamilyPolicy"] = "SingleStack"
    assert result == expected
    assert (live, desired) == before  # inputs untouched
    assert not service_differs(as_created(result), desired)


def test_updated_service_does_not_alias_the_live_object() -> None:
    live = as_created(build())
    result = updated_service(live, build())
    result["spec"]["ipFamilies"].append("IPv6")
    assert live["spec"]["ipFamilies"] == ["IPv4"]


def test_updated_service_leaves_out_addresses_of_a_non_headless_service() -> None:
    live = as_created(build())
    live["spec"]["clusterIP"] = "10.96.0.12"
    live["spec"]["clusterIPs"] = ["10.96.0.12"]
    result = updated_service(live, build())
    assert result["spec"]["clusterIP"] == "None"
    assert not {"clusterIPs", "ipFamilies", "ipFamilyPolicy"} & set(result["spec"])
    assert result["metadata"]["resourceVersion"] == "4711"


# --- fuzzing ---------------------------------------------------------------------------------

_PORT_NAME = re.compile(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?")
_KEY_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_KEY_PREFIX = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def _valid_annotation_key(key: str) -> bool:
    prefix, _, name = key.lower().rpartition("/")
    if "/" in prefix or (key.lower().count("/") == 1 and not prefix):
        return False
    if prefix and (len(prefix) > 253 or not _KEY_PREFIX.fullmatch(prefix)):
        return False
    return len(name) <= 63 and bool(_KEY_NAME.fullmatch(name))


_ANNOTATION_KEYS = st.sampled_from(
    [
        "dapr.io/app-id",
        "dapr.io/enabled",
        "dapr.io/enable-metrics",
        "dapr.io/grpc-port",
        "dapr.io/internal-grpc-port",
        "dapr.io/metrics-port",
        "dapr.io/sidecar-svc-annotations",
    ]
)
_NUMBERISH = st.one_of(
    st.integers(-(2**40), 2**40).map(str),
    st.from_regex(r"[+-]?0*[0-9]{1,12}", fullmatch=True),
    st.text(alphabet="0123456789+- _x\u0660", max_size=12),
)
_ANNOTATION_TEXT = st.lists(
    st.tuples(st.text(alphabet="abcAB.-_/= \t9é", max_size=12), st.text(max_size=8)).map("=".join),
    max_size=5,
).map(",".join)
_VALUES = st.one_of(
    st.text(), _NUMBERISH, _ANNOTATION_TEXT, st.sampled_from(["checkout", "true", "false"])
)


@given(st.dictionaries(_ANNOTATION_KEYS, _VALUES), st.booleans())
def test_any_annotations_give_a_valid_service_or_invalid_app_id(
    annotations: dict[str, str], mtls: bool
) -> None:
    obj = workload()
    obj["spec"]["template"]["metadata"]["annotations"] = annotations
    try:
        service = desired_service(obj, kind="Deployment", api_version="apps/v1", mtls_enabled=mtls)
    except InvalidAppId:
        assert not re.fullmatch(
            r"[a-z0-9]([-a-z0-9]{0,56}[a-z0-9])?", annotations.get("dapr.io/app-id", "")
        )
        return
    name = service["metadata"]["name"]
    assert len(name) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name)
    port_list = service["spec"]["ports"]
    assert [p["name"] for p in port_list] == [
        "dapr-http",
        "dapr-grpc",
        "dapr-internal",
        "dapr-metrics",
    ]
    for port in port_list:
        assert _PORT_NAME.fullmatch(port["name"]) and len(port["name"]) <= 15
        assert type(port["port"]) is int and 1 <= port["port"] <= 65535
        assert type(port["targetPort"]) is int and 1 <= port["targetPort"] <= 65535
        assert port["protocol"] == "TCP"
        assert port["appProtocol"] in {"http", "grpc", "tls"}
    for key, value in service["metadata"]["annotations"].items():
        assert isinstance(value, str)
        assert _valid_annotation_key(key), key
    assert not service_differs(as_created(service), service)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=5)
    | st.sampled_from(["checkout", "true", "80"]),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                [
                    "spec",
                    "template",
                    "metadata",
                    "annotations",
                    "selector",
                    "matchLabels",
                    "name",
                    "namespace",
                    "uid",
                    "deletionTimestamp",
                    "dapr.io/app-id",
                    "dapr.io/enabled",
                    "dapr.io/grpc-port",
                ]
            ),
            children,
            max_size=4,
        )
    ),
    max_leaves=16,
)


@given(_JSON)
def test_any_json_workload_gives_a_service_or_invalid_app_id(value: Any) -> None:
    try:
        service = desired_service(
            value, kind="Deployment", api_version="apps/v1", mtls_enabled=True
        )
    except InvalidAppId:
        return
    metadata = service["metadata"]
    assert metadata["name"].endswith("-dapr")
    assert all(isinstance(metadata[k], str) for k in ("name", "namespace"))
    owner = metadata["ownerReferences"][0]
    assert isinstance(owner["name"], str) and isinstance(owner["uid"], str)
    assert all(isinstance(v, str) for v in service["spec"]["selector"].values())
    assert isinstance(wants_service(value), bool)
