"""The Subscription CRD's conversion webhook, patched and then used by the real API server.

Every test works on a throwaway copy of the Subscription CRD in a group of its own
(``subscriptions.t<hex>.dapr.io``), carrying the chart's conversion stanza: service namespace
``replaceme`` and no ``caBundle``. The last tests serve the webhook over TLS on loopback and let
the API server call it: that shows the patched namespace and ``caBundle`` are what the API server
needs to reach and trust the webhook, and that the review answers have the shape it expects.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import secrets
import ssl
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from kubernetes import client

from daprplane.core.health import Target
from daprplane.core.kube.client import new_api_client
from daprplane.core.security.anchors import StaticTrustAnchors, TrustBundle
from daprplane.plugins.operator.conversion import review_response
from daprplane.plugins.operator.crd_patch import (
    ConversionPatchError,
    ConversionWebhookSync,
    patch_conversion_webhook,
)
from daprplane.plugins.operator.webhook import conversion_application
from tests.integration.launchers import free_port
from tests.k8s.cluster import KubeCluster, raw_request
from tests.pki import TlsCA

pytestmark = pytest.mark.k8s

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
CLIENT_CONFIG_PATH = "/spec/conversion/webhook/clientConfig"
STRING = {"type": "string"}

V1ALPHA1_SCHEMA = {
    "type": "object",
    "properties": {
        "apiVersion": STRING,
        "kind": STRING,
        "metadata": {"type": "object"},
        "scopes": {"type": "array", "items": STRING},
        "spec": {
            "type": "object",
            "required": ["pubsubname", "route", "topic"],
            "properties": {
                "pubsubname": STRING,
                "topic": STRING,
                "route": STRING,
                "deadLetterTopic": STRING,
                "metadata": {"type": "object", "additionalProperties": STRING},
                "bulkSubscribe": {
                    "type": "object",
                    "required": ["enabled"],
                    "properties": {
                        "enabled": {"type": "boolean"},
                        "maxMessagesCount": {"type": "integer", "format": "int32"},
                        "maxAwaitDurationMs": {"type": "integer", "format": "int32"},
                    },
                },
            },
        },
    },
}
V2ALPHA1_SCHEMA = {
    "type": "object",
    "properties": {
        **V1ALPHA1_SCHEMA["properties"],  # type: ignore[dict-item]
        "spec": {
            "type": "object",
            "required": ["pubsubname", "routes", "topic"],
            "properties": {
                **{
                    k: v
                    for k, v in V1ALPHA1_SCHEMA["properties"]["spec"]["properties"].items()  # type: ignore[index]
                    if k != "route"
                },
                "routes": {
                    "type": "object",
                    "properties": {
                        "default": STRING,
                        "rules": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["match", "path"],
                                "properties": {"match": STRING, "path": STRING},
                            },
                        },
                    },
                },
            },
        },
    },
}


def subscription_crd(group: str, *, conversion: bool = True, port: int = 443) -> dict[str, Any]:
    """The chart's Subscription CRD, moved to ``group``."""
    crd: dict[str, Any] = {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"subscriptions.{group}",
            "labels": {"app.kubernetes.io/part-of": "dapr"},
        },
        "spec": {
            "group": group,
            "names": {
                "kind": "Subscription",
                "listKind": "SubscriptionList",
                "plural": "subscriptions",
                "singular": "subscription",
            },
            "scope": "Namespaced",
            "versions": [
                {
                    "name": "v1alpha1",
                    "served": True,
                    "storage": False,
                    "schema": {"openAPIV3Schema": V1ALPHA1_SCHEMA},
                },
                {
                    "name": "v2alpha1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": V2ALPHA1_SCHEMA},
                },
            ],
        },
    }
    if conversion:
        crd["spec"]["conversion"] = {
            "strategy": "Webhook",
            "webhook": {
                "clientConfig": {
                    "service": {
                        "namespace": "replaceme",
                        "name": "dapr-webhook",
                        "path": "/convert",
                        "port": port,
                    }
                },
                "conversionReviewVersions": ["v1", "v2alpha1"],
            },
        }
    return crd


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def crd_exists(api: Any, name: str) -> bool:
    try:
        raw_request(api, "GET", f"{CRDS}/{name}")
    except client.ApiException as error:
        if error.status == 404:
            return False
        raise
    return True


def established(api: Any, name: str) -> bool:
    crd = raw_request(api, "GET", f"{CRDS}/{name}")
    conditions = crd.get("status", {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


def create_crd(api: Any, crd: dict[str, Any]) -> str:
    name = crd["metadata"]["name"]
    raw_request(api, "POST", CRDS, body=crd)
    wait_until(lambda: established(api, name), f"CRD {name} to be established")
    return str(name)


def delete_crd(api: Any, name: str) -> None:
    with contextlib.suppress(client.ApiException):
        raw_request(api, "DELETE", f"{CRDS}/{name}")
    wait_until(lambda: not crd_exists(api, name), f"CRD {name} to be deleted")


def client_config(api: Any, name: str) -> dict[str, Any]:
    crd = raw_request(api, "GET", f"{CRDS}/{name}")
    return dict(crd["spec"]["conversion"]["webhook"]["clientConfig"])


def resource_version(api: Any, name: str) -> str:
    return str(raw_request(api, "GET", f"{CRDS}/{name}")["metadata"]["resourceVersion"])


def new_anchors() -> bytes:
    return TrustBundle.from_pem(TlsCA("anchors").cert_pem).pem


@pytest.fixture
def group() -> str:
    return f"t{secrets.token_hex(5)}.dapr.io"


@pytest.fixture
def subscription_crd_name(kube_api: Any, group: str) -> Iterator[str]:
    name = create_crd(kube_api, subscription_crd(group))
    yield name
    delete_crd(kube_api, name)


@pytest.fixture
async def api(kube_cluster: KubeCluster) -> AsyncIterator[Any]:
    api = new_api_client(str(kube_cluster.kubeconfig), environ={})
    try:
        yield api
    finally:
        await api.close()


# -- patch_conversion_webhook --------------------------------------------------------------------


def test_the_api_server_accepts_replace_of_a_missing_ca_bundle(
    kube_api: Any, subscription_crd_name: str
) -> None:
    # Why the patch may use "replace" for the caBundle that the chart's CRD does not have.
    assert "caBundle" not in client_config(kube_api, subscription_crd_name)
    pem = new_anchors()
    raw_request(
        kube_api,
        "PATCH",
        f"{CRDS}/{subscription_crd_name}",
        body=[
            {
                "op": "replace",
                "path": f"{CLIENT_CONFIG_PATH}/caBundle",
                "value": base64.b64encode(pem).decode(),
            }
        ],
        content_type="application/json-patch+json",
    )
    assert base64.b64decode(client_config(kube_api, subscription_crd_name)["caBundle"]) == pem


async def test_patch_writes_namespace_and_ca_bundle_once(
    kube_api: Any, api: Any, subscription_crd_name: str
) -> None:
    anchors = new_anchors()
    assert await patch_conversion_webhook(api, "dapr-system", anchors, subscription_crd_name)
    config = client_config(kube_api, subscription_crd_name)
    assert config == {
        "service": {
            "namespace": "dapr-system",
            "name": "dapr-webhook",
            "path": "/convert",
            "port": 443,
        },
        "caBundle": base64.b64encode(anchors).decode(),
    }

    written = resource_version(kube_api, subscription_crd_name)
    assert not await patch_conversion_webhook(api, "dapr-system", anchors, subscription_crd_name)
    assert resource_version(kube_api, subscription_crd_name) == written

    rotated = new_anchors() + anchors
    assert await patch_conversion_webhook(api, "dapr-system", rotated, subscription_crd_name)
    config = client_config(kube_api, subscription_crd_name)
    assert base64.b64decode(config["caBundle"]) == rotated
    assert config["service"]["namespace"] == "dapr-system"

    assert await patch_conversion_webhook(api, "other", rotated, subscription_crd_name)
    config = client_config(kube_api, subscription_crd_name)
    assert config["service"]["namespace"] == "other"
    assert base64.b64decode(config["caBundle"]) == rotated
    assert not await patch_conversion_webhook(api, "other", rotated, subscription_crd_name)


async def test_a_crd_without_conversion_webhook_is_an_error(
    kube_api: Any, api: Any, group: str
) -> None:
    name = create_crd(kube_api, subscription_crd(group, conversion=False))
    try:
        before = resource_version(kube_api, name)
        with pytest.raises(ConversionPatchError, match=f"CRD {name} has no conversion webhook"):
            await patch_conversion_webhook(api, "dapr-system", new_anchors(), name)
        assert resource_version(kube_api, name) == before
    finally:
        delete_crd(kube_api, name)


async def test_a_missing_crd_is_an_error_with_the_api_server_message(api: Any) -> None:
    name = f"subscriptions.t{secrets.token_hex(5)}.dapr.io"
    with pytest.raises(ConversionPatchError) as raised:
        await patch_conversion_webhook(api, "dapr-system", new_anchors(), name)
    assert str(raised.value) == (
        f"failed to get CRD {name}: "
        f'customresourcedefinitions.apiextensions.k8s.io "{name}" not found'
    )


# -- ConversionWebhookSync -----------------------------------------------------------------------


async def poll(condition: Callable[[], bool], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def test_sync_patches_at_start_and_on_every_anchor_change(
    kube_api: Any, api: Any, group: str, caplog: pytest.LogCaptureFixture
) -> None:
    name = create_crd(kube_api, subscription_crd(group))
    anchors = StaticTrustAnchors.from_pem(new_anchors())
    target = Target("operator-webhook")
    sync = ConversionWebhookSync(
        api, "dapr-system", anchors, target, crd_name=name, retry_initial=0.1, retry_max=0.5
    )

    def ca_bundle() -> bytes | None:
        if not crd_exists(kube_api, name):
            return None
        value = client_config(kube_api, name).get("caBundle")
        return base64.b64decode(value) if value else None

    task = asyncio.create_task(sync.run())
    try:
        await poll(lambda: target.is_ready, "the target to be ready")
        assert ca_bundle() == anchors.current.pem
        assert client_config(kube_api, name)["service"]["namespace"] == "dapr-system"
        assert sync.patches == 1

        anchors.update(TrustBundle.from_pem(new_anchors()))
        await poll(lambda: ca_bundle() == anchors.current.pem, "the new anchors to be patched")
        assert sync.patches == 2

        # A failed re-patch is logged and retried until it succeeds: the CRD disappears, the
        # anchors change, and the CRD comes back with the chart's placeholders.
        delete_crd(kube_api, name)
        with caplog.at_level(logging.ERROR, logger="dapr.operator"):
            anchors.update(TrustBundle.from_pem(new_anchors()))
            await poll(lambda: "not found; retrying in" in caplog.text, "a failure to be logged")
            create_crd(kube_api, subscription_crd(group))
            await poll(lambda: ca_bundle() == anchors.current.pem, "the retry to patch")
        assert client_config(kube_api, name)["service"]["namespace"] == "dapr-system"
        assert not task.done()
        assert target.is_ready
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        delete_crd(kube_api, name)


async def test_sync_fails_when_the_first_patch_fails(api: Any, group: str) -> None:
    target = Target("operator-webhook")
    anchors = StaticTrustAnchors.from_pem(new_anchors())
    sync = ConversionWebhookSync(
        api, "dapr-system", anchors, target, crd_name=f"subscriptions.{group}"
    )
    with pytest.raises(ConversionPatchError, match="not found"):
        await asyncio.wait_for(sync.run(), 30)
    assert not target.is_ready


# -- the API server converting through the webhook -----------------------------------------------


def aliased_application(group: str) -> web.Application:
    """:func:`review_response` for Subscriptions of ``group``, seen as ``dapr.io`` ones.

    The converter serves ``dapr.io`` only, and the test cluster may be shared with tests that
    install the real ``subscriptions.dapr.io``: the throwaway group is renamed on the way in and
    back on the way out.
    """

    def rename(value: Any, old: str, new: str) -> Any:
        if isinstance(value, str) and value.startswith(f"{old}/"):
            return f"{new}/{value.removeprefix(old + '/')}"
        return value

    async def convert(request: web.Request) -> web.Response:
        review = await request.json()
        body = review["request"]
        body["desiredAPIVersion"] = rename(body["desiredAPIVersion"], group, "dapr.io")
        for obj in body["objects"]:
            obj["apiVersion"] = rename(obj["apiVersion"], group, "dapr.io")
        answer = review_response(review)
        for obj in answer["response"].get("convertedObjects", []):
            obj["apiVersion"] = rename(obj["apiVersion"], "dapr.io", group)
        return web.json_response(answer)

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/convert", convert)
    return app


@contextlib.asynccontextmanager
async def serving_webhook(
    app: web.Application, directory: Path, namespace: str, port: int
) -> AsyncIterator[bytes]:
    """``app`` over TLS on 127.0.0.1 with a certificate for ``dapr-webhook.<ns>.svc``; yields
    the PEM of the CA that issued it."""
    authority = TlsCA("webhook-anchors")
    pair = authority.issue("dapr-webhook", hosts=[f"dapr-webhook.{namespace}.svc"], server=True)
    cert, key = pair.write(directory, "webhook")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", port, ssl_context=context).start()
        yield authority.cert_pem
    finally:
        await runner.cleanup()


@pytest.fixture
def webhook_crd(kube_api: Any, group: str, kube_namespace: str) -> Iterator[tuple[str, int]]:
    """The CRD, pointing at a free loopback port through ``dapr-webhook.<ns>.svc``."""
    port = free_port()
    # The API server reaches the Service through an ExternalName on loopback.
    raw_request(
        kube_api,
        "POST",
        f"/api/v1/namespaces/{kube_namespace}/services",
        body={
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "dapr-webhook"},
            "spec": {"type": "ExternalName", "externalName": "localhost"},
        },
    )
    name = create_crd(kube_api, subscription_crd(group, port=port))
    yield name, port
    delete_crd(kube_api, name)


def call(api: Any, method: str, path: str, body: Any = None) -> Any:
    """A blocking API call, off the event loop that serves the webhook it may need."""
    return asyncio.to_thread(raw_request, api, method, path, body=body)


V1_ORDERS = {
    "kind": "Subscription",
    "metadata": {"name": "orders"},
    "spec": {
        "pubsubname": "pubsub",
        "topic": "orders",
        "route": "/orders",
        "deadLetterTopic": "poison",
        "metadata": {"rawPayload": "true"},
        "bulkSubscribe": {"enabled": True, "maxMessagesCount": 10},
    },
    "scopes": ["app1"],
}
V2_WIDGETS = {
    "kind": "Subscription",
    "metadata": {"name": "widgets"},
    "spec": {
        "pubsubname": "pubsub",
        "topic": "widgets",
        "routes": {
            "rules": [{"match": 'event.type == "big"', "path": "/big"}],
            "default": "/widgets",
        },
    },
}


async def test_the_api_server_converts_through_the_patched_webhook(
    kube_api: Any,
    api: Any,
    group: str,
    kube_namespace: str,
    webhook_crd: tuple[str, int],
    tmp_path: Path,
) -> None:
    name, port = webhook_crd
    collection = f"/apis/{group}/{{}}/namespaces/{kube_namespace}/subscriptions"
    app = aliased_application(group)
    async with serving_webhook(app, tmp_path, kube_namespace, port) as anchors:
        assert await patch_conversion_webhook(api, kube_namespace, anchors, name)

        # Written as v1alpha1, stored as v2alpha1: converted on the way in.
        v1 = {**V1_ORDERS, "apiVersion": f"{group}/v1alpha1"}
        await call(kube_api, "POST", collection.format("v1alpha1"), v1)
        stored = await call(kube_api, "GET", collection.format("v2alpha1") + "/orders")
        assert stored["apiVersion"] == f"{group}/v2alpha1"
        assert stored["spec"] == {
            **{k: v for k, v in V1_ORDERS["spec"].items() if k != "route"},  # type: ignore[attr-defined]
            "routes": {"default": "/orders"},
        }
        assert stored["scopes"] == ["app1"]

        # Read back as v1alpha1: the round trip is lossless.
        back = await call(kube_api, "GET", collection.format("v1alpha1") + "/orders")
        assert back["apiVersion"] == f"{group}/v1alpha1"
        assert back["spec"] == V1_ORDERS["spec"]

        # A v2alpha1 object with rules reads as v1alpha1 with the default route, in a list too.
        v2 = {**V2_WIDGETS, "apiVersion": f"{group}/v2alpha1"}
        await call(kube_api, "POST", collection.format("v2alpha1"), v2)
        listed = await call(kube_api, "GET", collection.format("v1alpha1"))
        widgets = next(o for o in listed["items"] if o["metadata"]["name"] == "widgets")
        assert widgets["apiVersion"] == f"{group}/v1alpha1"
        assert widgets["spec"] == {"pubsubname": "pubsub", "topic": "widgets", "route": "/widgets"}
        stored = await call(kube_api, "GET", collection.format("v2alpha1") + "/widgets")
        assert stored["spec"]["routes"] == V2_WIDGETS["spec"]["routes"]  # type: ignore[index]


async def test_the_api_server_reports_the_webhook_failure_message(
    kube_api: Any,
    api: Any,
    group: str,
    kube_namespace: str,
    webhook_crd: tuple[str, int],
    tmp_path: Path,
) -> None:
    # The real application serves dapr.io only: the API server passes its refusal on.
    name, port = webhook_crd
    app = conversion_application(logging.getLogger("dapr.operator"))
    async with serving_webhook(app, tmp_path, kube_namespace, port) as anchors:
        assert await patch_conversion_webhook(api, kube_namespace, anchors, name)
        with pytest.raises(client.ApiException) as raised:
            await call(
                kube_api,
                "POST",
                f"/apis/{group}/v1alpha1/namespaces/{kube_namespace}/subscriptions",
                {**V1_ORDERS, "apiVersion": f"{group}/v1alpha1"},
            )
    assert raised.value.status == 500
    assert (
        f"conversion webhook for {group}/v1alpha1, Kind=Subscription failed: "
        f"unsupported desiredAPIVersion '{group}/v2alpha1': "
        "expected dapr.io/v1alpha1 or dapr.io/v2alpha1"
    ) in str(raised.value.body)


async def test_without_the_patch_the_api_server_cannot_reach_the_webhook(
    kube_api: Any,
    group: str,
    kube_namespace: str,
    webhook_crd: tuple[str, int],
    tmp_path: Path,
) -> None:
    _, port = webhook_crd
    async with serving_webhook(aliased_application(group), tmp_path, kube_namespace, port):
        with pytest.raises(client.ApiException) as raised:
            await call(
                kube_api,
                "POST",
                f"/apis/{group}/v1alpha1/namespaces/{kube_namespace}/subscriptions",
                {**V1_ORDERS, "apiVersion": f"{group}/v1alpha1"},
            )
    assert raised.value.status == 500
    assert "conversion webhook" in str(raised.value.body)
