"""The daprplane Helm chart as a whole: lint, CRDs, what it renders, its README, and every
rendered object created on the test cluster's real kube-apiserver.

Broad checks run with three value sets (Dapr's defaults, HA, a bring-your-own CA); the other
test_chart_* modules check workloads, components and access objects in detail.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
from typing import Any

import pytest
import yaml
from kubernetes import client

import daprplane
from daprplane.plugins.sentry.ca import bundle
from tests.helm.apply import Created, can, create_into, delete_cluster_scoped, ensure_crds
from tests.helm.cases import (
    HA,
    NAMESPACE,
    TRUST_DOMAIN,
    VALUE_SETS,
    WEBHOOK_COLLECTION,
    byo_values,
)
from tests.helm.chart import (
    CHART_CRDS_DIR,
    CHART_DIR,
    DEPLOY_CRDS_DIR,
    Rendered,
    lint,
    render,
    run_helm,
)
from tests.k8s.cluster import raw_request

# ------------------------------------------------------------------------------------ lint, CRDs


@pytest.mark.parametrize("values", VALUE_SETS)
def test_lint_is_clean(values: str, byo_bundle: bundle.TrustBundle) -> None:
    chosen = {"default": {}, "ha": HA, "byo": byo_values(byo_bundle)}[values]
    result = lint(chosen)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "1 chart(s) linted, 0 chart(s) failed" in output
    assert "[WARNING]" not in output and "[ERROR]" not in output, output


def test_chart_metadata() -> None:
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == daprplane.__version__
    assert not chart.get("dependencies") and not (CHART_DIR / "charts").exists()


def test_chart_crds_equal_deploy_crds() -> None:
    chart = {path.name: path.read_bytes() for path in CHART_CRDS_DIR.glob("*.yaml")}
    deploy = {path.name: path.read_bytes() for path in DEPLOY_CRDS_DIR.glob("*.yaml")}
    assert len(deploy) == 7
    assert chart.keys() == deploy.keys()
    for name, content in deploy.items():
        assert chart[name] == content, f"crds/{name} differs from deploy/crds/{name}"


def test_helm_installs_the_seven_crds_first() -> None:
    rendered = render(include_crds=True)
    crds = rendered.of_kind("CustomResourceDefinition")
    assert {crd["metadata"]["name"] for crd in crds} == {
        "components.dapr.io",
        "configurations.dapr.io",
        "subscriptions.dapr.io",
        "resiliencies.dapr.io",
        "httpendpoints.dapr.io",
        "mcpservers.dapr.io",
        "workflowaccesspolicies.dapr.io",
    }
    assert rendered.documents[: len(crds)] == crds
    conversion = rendered.get("CustomResourceDefinition", "subscriptions.dapr.io")["spec"][
        "conversion"
    ]
    assert conversion["webhook"]["clientConfig"]["service"]["name"] == "dapr-webhook"
    assert conversion["webhook"]["clientConfig"]["service"]["path"] == "/convert"


def test_default_renders_dapr_names(rendered_default: Rendered) -> None:
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in rendered_default} == {
        ("Configuration", "daprsystem"),
        ("Secret", "dapr-trust-bundle"),
        ("ConfigMap", "dapr-trust-bundle"),
        ("ServiceAccount", "dapr-operator"),
        ("ServiceAccount", "dapr-sentry"),
        ("ServiceAccount", "dapr-placement"),
        ("ServiceAccount", "dapr-injector"),
        ("ClusterRole", "dapr-operator-admin"),
        ("ClusterRoleBinding", "dapr-operator-admin"),
        ("Role", "dapr-operator"),
        ("RoleBinding", "dapr-operator"),
        ("ClusterRole", "dapr-sentry"),
        ("ClusterRoleBinding", "dapr-sentry"),
        ("Role", "dapr-sentry"),
        ("RoleBinding", "dapr-sentry"),
        ("ClusterRole", "dapr-placement"),
        ("ClusterRoleBinding", "dapr-placement"),
        ("Role", "dapr-placement"),
        ("RoleBinding", "dapr-placement"),
        ("ClusterRole", "dapr-injector"),
        ("ClusterRoleBinding", "dapr-injector"),
        ("Role", "dapr-injector"),
        ("RoleBinding", "dapr-injector"),
        ("Deployment", "dapr-operator"),
        ("Deployment", "dapr-sentry"),
        ("StatefulSet", "dapr-placement-server"),
        ("Deployment", "dapr-sidecar-injector"),
        ("Service", "dapr-api"),
        ("Service", "dapr-webhook"),
        ("Service", "dapr-sentry"),
        ("Service", "dapr-placement-server"),
        ("Service", "dapr-sidecar-injector"),
        ("MutatingWebhookConfiguration", "dapr-sidecar-injector"),
    }
    for doc in rendered_default:
        if doc["kind"] not in ("ClusterRole", "ClusterRoleBinding", "MutatingWebhookConfiguration"):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["metadata"]
        assert doc["metadata"]["labels"]["app.kubernetes.io/part-of"] == "dapr"


def test_readme_documents_every_value() -> None:
    values = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    readme = (CHART_DIR / "README.md").read_text()
    documented = set(re.findall(r"^\| `([^`]+)` \|", readme, re.MULTILINE))
    missing = sorted(set(value_paths(values)) - documented)
    assert not missing, f"README.md does not document {missing}"
    unknown = sorted(documented - set(value_paths(values)))
    assert not unknown, f"README.md documents values that do not exist: {unknown}"


def value_paths(values: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the leaves of ``values`` (an empty map counts as a leaf)."""
    paths: list[str] = []
    for key, value in values.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            paths.extend(value_paths(value, f"{path}."))
        else:
            paths.append(path)
    return paths


# ---------------------------------------------------------------------- the real API server


@pytest.mark.k8s
def test_every_object_is_accepted_by_the_api_server(
    kube_cluster: Any, kube_api: Any, kube_namespace: str, value_set: dict[str, Any]
) -> None:
    release = f"daprplane-{secrets.token_hex(3)}"
    rendered = render(value_set, release=release, namespace=kube_namespace)
    ensure_crds(kube_api, CHART_CRDS_DIR)
    created: list[Created] = []
    try:
        create_into(kube_api, rendered, created)
        assert len(created) == len(rendered.documents)
        for item, document in zip(created, rendered, strict=True):
            assert item.body["kind"] == document["kind"]
            assert item.body["metadata"]["name"] == document["metadata"]["name"]
        check_server_copies(kube_api, kube_namespace, created)
        check_permissions(kube_api, kube_namespace)
        check_injector_can_patch_ca_bundle(kube_api)
    finally:
        delete_cluster_scoped(kube_api, created)
    for item in created:
        if not item.namespaced:
            with pytest.raises(client.ApiException) as missing:
                raw_request(kube_api, "GET", item.path)
            assert missing.value.status == 404


@pytest.mark.k8s
def test_helm_install_and_uninstall(kube_cluster: Any, kube_api: Any, kube_namespace: str) -> None:
    """helm itself installs the chart on the API server and removes it again."""
    kubeconfig = str(kube_cluster.kubeconfig)
    release = f"dapr-{secrets.token_hex(3)}"
    target = ["--namespace", kube_namespace, "--kubeconfig", kubeconfig]
    installed = run_helm("install", release, str(CHART_DIR), *target)
    try:
        assert installed.returncode == 0, installed.stderr
        assert f"daprplane {daprplane.__version__} is installed in namespace {kube_namespace}" in (
            installed.stdout
        )
        listed = run_helm("list", "--output", "json", *target)
        (entry,) = json.loads(listed.stdout)
        assert (entry["name"], entry["status"]) == (release, "deployed")
        operator = raw_request(
            kube_api, "GET", f"/apis/apps/v1/namespaces/{kube_namespace}/deployments/dapr-operator"
        )
        assert operator["metadata"]["annotations"]["meta.helm.sh/release-name"] == release
        assert ensure_crds(kube_api, CHART_CRDS_DIR)  # helm left every CRD Established
    finally:
        uninstalled = run_helm("uninstall", release, "--wait", *target)
    assert uninstalled.returncode == 0, uninstalled.stderr
    for path in (
        "/apis/rbac.authorization.k8s.io/v1/clusterroles/dapr-operator-admin",
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/dapr-sentry",
        f"{WEBHOOK_COLLECTION}/dapr-sidecar-injector",
    ):
        with pytest.raises(client.ApiException) as missing:
            raw_request(kube_api, "GET", path)
        assert missing.value.status == 404


def check_server_copies(api: Any, namespace: str, created: list[Created]) -> None:
    """What the server stored keeps the shape that matters (defaults filled in, nothing lost)."""
    by_kind = {(item.body["kind"], item.body["metadata"]["name"]): item.body for item in created}
    placement = by_kind[("Service", "dapr-placement-server")]
    assert placement["spec"]["clusterIP"] == "None"
    assert placement["spec"]["publishNotReadyAddresses"] is True
    webhook = by_kind[("MutatingWebhookConfiguration", "dapr-sidecar-injector")]["webhooks"][0]
    assert webhook["clientConfig"]["service"] == {
        "namespace": namespace,
        "name": "dapr-sidecar-injector",
        "path": "/mutate",
        "port": 443,
    }
    assert "caBundle" not in webhook["clientConfig"]
    assert webhook["failurePolicy"] == "Ignore"
    operator = by_kind[("Deployment", "dapr-operator")]
    volumes = operator["spec"]["template"]["spec"]["volumes"]
    token = next(volume for volume in volumes if volume["name"] == "dapr-identity-token")
    assert token["projected"]["sources"][0]["serviceAccountToken"]["audience"] == (
        f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/dapr-sentry"
    )
    config = raw_request(
        api, "GET", f"/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations/daprsystem"
    )
    assert config["spec"]["mtls"]["controlPlaneTrustDomain"] == TRUST_DOMAIN


def check_permissions(api: Any, namespace: str) -> None:
    """The API server's authorizer grants each ServiceAccount what its component does."""

    def allowed(account: str, **attributes: str) -> bool:
        groups = ["system:serviceaccounts", f"system:serviceaccounts:{namespace}"]
        user = f"system:serviceaccount:{namespace}:{account}"
        return can(api, user, groups, **attributes)

    elsewhere = "some-app-namespace"
    # operator: cluster-wide reads, Services, Events; its Lease in its own namespace.
    assert allowed("dapr-operator", verb="watch", resource="components", group="dapr.io")
    assert allowed("dapr-operator", verb="create", resource="services", namespace=elsewhere)
    assert allowed("dapr-operator", verb="create", resource="events", namespace=elsewhere)
    assert allowed(
        "dapr-operator",
        verb="patch",
        resource="customresourcedefinitions",
        group="apiextensions.k8s.io",
        name="subscriptions.dapr.io",
    )
    assert allowed(
        "dapr-operator",
        verb="update",
        resource="leases",
        group="coordination.k8s.io",
        namespace=namespace,
        name="operator.dapr.io",
    )
    assert not allowed("dapr-operator", verb="create", resource="secrets", namespace=elsewhere)
    # sentry: token reviews, the trust bundle and nothing else of the Secrets.
    assert allowed(
        "dapr-sentry", verb="create", resource="tokenreviews", group="authentication.k8s.io"
    )
    bundle_name = "dapr-trust-bundle"
    assert allowed(
        "dapr-sentry", verb="update", resource="secrets", namespace=namespace, name=bundle_name
    )
    assert not allowed(
        "dapr-sentry", verb="get", resource="secrets", namespace=namespace, name="other"
    )
    assert allowed("dapr-sentry", verb="list", resource="pods", namespace=elsewhere)
    # injector: its own webhook configuration only.
    webhook_group = "admissionregistration.k8s.io"
    assert allowed(
        "dapr-injector",
        verb="patch",
        resource="mutatingwebhookconfigurations",
        group=webhook_group,
        name="dapr-sidecar-injector",
    )
    assert not allowed(
        "dapr-injector",
        verb="patch",
        resource="mutatingwebhookconfigurations",
        group=webhook_group,
        name="someone-elses",
    )
    assert allowed("dapr-injector", verb="list", resource="serviceaccounts")
    # placement: the leader Lease.
    assert allowed(
        "dapr-placement",
        verb="update",
        resource="leases",
        group="coordination.k8s.io",
        namespace=namespace,
        name="dapr-placement-leader",
    )
    assert not allowed("dapr-placement", verb="list", resource="pods", namespace=namespace)


def check_injector_can_patch_ca_bundle(api: Any) -> None:
    """The injector's JSON patch applies to the rendered webhook configuration (no caBundle)."""
    path = f"{WEBHOOK_COLLECTION}/dapr-sidecar-injector"
    pem = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
    value = base64.b64encode(pem).decode()
    raw_request(
        api,
        "PATCH",
        path,
        body=[{"op": "replace", "path": "/webhooks/0/clientConfig/caBundle", "value": value}],
        content_type="application/json-patch+json",
    )
    stored = raw_request(api, "GET", path)["webhooks"][0]["clientConfig"]["caBundle"]
    assert base64.b64decode(stored) == pem
