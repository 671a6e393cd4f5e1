"""The pure helpers around the reconciler, the caches and the API: what workloads and pods are
shrunk to, whose Service is whose, which configuration an app is assigned, and who the caller is
(contract §2.2, §2.7, §3)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519
from google.protobuf import empty_pb2
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.operator.api import (
    ApiError,
    OperatorApi,
    assigned_configuration,
    authorize,
    caller_identity,
)
from daprplane.plugins.operator.caches import dapr_pod_metadata, without_managed_fields
from daprplane.plugins.operator.reconciler import controller_of, workload_essentials
from tests.pki import SentryCA, pem_of

# -- workload_essentials ---------------------------------------------------------------------------


def deployment(annotations: dict[str, Any] | None = None, **metadata: Any) -> dict[str, Any]:
    template_metadata: dict[str, Any] = {"labels": {"app": "web"}}
    if annotations is not None:
        template_metadata["annotations"] = annotations
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "web",
            "namespace": "shop",
            "uid": "uid-1",
            "resourceVersion": "17",
            "generation": 3,
            "labels": {"app": "web"},
            "annotations": {"deployment.kubernetes.io/revision": "2"},
            "ownerReferences": [{"kind": "Something", "name": "x", "controller": True}],
            "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}],
            **metadata,
        },
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "web"}},
            "strategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": template_metadata,
                "spec": {"containers": [{"name": "web", "image": "web:1", "env": [{"name": "A"}]}]},
            },
        },
        "status": {"readyReplicas": 3, "conditions": [{"type": "Available"}]},
    }


DAPR = {"dapr.io/enabled": "true", "dapr.io/app-id": "web", "other.io/x": "y"}


def test_a_dapr_workload_keeps_what_the_reconciler_reads() -> None:
    obj = deployment(DAPR)
    original = copy.deepcopy(obj)
    assert workload_essentials(obj) == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1", "resourceVersion": "17"},
        "spec": {
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"annotations": DAPR}},
        },
    }
    assert obj == original  # the input is not modified


def test_the_deletion_timestamp_is_kept() -> None:
    obj = deployment(DAPR, deletionTimestamp="2026-01-01T00:00:00Z")
    assert workload_essentials(obj)["metadata"]["deletionTimestamp"] == "2026-01-01T00:00:00Z"


def test_kept_annotations_are_a_copy() -> None:
    obj = deployment(dict(DAPR))
    kept = workload_essentials(obj)
    kept["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"] = "changed"
    assert obj["spec"]["template"]["metadata"]["annotations"]["dapr.io/app-id"] == "web"


def test_selectors_with_expressions_are_kept_whole() -> None:
    obj = deployment(DAPR)
    selector = {"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "x", "operator": "In"}]}
    obj["spec"]["selector"] = selector
    assert workload_essentials(obj)["spec"]["selector"] == selector


@pytest.mark.parametrize("enabled", ["true", "True", " yes ", "1", "on", "t", "Y"])
def test_truthy_enabled_values_count(enabled: str) -> None:
    assert "spec" in workload_essentials(deployment({"dapr.io/enabled": enabled}))


@pytest.mark.parametrize(
    "annotations",
    [
        None,
        {},
        {"dapr.io/app-id": "web"},
        {"dapr.io/enabled": "false"},
        {"dapr.io/enabled": ""},
        {"dapr.io/enabled": "enabled"},
        {"dapr.io/Enabled": "true"},
    ],
)
def test_other_workloads_shrink_to_metadata(annotations: dict[str, Any] | None) -> None:
    assert workload_essentials(deployment(annotations)) == {
        "metadata": {"name": "web", "namespace": "shop", "uid": "uid-1", "resourceVersion": "17"}
    }


@pytest.mark.parametrize(
    "obj",
    [
        {},
        {"metadata": None, "spec": None},
        {"metadata": {"name": "x"}, "spec": {"template": None}},
        {"metadata": {"name": "x"}, "spec": {"template": {"metadata": None}}},
        {"metadata": {"name": "x"}, "spec": {"template": {"metadata": {"annotations": None}}}},
        {"metadata": {"name": "x"}, "spec": {"template": {"metadata": {"annotations": ["a"]}}}},
    ],
)
def test_missing_parts_are_not_dapr_workloads(obj: dict[str, Any]) -> None:
    assert set(workload_essentials(obj)) == {"metadata"}


def test_a_workload_without_type_meta_keeps_none() -> None:
    obj = deployment(DAPR)
    del obj["apiVersion"], obj["kind"]
    kept = workload_essentials(obj)
    assert kept["apiVersion"] is None and kept["kind"] is None
    assert kept["spec"]["template"]["metadata"]["annotations"] == DAPR


# -- controller_of ---------------------------------------------------------------------------------


def service(*owners: Any) -> dict[str, Any]:
    return {"metadata": {"name": "web-dapr", "namespace": "shop", "ownerReferences": list(owners)}}


@pytest.mark.parametrize(
    ("svc", "expected"),
    [
        (service({"kind": "Deployment", "name": "web", "controller": True}), ("Deployment", "web")),
        (
            service(
                {"kind": "ConfigMap", "name": "cm"},
                {"kind": "StatefulSet", "name": "db", "controller": True},
            ),
            ("StatefulSet", "db"),
        ),
        (
            service(
                {"kind": "Deployment", "name": "first", "controller": True},
                {"kind": "Deployment", "name": "second", "controller": True},
            ),
            ("Deployment", "first"),
        ),
        (service({"kind": "Deployment", "name": "web", "controller": False}), None),
        (service({"kind": "Deployment", "name": "web"}), None),
        (service("not-a-reference", None, 3), None),
        (service(), None),
        ({"metadata": {"ownerReferences": None}}, None),
        ({"metadata": None}, None),
        ({}, None),
        # A controller of any kind is named; the reconciler decides whether it is a workload.
        (service({"kind": "ReplicaSet", "name": "rs", "controller": True}), ("ReplicaSet", "rs")),
        (service({"controller": True}), ("", "")),
    ],
)
def test_controller_of(svc: dict[str, Any], expected: tuple[str, str] | None) -> None:
    assert controller_of(svc) == expected


# -- caches: without_managed_fields ----------------------------------------------------------------


def test_managed_fields_are_dropped_without_touching_the_input() -> None:
    obj = {
        "kind": "Component",
        "metadata": {"name": "c", "managedFields": [{"manager": "x"}], "labels": {"a": "b"}},
        "spec": {"type": "state.redis"},
    }
    original = copy.deepcopy(obj)
    shrunk = without_managed_fields(obj)
    assert shrunk == {
        "kind": "Component",
        "metadata": {"name": "c", "labels": {"a": "b"}},
        "spec": {"type": "state.redis"},
    }
    assert obj == original


@pytest.mark.parametrize(
    "obj", [{}, {"metadata": None}, {"metadata": "x"}, {"metadata": {"name": "c"}}]
)
def test_objects_without_managed_fields_are_returned_as_they_are(obj: dict[str, Any]) -> None:
    assert without_managed_fields(obj) is obj


# -- caches: dapr_pod_metadata ---------------------------------------------------------------------


def pod(annotations: Any = None, **metadata: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "name": "web-1",
        "namespace": "shop",
        "resourceVersion": "9",
        "uid": "u",
        "labels": {"app": "web"},
        "managedFields": [{"manager": "kubelet"}],
        **metadata,
    }
    if annotations is not None:
        meta["annotations"] = annotations
    return {
        "metadata": meta,
        "spec": {"containers": [{"name": "web"}]},
        "status": {"phase": "Running"},
    }


def test_pods_keep_their_identity_and_dapr_annotations_only() -> None:
    transform = dapr_pod_metadata()
    shrunk = transform(
        pod(
            {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "web",
                "dapr.io/config": "tracing",
                "kubectl.kubernetes.io/restartedAt": "now",
                "sidecar.dapr.io/x": "not the prefix",
            }
        )
    )
    assert shrunk == {
        "metadata": {
            "name": "web-1",
            "namespace": "shop",
            "resourceVersion": "9",
            "annotations": {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "web",
                "dapr.io/config": "tracing",
            },
        }
    }


@pytest.mark.parametrize("annotations", [None, {}, {"other.io/a": "b"}, ["dapr.io/enabled"]])
def test_pods_without_dapr_annotations_have_no_annotations(annotations: Any) -> None:
    assert dapr_pod_metadata()(pod(annotations)) == {
        "metadata": {"name": "web-1", "namespace": "shop", "resourceVersion": "9"}
    }


def test_another_annotation_prefix() -> None:
    transform = dapr_pod_metadata("example.com/")
    shrunk = transform(pod({"example.com/a": "1", "dapr.io/enabled": "true"}))
    assert shrunk["metadata"]["annotations"] == {"example.com/a": "1"}


def test_a_pod_without_metadata() -> None:
    assert dapr_pod_metadata()({}) == {
        "metadata": {"name": None, "namespace": None, "resourceVersion": None}
    }


# -- api: assigned_configuration -------------------------------------------------------------------


class FakePods:
    """The part of the pod cache the API reads: pods by namespace, in cache order."""

    def __init__(self, pods_by_namespace: dict[str, list[dict[str, Any]]]) -> None:
        self.pods_by_namespace = pods_by_namespace

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        return self.pods_by_namespace.get(namespace, [])


def dapr_pod(name: str, **annotations: str) -> dict[str, Any]:
    keys = {"enabled": "dapr.io/enabled", "app_id": "dapr.io/app-id", "config": "dapr.io/config"}
    return {
        "metadata": {
            "name": name,
            "namespace": "shop",
            "annotations": {keys[key]: value for key, value in annotations.items()},
        }
    }


def assigned(pods: list[dict[str, Any]], app_id: str = "web", namespace: str = "shop") -> str:
    return assigned_configuration(FakePods({"shop": pods}), namespace, app_id)  # type: ignore[arg-type]


def test_the_config_of_the_apps_pod() -> None:
    pods = [
        dapr_pod("other-1", enabled="true", app_id="other", config="other-config"),
        dapr_pod("web-1", enabled="true", app_id="web", config="web-config"),
    ]
    assert assigned(pods) == "web-config"


def test_the_first_matching_pod_wins() -> None:
    pods = [
        dapr_pod("web-1", enabled="true", app_id="web", config="first"),
        dapr_pod("web-2", enabled="true", app_id="web", config="second"),
    ]
    assert assigned(pods) == "first"


def test_pods_without_a_config_are_skipped() -> None:
    pods = [
        dapr_pod("web-1", enabled="true", app_id="web"),
        dapr_pod("web-2", enabled="true", app_id="web", config=""),
        dapr_pod("web-3", enabled="true", app_id="web", config="named"),
    ]
    assert assigned(pods) == "named"


@pytest.mark.parametrize("enabled", [None, "false", "", "nope"])
def test_pods_not_enabled_are_skipped(enabled: str | None) -> None:
    disabled = dapr_pod("web-1", app_id="web", config="disabled-config")
    if enabled is not None:
        disabled["metadata"]["annotations"]["dapr.io/enabled"] = enabled
    pods = [disabled, dapr_pod("web-2", enabled="TRUE", app_id="web", config="enabled-config")]
    assert assigned(pods) == "enabled-config"


@pytest.mark.parametrize("app_id", [None, ""])
def test_the_pod_name_stands_in_for_a_missing_app_id(app_id: str | None) -> None:
    named = dapr_pod("web", enabled="yes", config="by-name")
    if app_id is not None:
        named["metadata"]["annotations"]["dapr.io/app-id"] = app_id
    assert assigned([named]) == "by-name"
    assert assigned([named], app_id="other") == ""


def test_the_pod_name_does_not_match_when_an_app_id_is_set() -> None:
    assert assigned([dapr_pod("web", enabled="true", app_id="api", config="c")]) == ""


def test_no_pod_means_no_assignment() -> None:
    assert assigned([]) == ""
    assert assigned([dapr_pod("web-1", enabled="true", app_id="web", config="c")], "api") == ""


def test_other_namespaces_are_not_consulted() -> None:
    pods = FakePods({"shop": [dapr_pod("web-1", enabled="true", app_id="web", config="c")]})
    assert assigned_configuration(pods, "elsewhere", "web") == ""  # type: ignore[arg-type]


def test_pods_with_missing_metadata_are_skipped() -> None:
    pods: list[dict[str, Any]] = [{}, {"metadata": None}, {"metadata": {"annotations": None}}]
    pods.append(dapr_pod("web-1", enabled="true", app_id="web", config="c"))
    assert assigned(pods) == "c"


# -- api: caller identity and namespace authorisation ----------------------------------------------

CA = SentryCA(trust_domain="public")


@dataclass
class FakeContext:
    """A grpc.aio.ServicerContext as far as identification goes."""

    certificate_pem: bytes | None = None
    peer_name: str = "ipv4:10.0.0.7:51234"

    def peer(self) -> str:
        return self.peer_name

    def auth_context(self) -> dict[str, list[bytes]]:
        if self.certificate_pem is None:
            return {"transport_security_type": [b"ssl"]}
        return {"transport_security_type": [b"ssl"], "x509_pem_cert": [self.certificate_pem]}


def context_for(*uris: str) -> FakeContext:
    leaf = CA.leaf(list(uris), ed25519.Ed25519PrivateKey.generate().public_key())
    return FakeContext(pem_of(leaf))


def denied(call: Any, *args: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call(*args)
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    return caught.value


def test_caller_identity_of_a_dapr_svid() -> None:
    identity = caller_identity(context_for("spiffe://public/ns/shop/web"))
    assert (identity.trust_domain, identity.namespace, identity.app_id) == ("public", "shop", "web")


def test_any_trust_domain_is_accepted() -> None:
    identity = caller_identity(context_for("spiffe://somewhere.else/ns/shop/web"))
    assert identity.trust_domain == "somewhere.else"


@pytest.mark.parametrize(
    "context",
    [
        FakeContext(),
        FakeContext(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"),
        context_for(),
        context_for("https://example.com/ns/shop/web"),
        context_for("spiffe://public/ns/shop/web", "spiffe://public/ns/shop/api"),
        context_for("spiffe://public/ns/shop"),
        context_for("spiffe://public/ns//web"),
        context_for("spiffe://public/namespace/shop/web"),
        context_for("spiffe://public/web"),
        context_for("spiffe://public"),
        # A CA certificate is no workload identity, whatever its SAN says.
        FakeContext(
            pem_of(
                CA.leaf(
                    ["spiffe://public/ns/shop/web"],
                    ed25519.Ed25519PrivateKey.generate().public_key(),
                    ca=True,
                )
            )
        ),
    ],
)
def test_no_usable_identity(context: FakeContext) -> None:
    error = denied(caller_identity, context)
    assert error.message == "failed to determine identity"
    assert denied(authorize, context, "shop").message == "failed to determine identity"


def test_extra_path_segments_are_not_an_identity() -> None:
    # Every daprplane service reads a Dapr ID as exactly /ns/<namespace>/<app-id> (docs/compat.md).
    context = context_for("spiffe://public/ns/shop/web/extra")
    assert denied(caller_identity, context).message == "failed to determine identity"


def test_authorize_the_callers_own_namespace() -> None:
    identity = authorize(context_for("spiffe://public/ns/shop/web"), "shop")
    assert str(identity) == "spiffe://public/ns/shop/web"
    assert identity.app_id == "web"


@pytest.mark.parametrize("requested", ["", "other", "Shop", "shop ", "shop/web"])
def test_authorize_refuses_another_namespace(requested: str) -> None:
    error = denied(authorize, context_for("spiffe://public/ns/shop/web"), requested)
    assert error.message == f"identity does not match requested namespace exp={requested} got=shop"


async def test_list_subscriptions_without_namespace_is_always_refused() -> None:
    api = OperatorApi(served={}, pods=FakePods({}), lookup=None)  # type: ignore[arg-type]
    with pytest.raises(ApiError) as caught:
        await api.list_subscriptions(empty_pb2.Empty(), context_for("spiffe://public/ns/shop/web"))
    assert caught.value.code is grpc.StatusCode.PERMISSION_DENIED
    assert caught.value.message == "identity does not match requested namespace exp= got=shop"


CONTEXT_SHOP_WEB = context_for("spiffe://public/ns/shop/web")


@given(st.text(max_size=12))
def test_only_the_exact_namespace_is_authorised(requested: str) -> None:
    context = CONTEXT_SHOP_WEB
    try:
        identity = authorize(context, requested)
    except ApiError as error:
        assert requested != "shop"
        assert error.code is grpc.StatusCode.PERMISSION_DENIED
        assert error.message.startswith("identity does not match requested namespace exp=")
    else:
        assert requested == "shop" and identity.namespace == "shop"
