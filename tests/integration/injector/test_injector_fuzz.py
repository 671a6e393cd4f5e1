"""Hypothesis against the running injector over real HTTPS: whatever arrives at ``/mutate``, the
answer is one of the documented status codes with a well-formed body; never a 500, never a
dropped connection. Pods with random Dapr annotations reach the real patcher."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.injector.conftest import Injector

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

ANNOTATIONS = [
    "dapr.io/enabled", "dapr.io/app-id", "dapr.io/app-port", "dapr.io/config",
    "dapr.io/app-protocol", "dapr.io/log-level", "dapr.io/enable-metrics", "dapr.io/metrics-port",
    "dapr.io/grpc-port", "dapr.io/env", "dapr.io/env-from-secret", "dapr.io/volume-mounts",
    "dapr.io/volume-mounts-rw", "dapr.io/sidecar-cpu-limit", "dapr.io/sidecar-memory-request",
    "dapr.io/unix-domain-socket-path", "dapr.io/enable-debug", "dapr.io/debug-port",
    "dapr.io/placement-host-address", "dapr.io/scheduler-host-address",
    "dapr.io/pluggable-components", "dapr.io/enable-native-sidecar", "dapr.io/app-max-concurrency",
    "dapr.io/enable-api-logging", "dapr.io/graceful-shutdown-seconds",
    "dapr.io/sidecar-liveness-probe-delay-seconds", "dapr.io/app-health-probe-interval",
]  # fmt: skip

scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
annotation_values = st.one_of(
    st.sampled_from(["true", "TRUE", "false", "", "0", "-1", "99999999999", "a,b", "x:y,z", "1Gi"]),
    st.text(max_size=40),
)
annotations = st.dictionaries(st.sampled_from(ANNOTATIONS), annotation_values, max_size=8).map(
    lambda a: {"dapr.io/enabled": "true", **a}
)
containers = st.lists(
    st.fixed_dictionaries(
        {"name": st.sampled_from(["app", "daprd", "side", ""]), "image": st.just("x")},
        optional={"env": json_values, "volumeMounts": json_values, "ports": json_values},
    ),
    max_size=3,
)
pods = st.fixed_dictionaries(
    {
        "metadata": st.fixed_dictionaries(
            {"annotations": annotations},
            optional={"name": st.text(max_size=20), "labels": json_values},
        ),
        "spec": st.fixed_dictionaries(
            {"containers": containers},
            optional={"volumes": json_values, "initContainers": json_values},
        ),
    }
)
requests = st.fixed_dictionaries(
    {
        "uid": st.one_of(st.text(max_size=10), json_values),
        "kind": st.one_of(st.just({"group": "", "version": "v1", "kind": "Pod"}), json_values),
        "namespace": st.one_of(st.sampled_from(["default", "apps", ""]), json_values),
        "userInfo": st.one_of(
            st.just({"username": "admin", "groups": ["system:masters"]}), json_values
        ),
        "object": st.one_of(pods, pods, json_values),
    }
)
reviews = st.fixed_dictionaries(
    {
        "apiVersion": st.one_of(
            st.sampled_from(["admission.k8s.io/v1", "admission.k8s.io/v1beta1"]), json_values
        ),
        "kind": st.one_of(st.just("AdmissionReview"), json_values),
        "request": st.one_of(requests, requests, json_values),
    }
)
bodies = st.one_of(
    reviews.map(lambda r: json.dumps(r).encode()),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=256),
)
content_types = st.sampled_from(
    ["application/json"] * 4 + ["text/plain", "", "application/json; x"]
)


class Client:
    """One keep-alive HTTPS connection that verifies the injector's SVID chain and DNS name."""

    def __init__(self, injector: Injector) -> None:
        self.injector = injector
        self.connection = self._connect()

    def _connect(self) -> http.client.HTTPSConnection:
        context = self.injector.ssl_context()
        name = self.injector.server_name

        class Connection(http.client.HTTPSConnection):
            def connect(self) -> None:
                raw = socket.create_connection((self.host, self.port), timeout=self.timeout)
                self.sock = context.wrap_socket(raw, server_hostname=name)

        return Connection("127.0.0.1", self.injector.port, timeout=30)

    def post(self, body: bytes, content_type: str) -> tuple[int, str, bytes]:
        headers = {"Content-Type": content_type} if content_type else {}
        self.connection.request("POST", "/mutate", body=body, headers=headers)
        response = self.connection.getresponse()
        data = response.read()
        if response.will_close:
            self.connection.close()
            self.connection = self._connect()
        return response.status, response.getheader("Content-Type", ""), data


@pytest.fixture(scope="module")
def client(injector: Injector) -> Iterator[Client]:
    client = Client(injector)
    yield client
    client.connection.close()


def check(status: int, content_type: str, data: bytes) -> None:
    assert status in (200, 400, 413, 415), (status, data[:300])
    if status != 200:
        return
    assert content_type == "application/json"
    answer = json.loads(data)
    response = answer["response"]
    assert isinstance(response["allowed"], bool)
    assert isinstance(response["uid"], str)
    if "patch" in response:
        assert response["patchType"] == "JSONPatch"
        assert isinstance(json.loads(base64.b64decode(response["patch"])), list)
    if not response["allowed"]:
        assert response["status"]["message"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies, content_type=content_types)
def test_mutate_never_fails_on_any_body(client: Client, body: bytes, content_type: str) -> None:
    check(*client.post(body, content_type))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pod=pods)
def test_random_dapr_pods_get_a_patch_or_a_refusal(client: Client, pod: dict[str, Any]) -> None:
    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "fuzz",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "namespace": "apps",
            "userInfo": {"username": "admin", "groups": ["system:masters"]},
            "object": pod,
        },
    }
    status, content_type, data = client.post(json.dumps(review).encode(), "application/json")
    assert status == 200
    check(status, content_type, data)


def test_giant_body_is_413_over_https(client: Client) -> None:
    from daprplane.plugins.injector.webhook import MAX_BODY_BYTES

    status, _, data = client.post(b" " * (MAX_BODY_BYTES + 1), "application/json")
    assert status == 413, data[:200]
    check(*client.post(b"{}", "application/json"))
