"""``/mutate`` over HTTP: check order, status codes and answers (contract §2).

The patch builder is the handler's seam; these tests plug in small builders of their own so that
only the handler is under test. The real patcher is exercised end to end in the integration tests.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import AsyncIterator, Mapping
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CollectorRegistry

from daprplane.plugins.injector.authz import Authorizer, ServiceAccountMatcher
from daprplane.plugins.injector.metrics import InjectorMetrics
from daprplane.plugins.injector.webhook import MAX_BODY_BYTES, MutateHandler, application

PATCH = [{"op": "add", "path": "/metadata/labels/dapr.io~1sidecar-injected", "value": "true"}]
CONTROLLER = "system:serviceaccount:kube-system:replicaset-controller"


class Refused(Exception):
    pass


def builder(pod: Mapping[str, Any], request: Any) -> list[dict[str, Any]]:
    app_id = pod["metadata"].get("annotations", {}).get("dapr.io/app-id", "")
    if app_id == "bad":
        raise Refused("invalid app id (input: 'bad')")
    if app_id == "bug":
        raise KeyError("surprise")
    if app_id == "unencodable":
        return [{"op": "add", "path": "/x", "value": object()}]
    return [{**PATCH[0]}, {"op": "add", "path": "/ns", "value": request.namespace}]


def pod(annotations: Mapping[str, str] | None = None, containers: Any = None) -> dict[str, Any]:
    return {
        "metadata": {"name": "p1", "annotations": dict(annotations or {})},
        "spec": {"containers": containers or [{"name": "app", "image": "x"}]},
    }


def dapr_pod(app_id: str = "myapp", **extra: str) -> dict[str, Any]:
    return pod({"dapr.io/enabled": "true", "dapr.io/app-id": app_id, **extra})


def review(
    obj: Any = None,
    *,
    kind: str = "Pod",
    user: str = CONTROLLER,
    groups: tuple[str, ...] = (),
    api_version: str = "admission.k8s.io/v1",
) -> dict[str, Any]:
    return {
        "apiVersion": api_version,
        "kind": "AdmissionReview",
        "request": {
            "uid": "uid-7",
            "kind": {"group": "", "version": "v1", "kind": kind},
            "namespace": "apps",
            "operation": "CREATE",
            "userInfo": {"username": user, "groups": list(groups)},
            "object": obj,
        },
    }


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
async def client(registry: CollectorRegistry) -> AsyncIterator[TestClient[Any, Any]]:
    handler = MutateHandler(
        authorizer=Authorizer(ServiceAccountMatcher.from_settings()),
        build_patch=builder,
        metrics=InjectorMetrics(registry),
        log=logging.getLogger("test.injector"),
        expected_errors=(Refused,),
        needs_injection=lambda p: (
            not any(c.get("name") == "daprd" for c in p.get("spec", {}).get("containers", []))
        ),
    )
    async with TestClient(TestServer(application(handler))) as test_client:
        yield test_client


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def post(client: TestClient[Any, Any], body: Any) -> dict[str, Any]:
    response = await client.post("/mutate", json=body)
    assert response.status == 200
    assert response.content_type == "application/json"
    return await response.json()  # type: ignore[no-any-return]


async def test_patch_is_returned_base64_with_uid_and_kind_echoed(
    client: TestClient[Any, Any], registry: CollectorRegistry
) -> None:
    answer = await post(client, review(dapr_pod()))
    assert answer["kind"] == "AdmissionReview"
    assert answer["apiVersion"] == "admission.k8s.io/v1"
    response = answer["response"]
    assert response["uid"] == "uid-7"
    assert response["allowed"] is True
    assert response["patchType"] == "JSONPatch"
    assert json.loads(base64.b64decode(response["patch"]))[1]["value"] == "apps"
    assert sample(registry, "dapr_injector_sidecar_injection_succeeded_total", app_id="myapp") == 1
    assert sample(registry, "dapr_injector_sidecar_injection_requests_total") == 1


async def test_v1beta1_is_answered_as_v1beta1(client: TestClient[Any, Any]) -> None:
    answer = await post(client, review(dapr_pod(), api_version="admission.k8s.io/v1beta1"))
    assert answer["apiVersion"] == "admission.k8s.io/v1beta1"
    assert "patch" in answer["response"]


@pytest.mark.parametrize("method", ["POST", "GET", "PUT"])
async def test_empty_body_is_400(client: TestClient[Any, Any], method: str) -> None:
    response = await client.request(method, "/mutate", headers={"Content-Type": "application/json"})
    assert response.status == 400
    assert await response.text() == "empty body\n"


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/json; charset=utf-8"])
async def test_content_type_must_be_exactly_application_json(
    client: TestClient[Any, Any], registry: CollectorRegistry, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(
        "/mutate", data=json.dumps(review(dapr_pod())).encode(), headers=headers
    )
    assert response.status == 415
    assert await response.text() == "invalid Content-Type, expected `application/json`\n"
    assert sample(registry, "dapr_injector_sidecar_injection_requests_total") == 1


async def test_a_giant_body_is_413_not_a_dropped_connection(client: TestClient[Any, Any]) -> None:
    body = b"{" + b" " * (MAX_BODY_BYTES + 10) + b"}"
    response = await client.post("/mutate", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 413
    # The connection still serves the next request.
    answer = await post(client, review(dapr_pod()))
    assert answer["response"]["allowed"] is True


async def test_a_giant_chunked_body_is_413(client: TestClient[Any, Any]) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(MAX_BODY_BYTES // (1 << 20) + 2):
            yield b" " * (1 << 20)

    response = await client.post(
        "/mutate", data=chunks(), headers={"Content-Type": "application/json"}
    )
    assert response.status == 413


@pytest.mark.parametrize(
    "body", [b"{", b"[1,2]", b'"x"', b'{"request": null}', b'{"request": {"kind": "Pod"}}']
)
async def test_undecodable_reviews_are_refused_with_a_message(
    client: TestClient[Any, Any], body: bytes
) -> None:
    response = await client.post("/mutate", data=body, headers={"Content-Type": "application/json"})
    assert response.status == 200
    answer = await response.json()
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"]


async def test_other_kinds_are_allowed_unchanged_and_counted(
    client: TestClient[Any, Any], registry: CollectorRegistry
) -> None:
    answer = await post(client, review({"metadata": {"name": "svc"}}, kind="Service"))
    assert answer["response"] == {"uid": "uid-7", "allowed": True}
    assert (
        sample(
            registry,
            "dapr_injector_sidecar_injection_failed_total",
            app_id="svc",
            reason="pod_patch",
        )
        == 1
    )


@pytest.mark.parametrize(
    "annotations", [{}, {"dapr.io/enabled": "false"}, {"dapr.io/enabled": "yes"}]
)
async def test_pods_without_dapr_are_allowed_unchanged_and_not_counted(
    client: TestClient[Any, Any], registry: CollectorRegistry, annotations: dict[str, str]
) -> None:
    answer = await post(client, review(pod(annotations), user="nobody"))
    assert answer["response"] == {"uid": "uid-7", "allowed": True}
    assert "dapr_injector_sidecar_injection_failed_total" not in {
        s.name for m in registry.collect() for s in m.samples
    }


async def test_unauthorised_users_get_the_pod_unchanged(
    client: TestClient[Any, Any], registry: CollectorRegistry
) -> None:
    answer = await post(client, review(dapr_pod(), user="system:serviceaccount:default:default"))
    assert answer["response"] == {"uid": "uid-7", "allowed": True}
    labels = {"app_id": "myapp", "reason": "pod_patch"}
    assert sample(registry, "dapr_injector_sidecar_injection_failed_total", **labels) == 1


async def test_system_masters_are_authorised(client: TestClient[Any, Any]) -> None:
    answer = await post(client, review(dapr_pod(), user="admin", groups=("system:masters",)))
    assert "patch" in answer["response"]


async def test_already_injected_pods_are_allowed_unchanged(client: TestClient[Any, Any]) -> None:
    obj = dapr_pod()
    obj["spec"]["containers"].append({"name": "daprd"})
    answer = await post(client, review(obj))
    assert answer["response"] == {"uid": "uid-7", "allowed": True}


async def test_patch_errors_refuse_the_pod_with_the_message(
    client: TestClient[Any, Any], registry: CollectorRegistry
) -> None:
    answer = await post(client, review(dapr_pod("bad")))
    assert answer["response"] == {
        "uid": "uid-7",
        "allowed": False,
        "status": {"metadata": {}, "message": "invalid app id (input: 'bad')"},
    }
    labels = {"app_id": "bad", "reason": "patch"}
    assert sample(registry, "dapr_injector_sidecar_injection_failed_total", **labels) == 1


async def test_a_failing_builder_is_a_refusal_not_a_500(client: TestClient[Any, Any]) -> None:
    answer = await post(client, review(dapr_pod("bug")))
    assert answer["response"]["allowed"] is False
    assert "KeyError" in answer["response"]["status"]["message"]


async def test_an_unencodable_patch_is_a_refusal(
    client: TestClient[Any, Any], registry: CollectorRegistry
) -> None:
    answer = await post(client, review(dapr_pod("unencodable")))
    assert answer["response"]["allowed"] is False
    labels = {"app_id": "unencodable", "reason": "response"}
    assert sample(registry, "dapr_injector_sidecar_injection_failed_total", **labels) == 1


@pytest.mark.parametrize("obj", [None, "text", [1]])
async def test_an_unreadable_pod_object_is_refused(client: TestClient[Any, Any], obj: Any) -> None:
    answer = await post(client, review(obj))
    assert answer["response"]["allowed"] is False
    assert answer["response"]["status"]["message"].startswith("could not unmarshal raw object")


async def test_other_paths_are_404(client: TestClient[Any, Any]) -> None:
    response = await client.post("/mutate/x", json=review(dapr_pod()))
    assert response.status == 404
