"""The shared Kubernetes client and informer (``daprplane.core.kube``) against a real API server."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from kubernetes import client

from daprplane.core.kube import Informer, KubeApiError, new_api_client, path_of, request
from tests.k8s.cluster import KubeCluster

pytestmark = pytest.mark.k8s


def ed25519_client_kubeconfig(cluster: KubeCluster, directory: Path, server_name: str) -> Path:
    """A kubeconfig with files (not inline data): CA, Ed25519 client certificate and key."""
    client_pair = cluster.ca.issue(
        "ed25519-user", organizations=["system:masters"], client=True, kind="ed25519"
    )
    client_pair.write(directory, "client")
    (directory / "ca.crt").write_bytes(cluster.ca.cert_pem)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "c",
                "cluster": {
                    # An address the serving certificate names only through tls-server-name.
                    "server": cluster.server.replace("127.0.0.1", "localhost"),
                    "certificate-authority": "ca.crt",
                    "tls-server-name": server_name,
                },
            }
        ],
        "users": [
            {"name": "u", "user": {"client-certificate": "client.crt", "client-key": "client.key"}}
        ],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = directory / "kubeconfig"
    path.write_text(json.dumps(config))
    return path


async def test_client_certificate_kubeconfig_with_tls_server_name(
    kube_cluster: KubeCluster, tmp_path: Path
) -> None:
    path = ed25519_client_kubeconfig(kube_cluster, tmp_path / "good", "kubernetes.default.svc")
    api = new_api_client(str(path), environ={})
    try:
        namespace = await request(api, "GET", "/api/v1/namespaces/default")
        assert namespace["metadata"]["name"] == "default"
        review = await request(
            api,
            "POST",
            "/apis/authentication.k8s.io/v1/selfsubjectreviews",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
        )
        assert review["status"]["userInfo"]["username"] == "ed25519-user"
    finally:
        await api.close()

    wrong = ed25519_client_kubeconfig(kube_cluster, tmp_path / "bad", "not-the-apiserver.example")
    api = new_api_client(str(wrong), environ={})
    try:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await request(api, "GET", "/api/v1/namespaces/default")
    finally:
        await api.close()


async def test_api_errors_carry_the_status_message(kube_cluster: KubeCluster) -> None:
    async with kube_cluster.aio_api_client() as api:
        with pytest.raises(KubeApiError) as info:
            await request(
                api, "GET", path_of("api", "v1", "namespaces", "default", "secrets", "nope")
            )
    assert info.value.not_found and str(info.value) == 'secrets "nope" not found'


async def test_informer_follows_changes_and_relists_after_compaction(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "before"}})
    events: list[tuple[str, str]] = []
    async with kube_cluster.aio_api_client() as api:
        informer = Informer(
            api, path_of("api", "v1", "namespaces", kube_namespace, "configmaps"), page_size=1
        )
        informer.add_handler(lambda kind, obj, old: events.append((kind, obj["metadata"]["name"])))
        informer.start()
        assert await informer.wait_synced(10)
        assert informer.get(kube_namespace, "before") is not None

        async def until(predicate: Any) -> None:
            for _ in range(250):
                if predicate():
                    return
                await asyncio.sleep(0.02)
            raise AssertionError(f"events so far: {events}")

        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "live"}})
        await until(lambda: ("ADDED", "live") in events)
        core.patch_namespaced_config_map("live", kube_namespace, {"data": {"a": "b"}})
        await until(lambda: ("MODIFIED", "live") in events)
        assert informer.get(kube_namespace, "live")["data"] == {"a": "b"}

        # Changes while nobody watches, then compaction: resuming gets 410 and lists again.
        await informer.stop()
        core.delete_namespaced_config_map("before", kube_namespace)
        core.create_namespaced_config_map(kube_namespace, {"metadata": {"name": "after"}})
        for i in range(3):
            core.patch_namespaced_config_map("live", kube_namespace, {"data": {"a": str(i)}})
        kube_cluster.compact()
        events.clear()
        informer.start()
        await until(
            lambda: informer.relists >= 1 and informer.get(kube_namespace, "after") is not None
        )
        assert informer.get(kube_namespace, "before") is None
        assert ("DELETED", "before") in events and ("ADDED", "after") in events
        assert informer.get(kube_namespace, "live")["data"] == {"a": "2"}
        names = sorted(obj["metadata"]["name"] for obj in informer)
        assert "before" not in names and {"after", "live"} <= set(names)
        await informer.stop()
