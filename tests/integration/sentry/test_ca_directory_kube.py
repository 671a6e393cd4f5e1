"""Kubernetes mode keeps the same rule as the CA directory: a ``dapr-trust-bundle`` Secret with
some of ``ca.crt``, ``issuer.crt`` and ``issuer.key`` but not all is refused, never generated
over; an empty value is invalid, not missing. Against a real API server."""

from __future__ import annotations

import base64
import datetime
import itertools
from typing import Any

import pytest
from kubernetes import client

from daprplane.plugins.sentry.ca import CaSettings, CredentialsError, JwtSettings
from daprplane.plugins.sentry.ca import bundle as bundle_mod
from daprplane.plugins.sentry.ca import kube as kube_store
from tests.k8s.cluster import KubeCluster

pytestmark = pytest.mark.k8s

NAME = "dapr-trust-bundle"
KEYS = ("ca.crt", "issuer.crt", "issuer.key")
RECOVERY = "remove all three to let sentry generate a new CA, or restore the missing ones"
PARTIAL_SETS = [subset for size in (1, 2) for subset in itertools.combinations(KEYS, size)]


def _settings(namespace: str) -> CaSettings:
    return CaSettings(
        trust_domain="cluster.local",
        namespace=namespace,
        allowed_clock_skew=datetime.timedelta(minutes=15),
        jwt=JwtSettings(False, "", "RS256"),
    )


def _create(api: Any, namespace: str, data: dict[str, bytes]) -> None:
    core = client.CoreV1Api(api)
    encoded = {k: base64.b64encode(v).decode() for k, v in data.items()}
    core.create_namespaced_secret(namespace, {"metadata": {"name": NAME}, "data": encoded})
    core.create_namespaced_config_map(namespace, {"metadata": {"name": NAME}})


def _stored(api: Any, namespace: str) -> tuple[Any, Any]:
    core = client.CoreV1Api(api)
    secret = core.read_namespaced_secret(NAME, namespace)
    configmap = core.read_namespaced_config_map(NAME, namespace)
    return (
        (secret.metadata.resource_version, secret.data),
        (configmap.metadata.resource_version, configmap.data),
    )


async def _load_error(cluster: KubeCluster, namespace: str) -> str:
    store = kube_store.KubeCredentialStore(lambda: cluster.aio_api_client(), namespace)
    try:
        with pytest.raises(CredentialsError) as caught:
            await store.load(_settings(namespace))
    finally:
        await store.close()
    return str(caught.value)


def _bundle_data(namespace: str) -> dict[str, bytes]:
    bundle = bundle_mod.generate("cluster.local", namespace, datetime.timedelta(minutes=1))
    return dict(
        zip(
            KEYS,
            (bundle.trust_anchors_pem, bundle.issuer_chain_pem, bundle.issuer_key_pem),
            strict=True,
        )
    )


@pytest.mark.parametrize("present", PARTIAL_SETS, ids="+".join)
async def test_partial_secret_is_refused_and_untouched(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, present: tuple[str, ...]
) -> None:
    data = _bundle_data(kube_namespace)
    _create(kube_api, kube_namespace, {key: data[key] for key in present})
    before = _stored(kube_api, kube_namespace)
    missing = [key for key in KEYS if key not in present]

    message = await _load_error(kube_cluster, kube_namespace)

    assert message == (
        f"incomplete CA in secret {kube_namespace}/{NAME}: missing {', '.join(missing)} "
        f"(found {', '.join(present)}); {RECOVERY}"
    )
    assert _stored(kube_api, kube_namespace) == before


async def test_empty_value_is_invalid_not_missing(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any
) -> None:
    data = _bundle_data(kube_namespace)
    data["issuer.key"] = b""
    _create(kube_api, kube_namespace, data)
    before = _stored(kube_api, kube_namespace)

    message = await _load_error(kube_cluster, kube_namespace)

    assert message == (
        f"invalid CA in secret {kube_namespace}/{NAME}: issuer.key is empty; restore the "
        "contents, or remove all three to let sentry generate a new CA"
    )
    assert _stored(kube_api, kube_namespace) == before
