"""The operator's gRPC API as sidecars use it: lists, gets and update streams, secrets, scopes
and the authorisation rules, against the real API server and a real sentry."""

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import grpc
import pytest
from google.protobuf import empty_pb2

from daprplane._proto.operator.v1 import operator_pb2 as pb
from tests.integration.operator.conftest import Operator, Sidecar, dapr_path
from tests.k8s.cluster import raw_request

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

CREATED, UPDATED, DELETED = pb.CREATED, pb.UPDATED, pb.DELETED
EVENT_TIMEOUT = 20.0


def component(name: str, *, scopes: list[str] | None = None, **metadata: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {
            "type": "state.in-memory",
            "version": "v1",
            "metadata": [{"name": k, **v} for k, v in metadata.items()],
        },
    }
    if scopes is not None:
        body["scopes"] = scopes
    return body


def create(api: Any, namespace: str, plural: str, body: dict[str, Any], **kw: Any) -> Any:
    return raw_request(api, "POST", dapr_path(namespace, plural, **kw), body=body)


def secret(api: Any, namespace: str, name: str, **data: str) -> None:
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name},
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in data.items()},
    }
    try:
        raw_request(api, "POST", f"/api/v1/namespaces/{namespace}/secrets", body=body)
    except Exception:
        raw_request(api, "PUT", f"/api/v1/namespaces/{namespace}/secrets/{name}", body=body)


async def eventually(check: Any, timeout: float = EVENT_TIMEOUT) -> Any:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await check()
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def next_event(stream: Any, field: str) -> tuple[int, dict[str, Any]]:
    message = await asyncio.wait_for(stream.read(), EVENT_TIMEOUT)
    assert message is not grpc.aio.EOF, "the stream ended"
    return message.type, json.loads(getattr(message, field))


async def names(stub: Any, namespace: str) -> list[str]:
    response = await stub.ListComponents(pb.ListComponentsRequest(namespace=namespace))
    return [json.loads(item)["metadata"]["name"] for item in response.components]


async def test_list_components_is_scope_filtered_and_typed(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    create(kube_api, kube_namespace, "components", component("everyone"))
    create(kube_api, kube_namespace, "components", component("mine", scopes=["app-a"]))
    create(kube_api, kube_namespace, "components", component("theirs", scopes=["app-b"]))
    async with Sidecar(operator, "app-a", kube_namespace).stub() as stub:

        async def listed() -> list[bytes]:
            response = await stub.ListComponents(pb.ListComponentsRequest(namespace=kube_namespace))
            assert sorted(json.loads(c)["metadata"]["name"] for c in response.components) == [
                "everyone",
                "mine",
            ]
            return list(response.components)

        items = await eventually(listed)
    decoded = json.loads(items[0])
    assert decoded["kind"] == "Component"
    assert decoded["apiVersion"] == "dapr.io/v1alpha1"
    # Go's shapes: auth always present, every metadata item with secretKeyRef and value.
    assert decoded["auth"] == {"secretStore": ""}
    assert decoded["spec"]["ignoreErrors"] is False
    assert "managedFields" not in decoded["metadata"]


async def test_component_secret_refs_resolve_to_current_values(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    secret(kube_api, kube_namespace, "db", password="hunter1")
    ref = {"secretKeyRef": {"name": "db", "key": "password"}}
    create(kube_api, kube_namespace, "components", component("store", password=ref))
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:

        async def value_is(expected: str) -> None:
            response = await stub.ListComponents(pb.ListComponentsRequest(namespace=kube_namespace))
            assert len(response.components) == 1
            item = json.loads(response.components[0])["spec"]["metadata"][0]
            assert item["value"] == base64.b64encode(expected.encode()).decode()
            assert item["secretKeyRef"] == {"name": "db", "key": "password"}

        await eventually(lambda: value_is("hunter1"))
        secret(kube_api, kube_namespace, "db", password="hunter2")
        await eventually(lambda: value_is("hunter2"))


async def test_missing_secret_fails_the_list(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    ref = {"secretKeyRef": {"name": "absent", "key": "k"}}
    create(kube_api, kube_namespace, "components", component("broken", token=ref))
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:

        async def fails() -> grpc.aio.AioRpcError:
            try:
                await stub.ListComponents(pb.ListComponentsRequest(namespace=kube_namespace))
            except grpc.aio.AioRpcError as error:
                return error
            raise AssertionError("ListComponents succeeded")

        error = await eventually(fails)
    assert error.code() is grpc.StatusCode.UNKNOWN
    assert "broken" in (error.details() or "")
    assert "absent" in (error.details() or "")


async def test_component_stream_follows_changes_and_scopes(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    async with Sidecar(operator, "app-a", kube_namespace).stub() as stub:
        stream = stub.ComponentUpdate(pb.ComponentUpdateRequest(namespace=kube_namespace))
        # The stream registers on the server when the first message is requested; give it a
        # moment before the changes start.
        reader = asyncio.ensure_future(next_event(stream, "component"))
        await asyncio.sleep(1.0)
        path = dapr_path(kube_namespace, "components", "cache")
        create(kube_api, kube_namespace, "components", component("cache"))
        kind, obj = await reader
        assert kind == CREATED
        assert obj["metadata"]["name"] == "cache"
        assert operator.metrics()['daprplane_operator_update_streams{kind="Component"}'] >= 1
        assert "kind" not in obj and "apiVersion" not in obj

        live = raw_request(kube_api, "GET", path)
        live["spec"]["version"] = "v2"
        raw_request(kube_api, "PUT", path, body=live)
        kind, obj = await next_event(stream, "component")
        assert (kind, obj["spec"]["version"]) == (UPDATED, "v2")

        # Out of the app's scope: the app sees it go, with the object as it was.
        live = raw_request(kube_api, "GET", path)
        live["scopes"] = ["app-b"]
        raw_request(kube_api, "PUT", path, body=live)
        kind, obj = await next_event(stream, "component")
        assert kind == DELETED
        assert obj.get("scopes") in (None, [])

        live = raw_request(kube_api, "GET", path)
        live["scopes"] = ["app-a", "app-b"]
        raw_request(kube_api, "PUT", path, body=live)
        kind, obj = await next_event(stream, "component")
        assert (kind, obj["scopes"]) == (CREATED, ["app-a", "app-b"])

        # Another app's component never reaches this stream; the deletion does.
        create(kube_api, kube_namespace, "components", component("other", scopes=["app-b"]))
        raw_request(kube_api, "DELETE", path)
        kind, obj = await next_event(stream, "component")
        assert (kind, obj["metadata"]["name"]) == (DELETED, "cache")
        stream.cancel()
    # daprplane-sample observes the operator's changes through its hook.
    log = operator.output()
    for event in ("created", "updated", "deleted"):
        assert f"sample saw Component {event} cache" in log


async def test_configuration_get_and_assigned_stream(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    headers = [{"name": "api-key", "secretKeyRef": {"name": "otel", "key": "key"}}]
    secret(kube_api, kube_namespace, "otel", key="s3cret")
    config = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": "appconfig"},
        "spec": {"tracing": {"samplingRate": "1", "otel": {"headers": headers}}},
    }
    create(kube_api, kube_namespace, "configurations", config)
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "app-pod",
            "annotations": {
                "dapr.io/enabled": "true",
                "dapr.io/app-id": "app",
                "dapr.io/config": "appconfig",
            },
        },
        "spec": {"containers": [{"name": "app", "image": "app:latest"}]},
    }
    raw_request(kube_api, "POST", f"/api/v1/namespaces/{kube_namespace}/pods", body=pod)
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:

        async def get() -> dict[str, Any]:
            response = await stub.GetConfiguration(
                pb.GetConfigurationRequest(name="appconfig", namespace=kube_namespace)
            )
            return dict(json.loads(response.configuration))

        got = await eventually(get)
        assert got["spec"]["tracing"]["otel"]["headers"][0]["value"] == "s3cret"
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await stub.GetConfiguration(
                pb.GetConfigurationRequest(name="nope", namespace=kube_namespace)
            )
        assert missing.value.code() is grpc.StatusCode.UNKNOWN
        assert f"{kube_namespace}/nope" in (missing.value.details() or "")

        stream = stub.ConfigurationUpdate(pb.ConfigurationUpdateRequest(namespace=kube_namespace))
        reader = asyncio.ensure_future(next_event(stream, "configuration"))
        await asyncio.sleep(1.0)
        other = {**config, "metadata": {"name": "unrelated"}}
        create(kube_api, kube_namespace, "configurations", other)
        path = dapr_path(kube_namespace, "configurations", "appconfig")
        live = raw_request(kube_api, "GET", path)
        live["spec"]["tracing"]["samplingRate"] = "0.5"
        raw_request(kube_api, "PUT", path, body=live)
        kind, obj = await reader
        # Only the pod's own configuration is streamed, not "unrelated".
        assert (kind, obj["metadata"]["name"]) == (UPDATED, "appconfig")
        assert obj["spec"]["tracing"]["samplingRate"] == "0.5"
        stream.cancel()


async def test_subscriptions_resiliency_and_http_endpoints(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    subscription = {
        "apiVersion": "dapr.io/v2alpha1",
        "kind": "Subscription",
        "metadata": {"name": "orders"},
        "spec": {"pubsubname": "pubsub", "topic": "orders", "routes": {"default": "/orders"}},
        "scopes": ["someone-else"],
    }
    create(kube_api, kube_namespace, "subscriptions", subscription, version="v2alpha1")
    resiliency = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Resiliency",
        "metadata": {"name": "policy"},
        "spec": {
            "policies": {"timeouts": {"fast": "1s"}},
            "targets": {"apps": {"app": {"timeout": "fast"}}},
        },
    }
    create(kube_api, kube_namespace, "resiliencies", resiliency)
    secret(kube_api, kube_namespace, "tokens", auth="t0ken")
    endpoint = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "HTTPEndpoint",
        "metadata": {"name": "github"},
        "spec": {
            "baseUrl": "https://api.github.com",
            "headers": [
                {"name": "Authorization", "secretKeyRef": {"name": "tokens", "key": "auth"}}
            ],
        },
    }
    create(kube_api, kube_namespace, "httpendpoints", endpoint)
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:

        async def listed() -> None:
            subs = await stub.ListSubscriptionsV2(
                pb.ListSubscriptionsRequest(namespace=kube_namespace)
            )
            # Lists other than components are not scope-filtered.
            assert [json.loads(s)["metadata"]["name"] for s in subs.subscriptions] == ["orders"]
            decoded = json.loads(subs.subscriptions[0])
            assert decoded["apiVersion"] == "dapr.io/v2alpha1"
            resiliencies = await stub.ListResiliency(
                pb.ListResiliencyRequest(namespace=kube_namespace)
            )
            assert len(resiliencies.resiliencies) == 1
            endpoints = await stub.ListHTTPEndpoints(
                pb.ListHTTPEndpointsRequest(namespace=kube_namespace)
            )
            header = json.loads(endpoints.http_endpoints[0])["spec"]["headers"][0]
            assert header["value"] == base64.b64encode(b"t0ken").decode()

        await eventually(listed)
        got = await stub.GetResiliency(
            pb.GetResiliencyRequest(name="policy", namespace=kube_namespace)
        )
        assert json.loads(got.resiliency)["spec"]["policies"]["timeouts"] == {"fast": "1s"}
        # Optional kinds answer even with nothing in them.
        mcp = await stub.ListMCPServers(pb.ListMCPServersRequest(namespace=kube_namespace))
        assert list(mcp.mcp_servers) == []
        policies = await stub.ListWorkflowAccessPolicy(
            pb.ListWorkflowAccessPolicyRequest(namespace=kube_namespace)
        )
        assert list(policies.policies) == []

        stream = stub.ResiliencyUpdate(pb.ResiliencyUpdateRequest(namespace=kube_namespace))
        reader = asyncio.ensure_future(next_event(stream, "resiliency"))
        await asyncio.sleep(1.0)
        raw_request(kube_api, "DELETE", dapr_path(kube_namespace, "resiliencies", "policy"))
        kind, obj = await reader
        assert (kind, obj["metadata"]["name"]) == (DELETED, "policy")
        stream.cancel()


async def test_authorisation(operator: Operator, kube_namespace: str) -> None:
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:
        for namespace in ("default", ""):
            with pytest.raises(grpc.aio.AioRpcError) as denied:
                await stub.ListComponents(pb.ListComponentsRequest(namespace=namespace))
            assert denied.value.code() is grpc.StatusCode.PERMISSION_DENIED
            assert denied.value.details() == (
                f"identity does not match requested namespace exp={namespace} got={kube_namespace}"
            )
        with pytest.raises(grpc.aio.AioRpcError) as legacy:
            await stub.ListSubscriptions(empty_pb2.Empty())
        assert legacy.value.code() is grpc.StatusCode.PERMISSION_DENIED
        assert legacy.value.details() == (
            f"identity does not match requested namespace exp= got={kube_namespace}"
        )
        stream = stub.ComponentUpdate(pb.ComponentUpdateRequest(namespace="kube-system"))
        with pytest.raises(grpc.aio.AioRpcError) as stream_denied:
            await stream.read()
        assert stream_denied.value.code() is grpc.StatusCode.PERMISSION_DENIED


async def test_undecodable_request_is_internal(operator: Operator, kube_namespace: str) -> None:
    sidecar = Sidecar(operator, "app", kube_namespace)
    async with sidecar.stub():
        raw = sidecar.channel.unary_unary("/dapr.proto.operator.v1.Operator/ListComponents")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await raw(b"\xff\xff\xff")
    assert error.value.code() is grpc.StatusCode.INTERNAL
    assert (error.value.details() or "").startswith("grpc: error unmarshalling request")


async def test_plain_tls_without_client_certificate_is_refused(operator: Operator) -> None:
    import ssl

    context = ssl.create_default_context(
        cadata=operator.control_plane.sentry.trust_anchors.decode()
    )
    context.check_hostname = False
    reader, writer = await asyncio.open_connection("127.0.0.1", operator.port, ssl=context)
    # TLS 1.3: the server's refusal of a missing client certificate arrives after the handshake.
    writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        await writer.drain()
        data = await asyncio.wait_for(reader.read(100), 10)
        if not data:
            raise ConnectionError("closed")
    writer.close()


async def test_foreign_identity_is_refused(operator: Operator, kube_namespace: str) -> None:
    """A well-formed SVID for the right namespace, but from another CA: the handshake fails."""
    from daprplane._proto.operator.v1 import operator_pb2_grpc
    from daprplane.core.security.anchors import StaticTrustAnchors
    from daprplane.core.security.authz import allow_ids
    from daprplane.core.security.dialer import SpiffeChannel
    from daprplane.core.security.rotation import SvidSource
    from tests.pki import SentryCA

    foreign = SentryCA("someone-else")
    svid = foreign.svid(f"spiffe://public/ns/{kube_namespace}/app")
    plane = operator.control_plane
    async with SvidSource(lambda: svid) as source:
        channel = SpiffeChannel(
            operator.address,
            anchors=StaticTrustAnchors.from_pem(plane.sentry.trust_anchors),
            authorize=allow_ids(plane.operator_id),
            svid=source,
        )
        async with channel as grpc_channel:
            stub = operator_pb2_grpc.OperatorStub(grpc_channel)  # type: ignore[no-untyped-call]
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.ListComponents(
                    pb.ListComponentsRequest(namespace=kube_namespace), timeout=10
                )
    assert refused.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    assert "Rejected TLS connection" in operator.output()


async def test_subscription_and_http_endpoint_streams(
    operator: Operator, kube_namespace: str, kube_api: Any
) -> None:
    secret(kube_api, kube_namespace, "api", token="s3")
    async with Sidecar(operator, "app", kube_namespace).stub() as stub:
        subscriptions = stub.SubscriptionUpdate(
            pb.SubscriptionUpdateRequest(namespace=kube_namespace)
        )
        endpoints = stub.HTTPEndpointUpdate(pb.HTTPEndpointUpdateRequest(namespace=kube_namespace))
        first_subscription = asyncio.ensure_future(next_event(subscriptions, "subscription"))
        first_endpoint = asyncio.ensure_future(next_event(endpoints, "http_endpoints"))
        await asyncio.sleep(1.0)
        subscription = {
            "apiVersion": "dapr.io/v2alpha1",
            "kind": "Subscription",
            "metadata": {"name": "orders"},
            "spec": {"pubsubname": "pubsub", "topic": "orders", "routes": {"default": "/o"}},
            "scopes": ["app"],
        }
        create(kube_api, kube_namespace, "subscriptions", subscription, version="v2alpha1")
        endpoint = {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "HTTPEndpoint",
            "metadata": {"name": "backend"},
            "spec": {
                "baseUrl": "https://backend.example",
                "headers": [{"name": "X-Token", "secretKeyRef": {"name": "api", "key": "token"}}],
            },
        }
        create(kube_api, kube_namespace, "httpendpoints", endpoint)
        kind, obj = await first_subscription
        assert (kind, obj["spec"]["routes"]["default"]) == (CREATED, "/o")
        kind, obj = await first_endpoint
        assert kind == CREATED
        assert obj["spec"]["headers"][0]["value"] == base64.b64encode(b"s3").decode()
        subscriptions.cancel()
        endpoints.cancel()
