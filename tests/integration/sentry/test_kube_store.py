"""Kubernetes-mode CA storage (Secret + ConfigMap ``dapr-trust-bundle``) and configuration."""

from __future__ import annotations

import asyncio
import base64
import datetime
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from daprplane.plugins.sentry import config as config_mod
from daprplane.plugins.sentry.ca import CaSettings, CredentialsError, JwtSettings
from daprplane.plugins.sentry.ca import bundle as bundle_mod
from daprplane.plugins.sentry.ca import kube as kube_store
from tests.k8s.cluster import KubeCluster
from tests.k8s.helpers import install_crds

pytestmark = pytest.mark.k8s

CRDS = Path(__file__).resolve().parents[3] / "deploy" / "crds" / "configuration.yaml"
NAME = "dapr-trust-bundle"


def settings(namespace: str, jwt: bool = False) -> CaSettings:
    return CaSettings(
        trust_domain="cluster.local",
        namespace=namespace,
        allowed_clock_skew=datetime.timedelta(minutes=15),
        jwt=JwtSettings(jwt, "", "RS256"),
    )


def create_objects(api: Any, namespace: str, secret: bool = True, configmap: bool = True) -> None:
    core = client.CoreV1Api(api)
    if secret:
        core.create_namespaced_secret(namespace, {"metadata": {"name": NAME}, "type": "Opaque"})
    if configmap:
        core.create_namespaced_config_map(namespace, {"metadata": {"name": NAME}})


def read_secret(api: Any, namespace: str) -> tuple[dict[str, bytes], str, dict[str, str]]:
    secret = client.CoreV1Api(api).read_namespaced_secret(NAME, namespace)
    data = {k: base64.b64decode(v) for k, v in (secret.data or {}).items()}
    return data, secret.metadata.resource_version, secret.metadata.annotations or {}


def read_configmap(api: Any, namespace: str) -> tuple[dict[str, str], str]:
    configmap = client.CoreV1Api(api).read_namespaced_config_map(NAME, namespace)
    return configmap.data or {}, configmap.metadata.resource_version


def write_secret(api: Any, namespace: str, data: dict[str, bytes]) -> None:
    client.CoreV1Api(api).patch_namespaced_secret(
        NAME, namespace, {"data": {k: base64.b64encode(v).decode() for k, v in data.items()}}
    )


def write_configmap(api: Any, namespace: str, data: dict[str, str]) -> None:
    client.CoreV1Api(api).patch_namespaced_config_map(NAME, namespace, {"data": data})


def store(
    cluster: KubeCluster, namespace: str, token: str | None = None
) -> kube_store.KubeCredentialStore:
    return kube_store.KubeCredentialStore(lambda: cluster.aio_api_client(token), namespace)


async def load(cluster: KubeCluster, namespace: str, jwt: bool = False) -> Any:
    instance = store(cluster, namespace)
    try:
        return await instance.load(settings(namespace, jwt))
    finally:
        await instance.close()


async def test_generates_into_empty_objects_then_keeps_them(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create_objects(kube_api, kube_namespace)
    first = await load(kube_cluster, kube_namespace)
    assert first.generated
    data, version, annotations = read_secret(kube_api, kube_namespace)
    assert set(data) == {"ca.crt", "issuer.crt", "issuer.key"}
    assert data["ca.crt"] == first.bundle.trust_anchors_pem
    assert data["issuer.crt"] == first.bundle.issuer_chain_pem
    published, cm_version = read_configmap(kube_api, kube_namespace)
    assert published == {"ca.crt": first.bundle.trust_anchors_pem.decode()}
    assert kube_store.GENERATED_ANNOTATION in annotations
    bundle_mod.verify(data["ca.crt"], data["issuer.crt"], data["issuer.key"])

    # A restart: same root, nothing written.
    second = await load(kube_cluster, kube_namespace)
    assert not second.generated
    assert second.bundle.trust_anchors_pem == first.bundle.trust_anchors_pem
    assert read_secret(kube_api, kube_namespace)[1] == version
    assert read_configmap(kube_api, kube_namespace)[1] == cm_version


async def test_missing_objects_are_errors(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    with pytest.raises(CredentialsError) as info:
        await load(kube_cluster, kube_namespace)
    assert str(info.value) == (
        'failed to get trust bundle secret: secrets "dapr-trust-bundle" not found'
    )
    create_objects(kube_api, kube_namespace, configmap=False)
    with pytest.raises(CredentialsError) as info:
        await load(kube_cluster, kube_namespace)
    assert str(info.value) == (
        'failed to get trust bundle configmap: configmaps "dapr-trust-bundle" not found'
    )


async def test_bring_your_own_bundle_is_verified_not_rewritten(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create_objects(kube_api, kube_namespace)
    own = bundle_mod.generate("example.org", kube_namespace, datetime.timedelta(minutes=1))
    write_secret(
        kube_api,
        kube_namespace,
        {
            "ca.crt": own.trust_anchors_pem,
            "issuer.crt": own.issuer_chain_pem,
            "issuer.key": own.issuer_key_pem,
        },
    )
    write_configmap(kube_api, kube_namespace, {"ca.crt": own.trust_anchors_pem.decode()})
    version = read_secret(kube_api, kube_namespace)[1]
    loaded = await load(kube_cluster, kube_namespace)
    assert not loaded.generated
    assert loaded.bundle.trust_anchors_pem == own.trust_anchors_pem
    assert read_secret(kube_api, kube_namespace)[1] == version

    other = bundle_mod.generate("example.org", kube_namespace, datetime.timedelta(minutes=1))
    write_secret(kube_api, kube_namespace, {"issuer.key": other.issuer_key_pem})
    with pytest.raises(CredentialsError, match="issuer key does not match issuer certificate"):
        await load(kube_cluster, kube_namespace)


async def test_configmap_mismatch_regenerates_like_dapr(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create_objects(kube_api, kube_namespace)
    own = bundle_mod.generate("example.org", kube_namespace, datetime.timedelta(minutes=1))
    write_secret(
        kube_api,
        kube_namespace,
        {
            "ca.crt": own.trust_anchors_pem,
            "issuer.crt": own.issuer_chain_pem,
            "issuer.key": own.issuer_key_pem,
        },
    )
    write_configmap(kube_api, kube_namespace, {"ca.crt": "something else"})
    loaded = await load(kube_cluster, kube_namespace)
    assert loaded.generated
    assert loaded.bundle.trust_anchors_pem != own.trust_anchors_pem
    assert read_configmap(kube_api, kube_namespace)[0]["ca.crt"] == (
        loaded.bundle.trust_anchors_pem.decode()
    )


async def test_configmap_behind_a_sentry_written_secret_is_caught_up(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    """A ConfigMap still waiting for a peer's write is brought in line, not a new CA."""
    create_objects(kube_api, kube_namespace)
    first = await load(kube_cluster, kube_namespace)
    write_configmap(kube_api, kube_namespace, {"ca.crt": ""})
    again = await load(kube_cluster, kube_namespace)
    assert not again.generated
    assert again.bundle.trust_anchors_pem == first.bundle.trust_anchors_pem
    assert read_configmap(kube_api, kube_namespace)[0]["ca.crt"] == (
        first.bundle.trust_anchors_pem.decode()
    )


@pytest.mark.parametrize("replicas", [2, 5])
async def test_replicas_racing_on_an_empty_secret_agree(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kube_api: Any,
    replicas: int,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "dapr.sentry.ca")
    create_objects(kube_api, kube_namespace)
    stores = [store(kube_cluster, kube_namespace) for _ in range(replicas)]
    try:
        results = await asyncio.gather(
            *(s.load(settings(kube_namespace, jwt=True)) for s in stores)
        )
    finally:
        await asyncio.gather(*(s.close() for s in stores))
    anchors = {r.bundle.trust_anchors_pem for r in results}
    issuers = {r.bundle.issuer_chain_pem for r in results}
    kids = {r.jwt.kid for r in results}
    assert len(anchors) == 1 and len(issuers) == 1 and len(kids) == 1
    assert sum(r.generated for r in results) == 1
    # The others did generate, lost the UPDATE and adopted the winner's bundle.
    lost = [r for r in caplog.records if "updated by another sentry" in r.getMessage()]
    assert len(lost) >= replicas - 1
    data, _, _ = read_secret(kube_api, kube_namespace)
    assert data["ca.crt"] in anchors and data["issuer.crt"] in issuers
    published, _ = read_configmap(kube_api, kube_namespace)
    assert published["ca.crt"].encode() in anchors
    assert published["jwks.json"].encode() == data["jwks.json"]


async def test_jwt_material_is_stored_and_published(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create_objects(kube_api, kube_namespace)
    first = await load(kube_cluster, kube_namespace, jwt=True)
    data, version, _ = read_secret(kube_api, kube_namespace)
    assert data["jwt.key"] == first.jwt.key_pem and data["jwks.json"] == first.jwt.jwks_json
    assert read_configmap(kube_api, kube_namespace)[0]["jwks.json"] == first.jwt.jwks_json.decode()
    second = await load(kube_cluster, kube_namespace, jwt=True)
    assert second.jwt.kid == first.jwt.kid and not second.generated
    assert read_secret(kube_api, kube_namespace)[1] == version
    # Stored JWT material is checked even with JWT disabled.
    write_secret(kube_api, kube_namespace, {"jwks.json": b'{"keys":[]}'})
    with pytest.raises(CredentialsError, match="JWKS"):
        await load(kube_cluster, kube_namespace)


async def test_secret_changes_are_noticed(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    create_objects(kube_api, kube_namespace)
    instance = store(kube_cluster, kube_namespace)
    calls: list[float] = []
    changed = asyncio.Event()

    async def on_change() -> None:
        calls.append(asyncio.get_running_loop().time())
        await instance.load(settings(kube_namespace))
        changed.set()

    try:
        await instance.load(settings(kube_namespace))  # generates and writes: no reload for that
        task = asyncio.create_task(instance.watch(on_change))
        await asyncio.sleep(1.0)
        assert calls == []
        own = bundle_mod.generate("example.org", kube_namespace, datetime.timedelta(minutes=1))
        write_configmap(kube_api, kube_namespace, {"ca.crt": own.trust_anchors_pem.decode()})
        started = asyncio.get_running_loop().time()
        write_secret(
            kube_api,
            kube_namespace,
            {
                "ca.crt": own.trust_anchors_pem,
                "issuer.crt": own.issuer_chain_pem,
                "issuer.key": own.issuer_key_pem,
            },
        )
        await asyncio.wait_for(changed.wait(), 2.0)
        assert calls[0] - started < 2.0
        await asyncio.sleep(0.5)
        assert len(calls) == 1
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await instance.close()


@pytest.fixture
def sentry_rbac(kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any) -> Iterator[str]:
    """Dapr's Role for sentry in its namespace; yields a token of sentry's ServiceAccount."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        kube_namespace,
        {
            "metadata": {"name": "dapr-sentry"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["secrets"],
                    "resourceNames": [NAME],
                    "verbs": ["get", "update", "delete"],
                },
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [NAME],
                    "verbs": ["get", "update", "watch", "list"],
                },
                {
                    "apiGroups": ["dapr.io"],
                    "resources": ["configurations"],
                    "verbs": ["list", "get", "watch"],
                },
            ],
        },
    )
    rbac.create_namespaced_role_binding(
        kube_namespace,
        {
            "metadata": {"name": "dapr-sentry"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "dapr-sentry",
            },
            "subjects": [
                {"kind": "ServiceAccount", "name": "dapr-sentry", "namespace": kube_namespace}
            ],
        },
    )
    yield kube_cluster.service_account_token(kube_namespace, "dapr-sentry")


async def test_works_with_the_dapr_chart_role(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, sentry_rbac: str
) -> None:
    """Get and update are enough; without list/watch on Secrets, changes are polled."""
    create_objects(kube_api, kube_namespace)
    instance = store(kube_cluster, kube_namespace, sentry_rbac)
    changed = asyncio.Event()
    try:
        first = await instance.load(settings(kube_namespace))
        assert first.generated
        task = asyncio.create_task(instance.watch(changed.set))
        await asyncio.sleep(0.3)
        write_secret(kube_api, kube_namespace, {"extra": b"x"})
        await asyncio.wait_for(changed.wait(), 2.5)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    finally:
        await instance.close()


@pytest.fixture(scope="module")
def crds(kube_cluster: KubeCluster) -> None:
    with kube_cluster.api_client() as api:
        install_crds(api, [CRDS])


async def test_configuration_from_the_cluster(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, crds: None
) -> None:
    client.CustomObjectsApi(kube_api).create_namespaced_custom_object(
        "dapr.io",
        "v1alpha1",
        kube_namespace,
        "configurations",
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "daprsystem"},
            "spec": {
                "mtls": {
                    "enabled": True,
                    "workloadCertTTL": "1h",
                    "allowedClockSkew": "1m",
                    "controlPlaneTrustDomain": "example.org",
                    "sentryAddress": "dapr-sentry.dapr-system.svc.cluster.local:443",
                }
            },
        },
    )
    async with kube_cluster.aio_api_client() as api:
        env = {"NAMESPACE": kube_namespace}
        loaded = await kube_store.fetch_configuration(api, "daprsystem", environ=env)
        assert loaded.workload_cert_ttl == datetime.timedelta(hours=1)
        assert loaded.allowed_clock_skew == datetime.timedelta(minutes=1)
        assert loaded.trust_domain == "example.org"
        with pytest.raises(config_mod.ConfigError) as info:
            await kube_store.fetch_configuration(api, "other", environ=env)
        assert str(info.value) == (
            'loading default config. couldn\'t find config name "other": config CRD not found'
        )
        with pytest.raises(config_mod.ConfigError) as info:
            await kube_store.fetch_configuration(api, "daprsystem", environ={})
        assert str(info.value) == (
            'loading default config. couldn\'t find config name "daprsystem": '
            "'NAMESPACE' environment variable not set"
        )
        with pytest.raises(config_mod.ConfigError, match="environment variable is empty"):
            await kube_store.fetch_configuration(api, "daprsystem", environ={"NAMESPACE": ""})
