"""Subscription v1alpha1 <-> v2alpha1 through the real API server, converted by the operator's
webhook: the operator points the CRD at itself and its trust anchors, and the API server calls
``/convert`` over TLS, checking the certificate for ``dapr-webhook.<namespace>.svc``.

As in the injector's tests, the ``dapr-webhook`` Service is an ExternalName for ``localhost``:
that is how the API server reaches a webhook on loopback under its Service name.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest

from daprplane._proto.operator.v1 import operator_pb2 as pb
from tests.integration.operator.conftest import (
    ControlPlane,
    Operator,
    Sidecar,
    apply,
    dapr_path,
    run_operator,
)
from tests.integration.operator.test_operator_api import eventually
from tests.k8s.cluster import raw_request

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

CRD = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/subscriptions.dapr.io"


@pytest.fixture(scope="module")
def webhook_operator(control_plane: ControlPlane, kube_api_module: Any) -> Iterator[Operator]:
    apply(
        kube_api_module,
        f"/api/v1/namespaces/{control_plane.namespace}/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dapr-webhook"},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
    )
    with run_operator(control_plane, "--disable-leader-election") as operator:
        raw_request(
            kube_api_module,
            "PATCH",
            CRD,
            body=[
                {
                    "op": "add",
                    "path": "/spec/conversion/webhook/clientConfig/service/port",
                    "value": operator.webhook_port,
                }
            ],
            content_type="application/json-patch+json",
        )
        yield operator


@pytest.fixture(scope="module")
def kube_api_module(control_plane: ControlPlane) -> Iterator[Any]:
    with control_plane.cluster.api_client() as api:
        yield api


def test_operator_points_the_crd_at_itself(
    webhook_operator: Operator, kube_api_module: Any
) -> None:
    client_config = raw_request(kube_api_module, "GET", CRD)["spec"]["conversion"]["webhook"][
        "clientConfig"
    ]
    plane = webhook_operator.control_plane
    assert client_config["service"]["namespace"] == plane.namespace
    assert base64.b64decode(client_config["caBundle"]) == plane.sentry.trust_anchors


async def test_v1alpha1_subscription_is_served_as_v2alpha1(
    webhook_operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    legacy = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Subscription",
        "metadata": {"name": "orders"},
        "spec": {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
        "scopes": ["app"],
    }
    raw_request(kube_api, "POST", dapr_path(kube_namespace, "subscriptions"), body=legacy)
    stored = raw_request(
        kube_api, "GET", dapr_path(kube_namespace, "subscriptions", "orders", version="v2alpha1")
    )
    assert stored["apiVersion"] == "dapr.io/v2alpha1"
    assert stored["spec"]["routes"] == {"default": "/orders"}
    assert stored["scopes"] == ["app"]
    back = raw_request(kube_api, "GET", dapr_path(kube_namespace, "subscriptions", "orders"))
    assert back["spec"]["route"] == "/orders"

    async with Sidecar(webhook_operator, "app", kube_namespace).stub() as stub:

        async def listed() -> dict[str, Any]:
            response = await stub.ListSubscriptionsV2(
                pb.ListSubscriptionsRequest(namespace=kube_namespace)
            )
            assert len(response.subscriptions) == 1
            return dict(json.loads(response.subscriptions[0]))

        served = await eventually(listed)
    assert served["spec"]["routes"]["default"] == "/orders"
