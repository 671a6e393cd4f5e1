"""``daprplane status --kubeconfig``: the control plane installed in a cluster, from its API server.

Workload readiness comes from the Deployments and the StatefulSet the chart (or Dapr's chart)
creates, leaders from the Leases, certificate expiry from the ``dapr-trust-bundle`` Secret and
ConfigMap. Table versions need placement's ``/placement/state``, reached through the API server's
pod proxy; clusters that forbid the proxy show the tables as unavailable.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from daprplane.core.kube.client import KubeApiError, get_if_exists, list_items, path_of, request
from daprplane.core.local.certs import describe_expiry, first_certificate
from daprplane.core.local.cluster_objects import MANAGED_BY
from daprplane.core.local.local_status import table_versions
from daprplane.core.local.report import CertificateStatus, ComponentStatus, StatusReport

#: component -> (kind's collection, workload name, Lease that names its leader)
WORKLOADS = {
    "sentry": ("deployments", "dapr-sentry", None),
    "placement": ("statefulsets", "dapr-placement-server", "dapr-placement-leader"),
    "operator": ("deployments", "dapr-operator", "operator.dapr.io"),
    "injector": ("deployments", "dapr-sidecar-injector", None),
}
TRUST_BUNDLE = "dapr-trust-bundle"
PLACEMENT_HEALTHZ_PORT = 8080


async def _get(api: Any, *segments: str) -> Any | None:
    return await get_if_exists(api, path_of(*segments))


async def _leader(api: Any, namespace: str, lease: str) -> str:
    body = await _get(
        api, "apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases", lease
    )
    holder = ((body or {}).get("spec") or {}).get("holderIdentity")
    return str(holder) if holder else "none"


async def _placement_tables(
    api: Any, namespace: str, selector: Mapping[str, str]
) -> dict[str, str]:
    query = {"labelSelector": ",".join(f"{k}={v}" for k, v in selector.items())}
    pods = await list_items(api, path_of("api", "v1", "namespaces", namespace, "pods"), query=query)
    for pod in pods:
        name = pod["metadata"]["name"]
        proxy = path_of(
            "api",
            "v1",
            "namespaces",
            namespace,
            "pods",
            f"{name}:{PLACEMENT_HEALTHZ_PORT}",
            "proxy",
        )
        try:
            state = await request(api, "GET", f"{proxy}/placement/state")
        except (TimeoutError, KubeApiError, OSError, aiohttp.ClientError, ValueError):
            continue
        if isinstance(state, dict) and state.get("tables"):
            return table_versions(state)
    return {
        "tables": "unavailable (placement's /placement/state not reachable through the API server)"
    }


async def _workload(api: Any, namespace: str, component: str) -> ComponentStatus:
    collection, name, lease = WORKLOADS[component]
    workload = await _get(api, "apis", "apps", "v1", "namespaces", namespace, collection, name)
    if workload is None:
        return ComponentStatus(component, False, False, f"no {collection[:-1]} {name}")
    desired = int((workload.get("spec") or {}).get("replicas", 1))
    ready = int((workload.get("status") or {}).get("readyReplicas", 0))
    containers = workload["spec"]["template"]["spec"].get("containers", [])
    details = {"image": containers[0].get("image", "?")} if containers else {}
    if lease:
        details["leader"] = await _leader(api, namespace, lease)
    if component == "placement" and ready:
        selector = (workload["spec"].get("selector") or {}).get("matchLabels") or {}
        details.update(await _placement_tables(api, namespace, selector))
    return ComponentStatus(
        component, ready > 0, ready >= desired > 0, f"{ready}/{desired} ready", details
    )


def _pem(value: str | None, encoded: bool) -> bytes:
    if not value:
        return b""
    return base64.b64decode(value) if encoded else value.encode()


async def _certificates(api: Any, namespace: str) -> list[CertificateStatus]:
    found = []
    for kind, key, encoded in (("secrets", "data", True), ("configmaps", "data", False)):
        body = await _get(api, "api", "v1", "namespaces", namespace, kind, TRUST_BUNDLE)
        data = (body or {}).get(key) or {}
        for file_name, label in (("ca.crt", "root (anchors)"), ("issuer.crt", "issuer")):
            if file_name not in data:
                continue
            info = first_certificate(_pem(data[file_name], encoded))
            source = f"{kind[:-1]} {TRUST_BUNDLE}/{file_name}"
            found.append(CertificateStatus(label, source, describe_expiry(info)))
    return found


async def _note_local_up(api: Any, namespace: str, report: StatusReport) -> None:
    """No workloads: maybe ``daprplane up --kubeconfig`` runs the components elsewhere."""
    selector = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
    pods = await list_items(
        api,
        path_of("api", "v1", "namespaces", namespace, "pods"),
        query={"labelSelector": selector},
    )
    if pods:
        names = ", ".join(sorted(pod["metadata"]["name"] for pod in pods))
        report.problems.append(
            "the components run outside the cluster, under daprplane up (stand-in pods: "
            f"{names}): `daprplane status` on that machine reports them"
        )


async def cluster_status(api: Any, namespace: str) -> StatusReport:
    report = StatusReport("cluster", f"namespace {namespace} at {api.configuration.host}")
    try:
        for component in WORKLOADS:
            report.components.append(await _workload(api, namespace, component))
        report.certificates = await _certificates(api, namespace)
    except KubeApiError as error:
        report.problems.append(f"the API server refused: {error}")
    except (TimeoutError, OSError, aiohttp.ClientError, json.JSONDecodeError) as error:
        report.problems.append(f"cannot reach the API server: {error}")
    if not report.problems and not any(c.where.endswith("ready") for c in report.components):
        await _note_local_up(api, namespace, report)
    if not report.certificates and not report.problems:
        report.problems.append(f"no {TRUST_BUNDLE} in {namespace}: sentry has not published its CA")
    return report
