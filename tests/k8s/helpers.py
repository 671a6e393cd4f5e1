"""Helpers for tests against the k8s test cluster: waiting, CRDs, webhooks."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_WEBHOOK_RULES: list[dict[str, Any]] = [
    {
        "apiGroups": [""],
        "apiVersions": ["v1"],
        "operations": ["CREATE"],
        "resources": ["pods"],
        "scope": "Namespaced",
    }
]


def wait_for(
    predicate: Callable[[], T],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


async def async_wait_for(
    predicate: Callable[[], Awaitable[T]],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: str = "condition",
) -> T:
    """``wait_for`` for a coroutine predicate."""
    deadline = time.monotonic() + timeout
    while True:
        result = await predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


# ---------------------------------------------------------------------- CRDs


def load_manifests(source: dict[str, Any] | str | Path) -> list[dict[str, Any]]:
    """A manifest dict, or every document of a YAML file."""
    if isinstance(source, dict):
        return [source]
    import yaml

    with open(source) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def install_crds(
    api: Any,
    crds: Iterable[dict[str, Any] | str | Path],
    *,
    timeout: float = 30.0,
) -> list[str]:
    """Create (or update) CustomResourceDefinitions and wait until they are Established.

    ``api`` is a sync admin ``ApiClient``; ``crds`` are manifest dicts or YAML
    file paths (non-CRD documents are ignored). Returns the CRD names.
    """
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    names: list[str] = []
    for source in crds:
        for manifest in load_manifests(source):
            if manifest.get("kind") != "CustomResourceDefinition":
                continue
            name = manifest["metadata"]["name"]
            try:
                ext.create_custom_resource_definition(manifest)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise
                current = ext.read_custom_resource_definition(name)
                body = dict(manifest)
                body["metadata"] = dict(
                    manifest["metadata"], resourceVersion=current.metadata.resource_version
                )
                ext.replace_custom_resource_definition(name, body)
            names.append(name)

    def established(name: str) -> bool:
        crd = ext.read_custom_resource_definition(name)
        conditions = {c.type: c.status for c in (crd.status.conditions or [])}
        return conditions.get("Established") == "True" and conditions.get("NamesAccepted") == "True"

    for name in names:
        wait_for(lambda n=name: established(n), timeout=timeout, message=f"CRD {name} Established")
    return names


def delete_crds(api: Any, names: Iterable[str]) -> None:
    from kubernetes import client

    ext = client.ApiextensionsV1Api(api)
    for name in names:
        try:
            ext.delete_custom_resource_definition(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise


# ---------------------------------------------------------------------- webhooks


def _webhook_entry(
    name: str,
    url: str,
    ca_bundle: bytes,
    *,
    rules: Sequence[dict[str, Any]] | None,
    namespace: str | None,
    namespace_selector: dict[str, Any] | None,
    object_selector: dict[str, Any] | None,
    failure_policy: str,
    timeout_seconds: int,
) -> dict[str, Any]:
    if namespace_selector is None and namespace is not None:
        namespace_selector = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    entry: dict[str, Any] = {
        "name": name,
        "clientConfig": {"url": url, "caBundle": base64.b64encode(ca_bundle).decode()},
        "rules": list(rules if rules is not None else DEFAULT_WEBHOOK_RULES),
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "failurePolicy": failure_policy,
        "timeoutSeconds": timeout_seconds,
    }
    if namespace_selector is not None:
        entry["namespaceSelector"] = namespace_selector
    if object_selector is not None:
        entry["objectSelector"] = object_selector
    return entry


def register_mutating_webhook(
    api: Any,
    name: str,
    url: str,
    ca_bundle: bytes,
    *,
    rules: Sequence[dict[str, Any]] | None = None,
    namespace: str | None = None,
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    failure_policy: str = "Fail",
    timeout_seconds: int = 10,
    reinvocation_policy: str = "Never",
) -> str:
    """Register a MutatingWebhookConfiguration ``name`` calling ``url``.

    ``name`` must have at least three dot-separated segments (it also names the
    single webhook). ``ca_bundle`` is the PEM CA that signed the server's cert.
    ``namespace`` limits the webhook to that namespace (via its
    ``kubernetes.io/metadata.name`` label). Default rules: pod CREATE.
    The apiserver picks the configuration up asynchronously: wait until it is
    called before relying on it.
    """
    entry = _webhook_entry(
        name,
        url,
        ca_bundle,
        rules=rules,
        namespace=namespace,
        namespace_selector=namespace_selector,
        object_selector=object_selector,
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
    )
    entry["reinvocationPolicy"] = reinvocation_policy
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [entry],
    }
    from kubernetes import client

    client.AdmissionregistrationV1Api(api).create_mutating_webhook_configuration(body)
    return name


def register_validating_webhook(
    api: Any,
    name: str,
    url: str,
    ca_bundle: bytes,
    *,
    rules: Sequence[dict[str, Any]] | None = None,
    namespace: str | None = None,
    namespace_selector: dict[str, Any] | None = None,
    object_selector: dict[str, Any] | None = None,
    failure_policy: str = "Fail",
    timeout_seconds: int = 10,
) -> str:
    """Like ``register_mutating_webhook`` for a ValidatingWebhookConfiguration."""
    entry = _webhook_entry(
        name,
        url,
        ca_bundle,
        rules=rules,
        namespace=namespace,
        namespace_selector=namespace_selector,
        object_selector=object_selector,
        failure_policy=failure_policy,
        timeout_seconds=timeout_seconds,
    )
    body = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [entry],
    }
    from kubernetes import client

    client.AdmissionregistrationV1Api(api).create_validating_webhook_configuration(body)
    return name


def delete_webhook(api: Any, name: str, *, mutating: bool = True) -> None:
    from kubernetes import client

    admission = client.AdmissionregistrationV1Api(api)
    try:
        if mutating:
            admission.delete_mutating_webhook_configuration(name)
        else:
            admission.delete_validating_webhook_configuration(name)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def admission_response(
    review: dict[str, Any],
    *,
    allowed: bool = True,
    patch: list[dict[str, Any]] | None = None,
    message: str | None = None,
) -> dict[str, Any]:
    """The AdmissionReview (v1) answer to ``review``, optionally with a JSONPatch."""
    import json

    response: dict[str, Any] = {"uid": review["request"]["uid"], "allowed": allowed}
    if patch:
        response["patchType"] = "JSONPatch"
        response["patch"] = base64.b64encode(json.dumps(patch).encode()).decode()
    if message:
        response["status"] = {"message": message}
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response}
