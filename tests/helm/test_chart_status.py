"""``daprplane status --kubeconfig`` on the chart's workloads in the real API server.

No kubelet runs here, so workloads never become ready by themselves: the test writes their
status subresource and the Leases the way the cluster would, and checks what status reports.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from daprplane.plugins.sentry.ca import bundle
from tests.helm.apply import Created, create_into
from tests.helm.cases import byo_values
from tests.helm.chart import render
from tests.integration.launchers import free_port, script
from tests.k8s.cluster import KubeCluster, raw_request

pytestmark = [pytest.mark.k8s, pytest.mark.slow]

KINDS = {"Deployment", "StatefulSet", "Secret", "ConfigMap"}
WORKLOADS = {
    "dapr-sentry": "deployments",
    "dapr-placement-server": "statefulsets",
    "dapr-operator": "deployments",
    "dapr-sidecar-injector": "deployments",
}


def status(kubeconfig: Path, namespace: str) -> tuple[int, dict[str, Any]]:
    completed = subprocess.run(
        [
            script("daprplane"),
            "status",
            f"--kubeconfig={kubeconfig}",
            "--namespace",
            namespace,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={},
        cwd="/",
    )
    assert completed.stdout, completed.stderr
    return completed.returncode, json.loads(completed.stdout)


def _mark_ready(api: Any, namespace: str) -> None:
    for name, collection in WORKLOADS.items():
        path = f"/apis/apps/v1/namespaces/{namespace}/{collection}/{name}"
        replicas = raw_request(api, "GET", path)["spec"].get("replicas", 1)
        raw_request(
            api,
            "PATCH",
            f"{path}/status",
            body={"status": {"replicas": replicas, "readyReplicas": replicas}},
            content_type="application/merge-patch+json",
        )


def _lease(api: Any, namespace: str, name: str, holder: str) -> None:
    raw_request(
        api,
        "POST",
        f"/apis/coordination.k8s.io/v1/namespaces/{namespace}/leases",
        body={"metadata": {"name": name}, "spec": {"holderIdentity": holder}},
    )


def test_status_of_an_installed_control_plane(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, byo_bundle: bundle.TrustBundle
) -> None:
    rendered = render(byo_values(byo_bundle), namespace=kube_namespace)
    created: list[Created] = []
    create_into(kube_api, [doc for doc in rendered if doc["kind"] in KINDS], created)

    code, report = status(kube_cluster.kubeconfig, kube_namespace)
    assert code == 1
    assert report["ok"] is False
    by_name = {c["name"]: c for c in report["components"]}
    assert set(by_name) == {"sentry", "placement", "operator", "injector"}
    assert all(c["where"] == "0/1 ready" and not c["running"] for c in by_name.values())
    assert by_name["operator"]["details"]["image"] == "ghcr.io/daprplane/daprplane:0.1.0"
    certificates = {(c["name"], c["source"]): c["expires"] for c in report["certificates"]}
    expected_root = byo_bundle.trust_anchors[0].not_valid_after_utc.strftime("%Y-%m-%d %H:%M")
    assert certificates[("root (anchors)", "secret dapr-trust-bundle/ca.crt")].startswith(
        expected_root
    )
    assert ("root (anchors)", "configmap dapr-trust-bundle/ca.crt") in certificates
    expected_issuer = byo_bundle.issuer_chain[0].not_valid_after_utc.strftime("%Y-%m-%d %H:%M")
    assert certificates[("issuer", "secret dapr-trust-bundle/issuer.crt")].startswith(
        expected_issuer
    )

    _mark_ready(kube_api, kube_namespace)
    _lease(kube_api, kube_namespace, "dapr-placement-leader", "dapr-placement-server-0")
    _lease(kube_api, kube_namespace, "operator.dapr.io", "dapr-operator-7d9f_1234")
    code, report = status(kube_cluster.kubeconfig, kube_namespace)
    assert code == 0, report
    by_name = {c["name"]: c for c in report["components"]}
    assert all(c["healthy"] for c in by_name.values())
    assert by_name["placement"]["details"]["leader"] == "dapr-placement-server-0"
    assert by_name["operator"]["details"]["leader"] == "dapr-operator-7d9f_1234"
    # No placement pod answers: the tables are reported as unavailable, not as an error.
    assert by_name["placement"]["details"]["tables"].startswith("unavailable")


def test_status_of_a_namespace_without_a_control_plane(
    kube_cluster: KubeCluster, kube_namespace: str
) -> None:
    code, report = status(kube_cluster.kubeconfig, kube_namespace)
    assert code == 1
    assert all(not c["running"] for c in report["components"])
    assert any("no dapr-trust-bundle" in problem for problem in report["problems"])


def test_status_of_an_unreachable_cluster(kube_cluster: KubeCluster, tmp_path: Path) -> None:
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    config["clusters"][0]["cluster"]["server"] = f"https://127.0.0.1:{free_port()}"
    kubeconfig = tmp_path / "unreachable.kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    code, report = status(kubeconfig, "dapr-system")
    assert code == 1
    assert any("cannot reach the API server" in problem for problem in report["problems"])


def test_status_with_a_missing_kubeconfig(tmp_path: Path) -> None:
    completed = subprocess.run(
        [script("daprplane"), "status", f"--kubeconfig={tmp_path / 'absent'}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={},
    )
    assert completed.returncode == 1
    assert "no such file or directory" in completed.stderr
