"""An unmodified daprd 1.18.3 in ``--mode kubernetes`` gets its resources from daprplane's operator.

The control plane runs as the chart runs it, on loopback against the real test API server: our
sentry in kubernetes mode (its CA in the ``dapr-trust-bundle`` Secret, certificates only for
ServiceAccount tokens of real pods) and our operator with exactly Dapr's operator RBAC. Each test
creates an app's Pod object with Dapr's annotations (it stays Pending: there is no kubelet), a
token bound to it as the kubelet would project it, and runs a real daprd for that pod, pointed
at the operator and sentry the way daprplane's injector points it. The tests then check, through
daprd's own HTTP API, that

- the Components of the app's namespace that are in scope for it load, and work: state saved and
  read back through a ``state.in-memory`` store, a secret read through a
  ``secretstores.local.file`` store whose file path is a ``secretKeyRef`` the operator resolved
  from a real Secret;
- the Configuration the pod names (``dapr.io/config``) reaches daprd: its feature list shows in
  ``/v1.0/metadata`` and its secret scopes are enforced;
- the v2alpha1 Subscriptions of the namespace show in ``/v1.0/metadata``;
- with HotReload (on by default in 1.18), Components and Subscriptions added, updated, deleted or
  moved in and out of the app's scopes later reach the running daprd; a change to the pod's
  Configuration (and to no other) makes it reload in place; a rotated Secret reaches it through
  its periodic re-list of Components;
- sentry refuses a daprd that brings no ServiceAccount token, so the identity daprd gets in the
  other tests really is the pod's.

daprd runs without the built-in Kubernetes secret store (see ``start_kubernetes_daprd``): with no
in-cluster credentials it could not reach the API server, so every secret value daprd sees here
came through the operator. On a Component UPDATED event daprd logs ``Error decoding secret:
invalid character '/' looking for beginning of value`` for a resolved ``secretKeyRef`` whose
secret is not JSON, and then loads the Component with the right value; it logs the same with
Dapr's own operator, so the tests do not treat it as a failure.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from tests.integration.injector.conftest import apply
from tests.integration.operator.conftest import (
    TRUST_DOMAIN,
    ControlPlane,
    Operator,
    control_plane_in,
    dapr_path,
    pod_token,
    run_operator,
)
from tests.interop.conftest import (
    STARTUP_TIMEOUT,
    KubernetesSidecar,
    PodIdentity,
    Processes,
    daprd_build_allowance,
    start_kubernetes_daprd,
    wait_until,
)
from tests.k8s.cluster import KubeCluster, raw_request

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.k8s,
    pytest.mark.timeout(180 + daprd_build_allowance()),
]

APP_ID = "orders"
APP_CONFIG = "orders-config"
# A feature name only this test uses: daprd lists configured features as they are named.
MARKER_FEATURE = "DaprplaneInteropMarker"
RELOAD_TIMEOUT = 30.0


# -- the control plane (one per module) ---------------------------------------------------------


@pytest.fixture(scope="module")
def kube_control_plane(
    kube_cluster: KubeCluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ControlPlane]:
    directory = tmp_path_factory.mktemp("control-plane")
    with control_plane_in(kube_cluster, directory, sentry_mode="kubernetes") as plane:
        yield plane


@pytest.fixture(scope="module")
def operator(kube_control_plane: ControlPlane) -> Iterator[Operator]:
    # No webhooks: this operator leaves the shared Subscription CRD's conversion alone.
    with run_operator(kube_control_plane, env={"ENABLE_WEBHOOKS": "false"}) as running:
        yield running


class OperatorWatch:
    """The operator as ``wait_until`` watches a process: fail early once it has exited."""

    def __init__(self, operator: Operator) -> None:
        self.operator = operator

    def check_running(self) -> None:
        code = self.operator.process.poll()
        if code is not None:
            raise AssertionError(
                f"the operator exited with code {code}; its log:\n{self.operator.output()[-4000:]}"
            )


@pytest.fixture
def logs(processes: Processes, operator: Operator) -> Processes:
    """The test's processes, with the operator's log in a failing test's report too."""
    processes.report_log("operator", operator.log)
    return processes


# -- objects in the app's namespace ------------------------------------------------------------


def component(
    name: str, kind: str, metadata: list[dict[str, Any]], scopes: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Component",
        "metadata": {"name": name},
        "spec": {"type": kind, "version": "v1", "metadata": metadata},
    }
    if scopes is not None:
        body["scopes"] = scopes
    return body


def file_secret_store(name: str, secret: str, key: str) -> dict[str, Any]:
    """A ``secretstores.local.file`` whose file path is in a Kubernetes Secret."""
    return component(
        name,
        "secretstores.local.file",
        [{"name": "secretsFile", "secretKeyRef": {"name": secret, "key": key}}],
    )


def subscription(name: str, topic: str, route: str) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v2alpha1",
        "kind": "Subscription",
        "metadata": {"name": name},
        "spec": {"pubsubname": "pubsub", "topic": topic, "routes": {"default": route}},
    }


def app_configuration(features: list[str], allowed_secrets: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": APP_CONFIG},
        "spec": {
            "features": [{"name": name, "enabled": True} for name in features],
            "secrets": {
                "scopes": [
                    {
                        "storeName": "filestore",
                        "defaultAccess": "deny",
                        "allowedSecrets": allowed_secrets,
                    }
                ]
            },
        },
    }


class AppNamespace:
    """One app namespace on the test API server, written to as the cluster admin."""

    def __init__(self, api: Any, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    def create(self, plural: str, body: dict[str, Any], version: str = "v1alpha1") -> None:
        apply(self.api, dapr_path(self.namespace, plural, version=version), body)

    def patch(
        self, plural: str, name: str, patch: dict[str, Any], version: str = "v1alpha1"
    ) -> None:
        raw_request(
            self.api,
            "PATCH",
            dapr_path(self.namespace, plural, name, version),
            body=patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, plural: str, name: str, version: str = "v1alpha1") -> None:
        raw_request(self.api, "DELETE", dapr_path(self.namespace, plural, name, version))

    def secret(self, name: str, data: dict[str, str]) -> None:
        client.CoreV1Api(self.api).create_namespaced_secret(
            self.namespace, {"metadata": {"name": name}, "stringData": data}
        )

    def dapr_pod(self, name: str, app_id: str, config: str, service_account: str) -> None:
        """The Pod object of an injected app: Dapr's annotations, its own ServiceAccount."""
        core = client.CoreV1Api(self.api)
        core.create_namespaced_service_account(
            self.namespace, {"metadata": {"name": service_account}}
        )
        annotations = {
            "dapr.io/enabled": "true",
            "dapr.io/app-id": app_id,
            "dapr.io/disable-builtin-k8s-secret-store": "true",
        }
        if config:
            annotations["dapr.io/config"] = config
        core.create_namespaced_pod(
            self.namespace,
            {
                "metadata": {"name": name, "annotations": annotations},
                "spec": {
                    "serviceAccountName": service_account,
                    "containers": [{"name": "app", "image": "example/orders:1"}],
                },
            },
        )


@pytest.fixture
def app_namespace(kube_api: Any, kube_namespace: str) -> AppNamespace:
    return AppNamespace(kube_api, kube_namespace)


def secrets_file(path: Path, values: dict[str, str]) -> str:
    path.write_text(json.dumps(values))
    return str(path)


def deploy_pod(
    cluster: KubeCluster,
    plane: ControlPlane,
    operator: Operator,
    app: AppNamespace,
    directory: Path,
    *,
    with_token: bool = True,
) -> PodIdentity:
    """The app's Pod object and, unless ``with_token`` is false, its projected sentry token."""
    pod_name = f"{APP_ID}-5d8f7c9b-x2k4q"
    app.dapr_pod(pod_name, APP_ID, APP_CONFIG, service_account=f"{APP_ID}-sa")
    token = None
    if with_token:
        token = pod_token(
            cluster, app.namespace, pod_name, plane.sentry_id, directory / "sentry-token"
        )
    return PodIdentity(
        app_id=APP_ID,
        namespace=app.namespace,
        pod_name=pod_name,
        operator_address=operator.address,
        sentry_address=plane.sentry.address,
        trust_anchors=plane.sentry.trust_anchors.decode(),
        control_plane_namespace=plane.namespace,
        control_plane_trust_domain=TRUST_DOMAIN,
        config=APP_CONFIG,
        sentry_token_file=token,
    )


# -- talking to daprd ---------------------------------------------------------------------------


def call(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, str]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read().decode()


def components(sidecar: KubernetesSidecar) -> dict[str, str]:
    """Loaded components, name to type, as daprd's metadata lists them."""
    listed = (sidecar.metadata() or {}).get("components") or []
    return {entry["name"]: entry["type"] for entry in listed}


def subscriptions(sidecar: KubernetesSidecar) -> list[dict[str, Any]]:
    return list((sidecar.metadata() or {}).get("subscriptions") or [])


def subscribed_topics(sidecar: KubernetesSidecar) -> set[str]:
    return {entry["topic"] for entry in subscriptions(sidecar)}


def enabled_features(sidecar: KubernetesSidecar) -> set[str]:
    return set((sidecar.metadata() or {}).get("enabledFeatures") or [])


def save_and_read(sidecar: KubernetesSidecar, store: str, key: str, value: Any) -> Any:
    url = f"{sidecar.dapr_url}/v1.0/state/{store}"
    status, body = call("POST", url, [{"key": key, "value": value}])
    assert status == 204, f"saving {key} in {store} answered HTTP {status}: {body}"
    status, body = call("GET", f"{url}/{key}")
    assert status == 200, f"reading {key} from {store} answered HTTP {status}: {body}"
    return json.loads(body)


def read_secret(sidecar: KubernetesSidecar, store: str, key: str) -> tuple[int, Any]:
    status, body = call("GET", f"{sidecar.dapr_url}/v1.0/secrets/{store}/{key}")
    return status, json.loads(body) if body.strip() else None


def wait_for(sidecar: KubernetesSidecar, condition: Any, what: str, *others: Any) -> None:
    wait_until(
        condition,
        timeout=RELOAD_TIMEOUT,
        what=lambda: f"{what} (daprd's metadata now: {sidecar.metadata()})",
        watch=[sidecar.daprd, *others],
        interval=0.2,
    )


# -- the tests ----------------------------------------------------------------------------------


def test_daprd_loads_components_configuration_and_subscriptions(
    kube_cluster: KubeCluster,
    kube_control_plane: ControlPlane,
    operator: Operator,
    app_namespace: AppNamespace,
    logs: Processes,
    daprd_binary: Path,
    tmp_path: Path,
) -> None:
    app = app_namespace
    app.secret(
        "filestore-path",
        {"path": secrets_file(tmp_path / "secrets.json", {"greeting": "hello", "pin": "1234"})},
    )
    app.create("configurations", app_configuration([MARKER_FEATURE], ["greeting"]))
    app.create("components", component("statestore", "state.in-memory", []))
    app.create("components", file_secret_store("filestore", "filestore-path", "path"))
    app.create("components", component("pubsub", "pubsub.in-memory", []))
    # Scoped to another app: the operator must not hand it to this one.
    app.create(
        "components",
        component("billing-store", "state.in-memory", [], scopes=["billing"]),
    )
    app.create("subscriptions", subscription("new-orders", "orders", "/orders"), "v2alpha1")
    pod = deploy_pod(kube_cluster, kube_control_plane, operator, app, tmp_path)

    sidecar = start_kubernetes_daprd(logs, daprd_binary, pod, watch=[OperatorWatch(operator)])

    metadata = sidecar.metadata()
    assert metadata is not None
    assert metadata["id"] == APP_ID
    assert metadata["runtimeVersion"] == "1.18.3"
    assert components(sidecar) == {
        "statestore": "state.in-memory",
        "filestore": "secretstores.local.file",
        "pubsub": "pubsub.in-memory",
    }
    assert subscriptions(sidecar) == [
        {
            "pubsubname": "pubsub",
            "topic": "orders",
            "rules": [{"path": "/orders"}],
            "deadLetterTopic": "",
            "type": "DECLARATIVE",
        }
    ]
    # The pod's Configuration, fetched from the operator.
    assert MARKER_FEATURE in enabled_features(sidecar)
    log = sidecar.daprd.log_text()
    assert f"Loading Kubernetes config resource: {APP_CONFIG}" in log

    assert save_and_read(sidecar, "statestore", "order-1", {"qty": 3}) == {"qty": 3}
    # The store's file path came from the Secret through the operator: daprd cannot read
    # Secrets itself here (no in-cluster credentials, built-in store disabled).
    assert read_secret(sidecar, "filestore", "greeting") == (200, {"greeting": "hello"})
    # ... and the Configuration's secret scopes are enforced.
    status, _ = read_secret(sidecar, "filestore", "pin")
    assert status == 403
    assert "level=fatal" not in log


def test_components_and_subscriptions_hot_reload(
    kube_cluster: KubeCluster,
    kube_control_plane: ControlPlane,
    operator: Operator,
    app_namespace: AppNamespace,
    logs: Processes,
    daprd_binary: Path,
    tmp_path: Path,
) -> None:
    app = app_namespace
    app.secret(
        "filestore-path",
        {
            "first": secrets_file(tmp_path / "first.json", {"greeting": "hello"}),
            "second": secrets_file(tmp_path / "second.json", {"greeting": "hello again"}),
        },
    )
    app.create("configurations", app_configuration([], ["greeting"]))
    app.create("components", component("statestore", "state.in-memory", []))
    app.create("components", file_secret_store("filestore", "filestore-path", "first"))
    app.create("components", component("pubsub", "pubsub.in-memory", []))
    pod = deploy_pod(kube_cluster, kube_control_plane, operator, app, tmp_path)
    sidecar = start_kubernetes_daprd(logs, daprd_binary, pod, watch=[OperatorWatch(operator)])
    assert set(components(sidecar)) == {"statestore", "filestore", "pubsub"}
    assert subscriptions(sidecar) == []
    # The Configuration does not name HotReload: daprd 1.18 turns it on by default (Dapr's docs
    # still describe it as a preview feature to opt in to).
    assert "HotReload" in enabled_features(sidecar)
    assert read_secret(sidecar, "filestore", "greeting") == (200, {"greeting": "hello"})

    # A new Component: loaded and usable.
    app.create("components", component("cache", "state.in-memory", []))
    wait_for(sidecar, lambda: "cache" in components(sidecar), "the new Component 'cache'")
    assert save_and_read(sidecar, "cache", "k", "v") == "v"

    # An updated Component: re-initialised with the newly resolved secret.
    app.patch(
        "components",
        "filestore",
        {"spec": {"metadata": [
            {"name": "secretsFile", "secretKeyRef": {"name": "filestore-path", "key": "second"}}
        ]}},
    )  # fmt: skip
    wait_for(
        sidecar,
        lambda: read_secret(sidecar, "filestore", "greeting")[1] == {"greeting": "hello again"},
        "the updated Component 'filestore' to read the second file",
    )

    # A Component that leaves the app's scope is unloaded, as a deleted one is, and loaded
    # again when it comes back into scope.
    app.patch("components", "cache", {"scopes": ["billing"]})
    wait_for(sidecar, lambda: "cache" not in components(sidecar), "'cache' to be unloaded")
    app.patch("components", "cache", {"scopes": ["billing", APP_ID]})
    wait_for(sidecar, lambda: "cache" in components(sidecar), "'cache' to be loaded again")
    app.delete("components", "pubsub")
    wait_for(sidecar, lambda: "pubsub" not in components(sidecar), "'pubsub' to be unloaded")
    app.create("components", component("pubsub", "pubsub.in-memory", []))
    wait_for(sidecar, lambda: "pubsub" in components(sidecar), "'pubsub' to be loaded again")

    # Subscriptions come and go the same way.
    app.create("subscriptions", subscription("new-orders", "orders", "/orders"), "v2alpha1")
    app.create("subscriptions", subscription("refunds", "refunds", "/refunds"), "v2alpha1")
    wait_for(
        sidecar,
        lambda: subscribed_topics(sidecar) == {"orders", "refunds"},
        "Subscriptions to topics 'orders' and 'refunds'",
    )
    app.delete("subscriptions", "refunds", "v2alpha1")
    wait_for(
        sidecar,
        lambda: subscribed_topics(sidecar) == {"orders"},
        "the Subscription to 'refunds' to go",
    )
    assert "level=fatal" not in sidecar.daprd.log_text()


def test_configuration_change_reloads_daprd(
    kube_cluster: KubeCluster,
    kube_control_plane: ControlPlane,
    operator: Operator,
    app_namespace: AppNamespace,
    logs: Processes,
    daprd_binary: Path,
    tmp_path: Path,
) -> None:
    app = app_namespace
    app.secret(
        "filestore-path",
        {"path": secrets_file(tmp_path / "secrets.json", {"greeting": "hello", "pin": "1234"})},
    )
    app.create("configurations", app_configuration([], ["greeting"]))
    # Another Configuration in the namespace, not the pod's.
    other = app_configuration([], [])
    other["metadata"]["name"] = "billing-config"
    app.create("configurations", other)
    app.create("components", file_secret_store("filestore", "filestore-path", "path"))
    pod = deploy_pod(kube_cluster, kube_control_plane, operator, app, tmp_path)
    sidecar = start_kubernetes_daprd(logs, daprd_binary, pod, watch=[OperatorWatch(operator)])
    assert MARKER_FEATURE not in enabled_features(sidecar)
    assert read_secret(sidecar, "filestore", "pin")[0] == 403

    # First a change daprd must not hear of, then one to the pod's Configuration: both go
    # through the same stream in this order, so once the second has arrived the first would
    # have too.
    app.patch("configurations", "billing-config", {"spec": {"features": [
        {"name": "BillingOnly", "enabled": True}
    ]}})  # fmt: skip
    app.patch(
        "configurations",
        APP_CONFIG,
        {"spec": {
            "features": [{"name": MARKER_FEATURE, "enabled": True}],
            "secrets": {"scopes": [
                {"storeName": "filestore", "defaultAccess": "allow", "allowedSecrets": []}
            ]},
        }},
    )  # fmt: skip
    wait_for(
        sidecar,
        lambda: MARKER_FEATURE in enabled_features(sidecar),
        f"daprd to reload with feature {MARKER_FEATURE}",
    )
    wait_for(
        sidecar,
        lambda: read_secret(sidecar, "filestore", "pin") == (200, {"pin": "1234"}),
        "the new secret scopes to allow 'pin'",
    )
    log = sidecar.daprd.log_text()
    # daprd reloads in place (same process), as on SIGHUP.
    assert f"Received Configuration UPDATED event: {APP_CONFIG} - triggering SIGHUP reload" in log
    assert "billing-config" not in log
    assert "BillingOnly" not in enabled_features(sidecar)
    assert sidecar.daprd.running


def test_sentry_refuses_a_daprd_without_the_pods_token(
    kube_cluster: KubeCluster,
    kube_control_plane: ControlPlane,
    operator: Operator,
    app_namespace: AppNamespace,
    logs: Processes,
    daprd_binary: Path,
    tmp_path: Path,
) -> None:
    app_namespace.create("configurations", app_configuration([], []))
    pod = deploy_pod(
        kube_cluster, kube_control_plane, operator, app_namespace, tmp_path, with_token=False
    )
    sidecar = start_kubernetes_daprd(logs, daprd_binary, pod, wait_healthy=False)
    wait_until(
        lambda: not sidecar.daprd.running,
        timeout=STARTUP_TIMEOUT,
        what="daprd to give up without an identity",
    )
    log = sidecar.daprd.log_text()
    assert "failed to retrieve the initial identity" in log
    assert "code = PermissionDenied" in log
    assert sidecar.daprd.popen.returncode != 0


def test_rotated_secret_reaches_daprd_through_its_backup_reconcile(
    kube_cluster: KubeCluster,
    kube_control_plane: ControlPlane,
    operator: Operator,
    app_namespace: AppNamespace,
    logs: Processes,
    daprd_binary: Path,
    tmp_path: Path,
) -> None:
    app = app_namespace
    first = secrets_file(tmp_path / "first.json", {"greeting": "hello"})
    second = secrets_file(tmp_path / "second.json", {"greeting": "rotated"})
    app.secret("filestore-path", {"path": first})
    app.create("configurations", app_configuration([], ["greeting"]))
    app.create("components", file_secret_store("filestore", "filestore-path", "path"))
    pod = deploy_pod(kube_cluster, kube_control_plane, operator, app, tmp_path)
    sidecar = start_kubernetes_daprd(
        logs,
        daprd_binary,
        pod,
        extra_args=["--hot-reload-reconcile-interval=1s"],
        watch=[OperatorWatch(operator)],
    )
    assert read_secret(sidecar, "filestore", "greeting") == (200, {"greeting": "hello"})

    client.CoreV1Api(app.api).patch_namespaced_secret(
        "filestore-path", app.namespace, {"stringData": {"path": second}}
    )
    wait_for(
        sidecar,
        lambda: read_secret(sidecar, "filestore", "greeting") == (200, {"greeting": "rotated"}),
        "daprd to re-list Components and reload 'filestore' with the rotated Secret",
    )
