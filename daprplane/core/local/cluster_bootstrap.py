"""What ``daprplane up --kubeconfig`` does in the cluster before, while and after it runs.

Before: check that Dapr's CRDs are installed and that no control plane is installed in the
namespace already; create what the chart would (namespace, ServiceAccounts, ``daprsystem``, the
empty trust bundle, the webhook registration) and the stand-in pods with their tokens. While:
renew the tokens. After: delete the stand-ins (their tokens die with them) and the webhook
registration, so the API server stops calling an injector that is gone; the CA stays, as in a
cluster.

Every step opens its own API client: the supervisor is synchronous, and a client belongs to the
event loop it was made in.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from daprplane.core.kube.client import KubeApiError, get_if_exists, new_api_client, path_of, request
from daprplane.core.local import cluster_objects as objects

T = TypeVar("T")
#: The CRDs the components read; without them sentry never gets ready.
REQUIRED_CRDS = ("configurations.dapr.io", "components.dapr.io", "subscriptions.dapr.io")
#: Token lifetime asked for; renewed at half of it. The API server may shorten it.
TOKEN_SECONDS = 3600
ANCHORS_TIMEOUT = 60.0


class ClusterError(Exception):
    """A reason not to start in this cluster, in one line."""


def with_api(kubeconfig: str, step: Callable[[Any], Awaitable[T]]) -> T:
    async def run() -> T:
        api = new_api_client(kubeconfig, environ={})
        try:
            return await step(api)
        finally:
            await api.close()

    return asyncio.run(run())


async def _get(api: Any, *segments: str) -> Any | None:
    return await get_if_exists(api, path_of(*segments))


async def _create(api: Any, collection: str, body: Mapping[str, Any]) -> bool:
    """POST ``body``; ``False`` when it exists already."""
    try:
        await request(api, "POST", collection, body=dict(body))
    except KubeApiError as error:
        if error.status == 409:
            return False
        raise
    return True


def _core(namespace: str, plural: str) -> str:
    return path_of("api", "v1", "namespaces", namespace, plural)


async def check(api: Any, namespace: str) -> None:
    for crd in REQUIRED_CRDS:
        found = await _get(
            api, "apis", "apiextensions.k8s.io", "v1", "customresourcedefinitions", crd
        )
        if found is None:
            raise ClusterError(
                f"Dapr's CRDs are not installed ({crd} is missing): "
                "kubectl apply -f deploy/crds/ (or the Helm chart's crds/) first"
            )
    for workload in ("dapr-sentry", "dapr-operator"):
        if await _get(api, "apis", "apps", "v1", "namespaces", namespace, "deployments", workload):
            raise ClusterError(
                f"a control plane is installed in namespace {namespace} (Deployment {workload}): "
                "choose another --namespace"
            )
    webhooks = ("apis", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations")
    existing = await _get(api, *webhooks, objects.WEBHOOK_NAME)
    if existing is not None:
        labels = existing["metadata"].get("labels") or {}
        if labels.get("daprplane.io/namespace") != namespace:
            raise ClusterError(
                f"MutatingWebhookConfiguration {objects.WEBHOOK_NAME} exists and belongs to "
                "another control plane: only one sidecar injector can serve a cluster"
            )


async def prepare(
    api: Any, namespace: str, trust_domain: str, sentry_address: str, webhook_host: str, port: int
) -> None:
    await _create(api, "/api/v1/namespaces", {"metadata": {"name": namespace}})
    for account in objects.SERVICE_ACCOUNTS.values():
        await _create(api, _core(namespace, "serviceaccounts"), objects.service_account(account))
    for kind, plural in (("Secret", "secrets"), ("ConfigMap", "configmaps")):
        await _create(api, _core(namespace, plural), objects.empty_trust_bundle(kind))
    configurations = path_of(
        "apis", "dapr.io", "v1alpha1", "namespaces", namespace, "configurations"
    )
    configuration = objects.system_configuration(trust_domain, sentry_address)
    if not await _create(api, configurations, configuration):
        # The operator finds sentry through daprsystem: point an existing one at this sentry.
        await request(
            api,
            "PATCH",
            f"{configurations}/{objects.SYSTEM_CONFIGURATION}",
            body={"spec": {"mtls": {"sentryAddress": sentry_address}}},
            content_type="application/merge-patch+json",
        )
    # Replaced, not kept: a registration left by an earlier run may name another host or port.
    services = _core(namespace, "services")
    webhooks = path_of(
        "apis", "admissionregistration.k8s.io", "v1", "mutatingwebhookconfigurations"
    )
    for collection, name, body in (
        (services, objects.INJECTOR_SERVICE, objects.injector_service(webhook_host)),
        (webhooks, objects.WEBHOOK_NAME, objects.webhook_configuration(namespace, port)),
    ):
        if not await _create(api, collection, body):
            await request(api, "DELETE", f"{collection}/{name}")
            await _create(api, collection, body)


async def create_stand_ins(api: Any, namespace: str) -> dict[str, dict[str, Any]]:
    pods = {}
    suffix = secrets.token_hex(3)
    for component in objects.SERVICE_ACCOUNTS:
        body = objects.stand_in_pod(component, f"dapr-{component}-local-{suffix}")
        pods[component] = await request(api, "POST", _core(namespace, "pods"), body=body)
    return pods


def sentry_audience(trust_domain: str, namespace: str) -> str:
    return f"spiffe://{trust_domain}/ns/{namespace}/dapr-sentry"


async def write_tokens(
    api: Any, namespace: str, pods: Mapping[str, Mapping[str, Any]], audience: str, directory: Path
) -> dict[str, Path]:
    """A fresh token for each stand-in, replaced atomically in ``directory/<component>.token``."""
    paths = {}
    for component, pod in pods.items():
        account = pod["spec"]["serviceAccountName"]
        answer = await request(
            api,
            "POST",
            f"{_core(namespace, 'serviceaccounts')}/{account}/token",
            body=objects.token_request(dict(pod), audience, TOKEN_SECONDS),
        )
        path = directory / f"{component}.token"
        partial = path.with_suffix(".partial")
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(answer["status"]["token"])
        os.replace(partial, path)
        paths[component] = path
    return paths


async def published_anchors(api: Any, namespace: str, timeout: float = ANCHORS_TIMEOUT) -> bytes:
    """The trust anchors sentry published in the ``dapr-trust-bundle`` ConfigMap."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        bundle = await _get(
            api, "api", "v1", "namespaces", namespace, "configmaps", objects.TRUST_BUNDLE
        )
        anchors = ((bundle or {}).get("data") or {}).get("ca.crt")
        if anchors:
            return str(anchors).encode()
        if asyncio.get_running_loop().time() > deadline:
            raise ClusterError(f"sentry published no trust anchors within {timeout:.0f}s")
        await asyncio.sleep(0.2)


async def clean_up(api: Any, namespace: str, pods: Mapping[str, Mapping[str, Any]]) -> None:
    """Delete what only makes sense while ``up`` runs; a missing object is already gone."""
    paths = [f"{_core(namespace, 'pods')}/{pod['metadata']['name']}" for pod in pods.values()]
    paths.append(
        path_of(
            "apis",
            "admissionregistration.k8s.io",
            "v1",
            "mutatingwebhookconfigurations",
            objects.WEBHOOK_NAME,
        )
    )
    paths.append(f"{_core(namespace, 'services')}/{objects.INJECTOR_SERVICE}")
    for path in paths:
        try:
            await request(api, "DELETE", path)
        except KubeApiError as error:
            if error.status != 404:
                raise


class TokenRenewal:
    """Renews the stand-ins' tokens in a background thread at half their lifetime."""

    def __init__(self, renew: Callable[[], object], interval: float = TOKEN_SECONDS / 2) -> None:
        self.renew = renew
        self.interval = interval
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="token-renewal", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.renew()
            except Exception as error:  # reported by status; the old token is still valid
                self.failures.append(f"{type(error).__name__}: {error}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
