"""The Kubernetes validator's parts that need no API server (see the integration tests too)."""

from __future__ import annotations

import base64
import json
from typing import Any, ClassVar

import pytest

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.validators import kubernetes as kube
from daprplane.plugins.sentry.validators.base import ValidationError


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


CLAIMS = {"sub": "system:serviceaccount:ns:sa", "kubernetes.io": {"pod": {"name": "mypod"}}}


def test_compact_jws() -> None:
    token = f"{_b64({'alg': 'RS256'})}.{_b64(CLAIMS)}.c2ln"
    assert kube.pod_name_claim(kube.token_claims(token)) == "mypod"


def test_bare_json_claims() -> None:
    token = '{"kubernetes.io":{"pod":{"name":"mypod"}}}'
    assert kube.pod_name_claim(kube.token_claims(token)) == "mypod"


def test_json_serialized_jws() -> None:
    token = json.dumps({"payload": _b64(CLAIMS), "signatures": [{"signature": "x"}]})
    assert kube.pod_name_claim(kube.token_claims(token)) == "mypod"


@pytest.mark.parametrize("token", ["", "a.b", "not a token", "{", "a.!!!.c", "[1]"])
def test_unparsable(token: str) -> None:
    with pytest.raises(kube.TokenParseError):
        kube.token_claims(token)


@pytest.mark.parametrize(
    "claims", [{}, {"kubernetes.io": "x"}, {"kubernetes.io": {"pod": {}}}, {"kubernetes.io": {}}]
)
def test_missing_pod_claim(claims: dict) -> None:
    assert kube.pod_name_claim(claims) == ""


def _validator() -> kube.KubernetesValidator:
    return kube.KubernetesValidator(
        lambda: None,
        trust_domain="cluster.local",
        namespace="dapr-system",
        sentry_id="spiffe://cluster.local/ns/dapr-system/dapr-sentry",
    )


def _pod(name: str, namespace: str, **annotations: str) -> dict:
    return {"metadata": {"name": name, "namespace": namespace, "annotations": annotations}}


def test_expected_ids() -> None:
    validator = _validator()
    assert validator._expected_id(_pod("p", "ns")) == ("p", False)
    assert validator._expected_id(_pod("p", "ns", **{"dapr.io/app-id": "a"})) == ("a", False)
    cp = {"dapr.io/control-plane": "placement"}
    assert validator._expected_id(_pod("p", "dapr-system", **cp)) == ("dapr-placement", True)


@pytest.mark.parametrize(
    ("pod", "message"),
    [
        (
            _pod("p", "ns", **{"dapr.io/control-plane": "operator"}),
            "control plane service in namespace 'ns' is not allowed",
        ),
        (
            _pod("p", "dapr-system", **{"dapr.io/control-plane": "nope"}),
            "unknown control plane service 'p'",
        ),
        (
            _pod("p", "dapr-system", **{"dapr.io/control-plane": "sentry", "dapr.io/app-id": "x"}),
            "control plane service 'p' cannot have annotation 'dapr.io/app-id'",
        ),
    ],
)
def test_control_plane_rules(pod: dict, message: str) -> None:
    with pytest.raises(ValidationError) as info:
        _validator()._expected_id(pod)
    assert str(info.value) == message


async def test_not_ready_before_start() -> None:
    request = sentry_pb2.SignCertificateRequest(id="a", namespace="ns", token="t")
    with pytest.raises(ValidationError, match=r"^validator not ready$"):
        await _validator().validate(request)


def test_slim_pod_keeps_what_validation_needs() -> None:
    pod = {
        "metadata": {
            "name": "p",
            "namespace": "n",
            "annotations": {"a": "b"},
            "labels": {"x": "y"},
        },
        "spec": {
            "serviceAccountName": "sa",
            "containers": [{"name": "c", "image": "i", "env": [{"name": "X"}]}],
            "volumes": [{"name": "v"}],
        },
        "status": {"containerStatuses": [{"name": "c", "imageID": "sha256:1", "ready": True}]},
    }
    slim = kube.slim_pod(pod)
    assert slim["metadata"] == {"name": "p", "namespace": "n", "annotations": {"a": "b"}}
    assert slim["spec"]["containers"] == [{"name": "c", "image": "i"}]
    assert slim["status"]["containerStatuses"] == [{"name": "c", "imageID": "sha256:1"}]
    assert slim["spec"]["serviceAccountName"] == "sa"


def test_factory_uses_environment() -> None:
    class Environment:
        trust_domain = "td"
        namespace = "dapr-system"
        sentry_id = "spiffe://td/ns/dapr-system/dapr-sentry"
        extras: ClassVar[dict[str, Any]] = {"kube_api_factory": lambda: "api"}

    validator = kube.create({}, Environment())
    assert validator.audiences == ["dapr.io/sentry", "spiffe://td/ns/dapr-system/dapr-sentry"]
    assert validator.api_factory() == "api"
    assert validator.healthz_target == "sentry-kubernetes-validator"
    assert validator.kind == 2
