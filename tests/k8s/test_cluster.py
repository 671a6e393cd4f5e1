"""The k8s test cluster itself: real API semantics the control plane relies on."""

from __future__ import annotations

import asyncio
import ssl
import uuid
from pathlib import Path

import pytest
from aiohttp import web
from kubernetes import client, watch

from tests.pki import TlsCA

from .cluster import KubeCluster
from .helpers import (
    admission_response,
    delete_webhook,
    install_crds,
    register_mutating_webhook,
    wait_for,
)

pytestmark = pytest.mark.k8s

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.test.daprplane.io"},
    "spec": {
        "group": "test.daprplane.io",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {"size": {"type": "integer"}},
                            }
                        },
                    }
                },
            }
        ],
    },
}


def _pod(name: str, labels: dict[str, str] | None = None) -> client.V1Pod:
    return client.V1Pod(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        spec=client.V1PodSpec(containers=[client.V1Container(name="app", image="app:latest")]),
    )


def test_version_and_kubeconfig(kube_cluster: KubeCluster) -> None:
    from kubernetes import config

    # The admin kubeconfig works with the stock loader, without ~/.kube.
    with config.new_client_from_config(config_file=str(kube_cluster.kubeconfig)) as api:
        assert client.VersionApi(api).get_code().git_version.startswith("v1.")


def test_crd_and_custom_object(kube_api: client.ApiClient, kube_namespace: str) -> None:
    assert install_crds(kube_api, [WIDGET_CRD]) == ["widgets.test.daprplane.io"]
    custom = client.CustomObjectsApi(kube_api)
    body = {
        "apiVersion": "test.daprplane.io/v1alpha1",
        "kind": "Widget",
        "metadata": {"name": "w1"},
        "spec": {"size": 3},
    }
    custom.create_namespaced_custom_object(
        "test.daprplane.io", "v1alpha1", kube_namespace, "widgets", body
    )
    got = custom.get_namespaced_custom_object(
        "test.daprplane.io", "v1alpha1", kube_namespace, "widgets", "w1"
    )
    assert got["spec"] == {"size": 3}
    assert got["metadata"]["uid"]


def test_pod_roundtrip(kube_api: client.ApiClient, kube_namespace: str) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_pod(kube_namespace, _pod("p1", {"app": "p1"}))
    pod = core.read_namespaced_pod("p1", kube_namespace)
    assert pod.metadata.labels == {"app": "p1"}
    # The ServiceAccount admission plugin ran (the default SA exists).
    assert pod.spec.service_account_name == "default"
    assert pod.status.phase == "Pending"  # no scheduler or kubelet


def test_token_request_and_review(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(
        kube_namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="app-sa"))
    )
    pod = _pod("sentry-client")
    pod.spec.service_account_name = "app-sa"
    pod = core.create_namespaced_pod(kube_namespace, pod)
    token = kube_cluster.service_account_token(
        kube_namespace,
        "app-sa",
        audiences=["dapr.io/sentry"],
        bound_object={
            "kind": "Pod",
            "apiVersion": "v1",
            "name": pod.metadata.name,
            "uid": pod.metadata.uid,
        },
    )
    auth = client.AuthenticationV1Api(kube_api)

    def review(audience: str) -> client.V1TokenReviewStatus:
        spec = client.V1TokenReviewSpec(token=token, audiences=[audience])
        return auth.create_token_review(client.V1TokenReview(spec=spec)).status

    status = review("dapr.io/sentry")
    assert status.authenticated, status.error
    assert status.user.username == f"system:serviceaccount:{kube_namespace}:app-sa"
    assert status.audiences == ["dapr.io/sentry"]
    assert status.user.extra["authentication.kubernetes.io/pod-name"] == ["sentry-client"]
    assert not review("some-other-audience").authenticated


def test_rbac_denies_then_allows(kube_cluster: KubeCluster, kube_namespace: str) -> None:
    rbac_api = client.RbacAuthorizationV1Api
    with (
        kube_cluster.api_client() as admin,
        kube_cluster.user_api_client("alice", ["dev"]) as alice,
        kube_cluster.service_account_api_client(kube_namespace, "reader") as sa,
    ):
        for api in (alice, sa):
            with pytest.raises(client.ApiException) as denied:
                client.CoreV1Api(api).list_namespaced_pod(kube_namespace)
            assert denied.value.status == 403

        rbac = rbac_api(admin)
        rbac.create_namespaced_role(
            kube_namespace,
            {
                "metadata": {"name": "pod-reader"},
                "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
            },
        )
        rbac.create_namespaced_role_binding(
            kube_namespace,
            {
                "metadata": {"name": "pod-reader"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "Role",
                    "name": "pod-reader",
                },
                "subjects": [
                    {"kind": "Group", "name": "dev", "apiGroup": "rbac.authorization.k8s.io"},
                    {"kind": "ServiceAccount", "name": "reader", "namespace": kube_namespace},
                ],
            },
        )

        def can_list(api: client.ApiClient) -> bool:
            try:
                client.CoreV1Api(api).list_namespaced_pod(kube_namespace)
            except client.ApiException as exc:
                if exc.status != 403:
                    raise
                return False
            return True

        wait_for(lambda: can_list(alice) and can_list(sa), timeout=10, message="RBAC grant")
        with pytest.raises(client.ApiException) as denied:
            client.CoreV1Api(alice).list_namespaced_secret(kube_namespace)
        assert denied.value.status == 403


def test_watch_from_compacted_revision_gets_410(
    kube_cluster: KubeCluster, kube_api: client.ApiClient, kube_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    cm = core.create_namespaced_config_map(
        kube_namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cm"), data={"n": "0"}),
    )

    def bump(n: int) -> None:
        core.patch_namespaced_config_map("cm", kube_namespace, {"data": {"n": str(n)}})

    # A watch runs, sees the updates and ends (as watches do on timeout).
    bump(1)
    bump(2)
    w = watch.Watch()
    seen = []
    for event in w.stream(
        core.list_namespaced_config_map,
        kube_namespace,
        resource_version=cm.metadata.resource_version,
        timeout_seconds=1,
    ):
        seen.append(event["object"].data["n"])
        last_rv = event["object"].metadata.resource_version
        if len(seen) == 2:
            w.stop()
    assert seen == ["1", "2"]

    # Meanwhile more writes happen and etcd is compacted past them.
    bump(3)
    bump(4)
    kube_cluster.compact()

    # Resuming the watch from the last seen resourceVersion: 410 Gone.
    with pytest.raises(client.ApiException) as gone:
        for _ in watch.Watch().stream(
            core.list_namespaced_config_map,
            kube_namespace,
            resource_version=last_rv,
            timeout_seconds=5,
        ):
            pytest.fail("the watch should not deliver events")
    assert gone.value.status == 410

    # A fresh list + watch works again.
    fresh = core.list_namespaced_config_map(kube_namespace)
    assert [c.data["n"] for c in fresh.items] == ["4"]


def _webhook_ssl(tmp_path: Path, ca: TlsCA) -> ssl.SSLContext:
    cert, key = ca.server_cert(("127.0.0.1",)).write(tmp_path, "webhook")
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_mutating_webhook_patches_pod(
    kube_cluster: KubeCluster, kube_namespace: str, tmp_path: Path
) -> None:
    ca = TlsCA("webhook-test-ca")
    reviews: list[dict] = []

    async def mutate(request: web.Request) -> web.Response:
        review = await request.json()
        reviews.append(review)
        patch = [{"op": "add", "path": "/metadata/labels/mutated-by", "value": "test-webhook"}]
        return web.json_response(admission_response(review, patch=patch))

    app = web.Application()
    app.router.add_post("/mutate", mutate)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=_webhook_ssl(tmp_path, ca))
    await site.start()
    port = runner.addresses[0][1]
    name = f"mutate-{uuid.uuid4().hex[:8]}.daprplane.test"
    try:
        async with kube_cluster.aio_api_client() as api:
            from kubernetes.aio import client as aio_client

            # Webhook registration is sync; keep the event loop free for the server.
            def register() -> None:
                with kube_cluster.api_client() as sync_api:
                    register_mutating_webhook(
                        sync_api,
                        name,
                        f"https://127.0.0.1:{port}/mutate",
                        ca.cert_pem,
                        namespace=kube_namespace,
                    )

            await asyncio.to_thread(register)
            core = aio_client.CoreV1Api(api)
            body = _pod("mutated", {"app": "mutated"}).to_dict()

            # The apiserver notices new webhook configurations asynchronously:
            # dry-run until the webhook answers.
            async def active() -> bool:
                pod = await core.create_namespaced_pod(kube_namespace, body, dry_run="All")
                return (pod.metadata.labels or {}).get("mutated-by") == "test-webhook"

            deadline = asyncio.get_running_loop().time() + 15
            while not await active():
                assert asyncio.get_running_loop().time() < deadline, "webhook never called"
                await asyncio.sleep(0.1)

            await core.create_namespaced_pod(kube_namespace, body)
            stored = await core.read_namespaced_pod("mutated", kube_namespace)
            assert stored.metadata.labels == {"app": "mutated", "mutated-by": "test-webhook"}
    finally:
        await asyncio.to_thread(_delete_webhook, kube_cluster, name)
        await runner.cleanup()

    request = reviews[-1]["request"]
    assert request["operation"] == "CREATE"
    assert request["namespace"] == kube_namespace
    assert request["kind"] == {"group": "", "version": "v1", "kind": "Pod"}
    assert request["object"]["metadata"]["name"] == "mutated"


def _delete_webhook(cluster: KubeCluster, name: str) -> None:
    with cluster.api_client() as api:
        delete_webhook(api, name)
