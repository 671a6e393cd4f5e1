"""The injector end to end: pods created through the real API server, read back as stored.

The injector is started by absolute path with an empty environment (besides its own variables),
gets its serving certificate from a real sentry and writes the webhook ``caBundle`` itself.
"""

from __future__ import annotations

import json
import signal
import socket
import time
from typing import Any

import pytest

from tests.integration.injector.conftest import (
    SIDECAR_IMAGE,
    Injector,
    apply,
    ca_bundle,
    injector_env,
    injector_kubeconfig,
    run_injector,
)
from tests.integration.launchers import wait_until_healthy
from tests.k8s.cluster import KubeCluster

pytestmark = [pytest.mark.k8s, pytest.mark.slow]


def pod_manifest(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "containers": [
                {"name": "app", "image": "example/app:1", "ports": [{"containerPort": 3000}]}
            ]
        },
    }


def dapr_annotations(app_id: str) -> dict[str, str]:
    return {"dapr.io/enabled": "true", "dapr.io/app-id": app_id, "dapr.io/app-port": "3000"}


def create_pod(api: Any, namespace: str, manifest: dict[str, Any]) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api).create_namespaced_pod(namespace, manifest)


def stored_pod(kube_api: Any, namespace: str, name: str) -> Any:
    from kubernetes import client

    return client.CoreV1Api(kube_api).read_namespaced_pod(name, namespace)


def allow_pod_creation(api: Any, namespace: str, subject: dict[str, str]) -> None:
    """A Role letting ``subject`` create and read pods in ``namespace``."""
    apply(
        api,
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "pods"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["create", "get"]}],
        },
    )
    name = "pods-" + subject["name"].replace(":", "-")
    apply(
        api,
        f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "pods"},
            "subjects": [subject],
        },
    )


def container(pod: Any, name: str) -> Any:
    return next((c for c in pod.spec.containers if c.name == name), None)


def test_injector_patched_the_ca_bundle_with_the_trust_anchors(
    injector: Injector, kube_api: Any
) -> None:
    assert ca_bundle(kube_api) == injector.anchors_file.read_bytes()


def test_pod_created_by_system_masters_gets_daprd(
    injector: Injector, app_namespace: str, kube_api: Any
) -> None:
    create_pod(kube_api, app_namespace, pod_manifest("nodeapp", dapr_annotations("nodeapp")))
    pod = stored_pod(kube_api, app_namespace, "nodeapp")
    daprd = container(pod, "daprd")
    assert daprd is not None, [c.name for c in pod.spec.containers]
    assert daprd.image == SIDECAR_IMAGE
    assert daprd.image_pull_policy == "IfNotPresent"
    args = daprd.args
    assert args[0] == "/daprd"
    assert args[args.index("--app-id") + 1] == "nodeapp"
    assert args[args.index("--app-port") + 1] == "3000"
    assert args[args.index("--mode") + 1] == "kubernetes"
    cp = injector.namespace
    assert args[args.index("--sentry-address") + 1] == f"dapr-sentry.{cp}.svc.cluster.local:443"
    assert args[args.index("--scheduler-host-address") + 1] == (
        f"dapr-scheduler-server-a.{cp}.svc.cluster.local:443"
    )
    env = {e.name: e.value for e in daprd.env}
    assert env["NAMESPACE"] == app_namespace
    assert env["DAPR_CONTROLPLANE_NAMESPACE"] == cp
    assert env["DAPR_TRUST_ANCHORS"] == injector.anchors_file.read_text()
    assert [p.name for p in daprd.ports] == [
        "dapr-http",
        "dapr-grpc",
        "dapr-internal",
        "dapr-metrics",
    ]
    assert pod.metadata.labels["dapr.io/sidecar-injected"] == "true"
    assert pod.metadata.labels["dapr.io/app-id"] == "nodeapp"
    app_env = {e.name: e.value for e in container(pod, "app").env}
    assert app_env["DAPR_HTTP_PORT"] == "3500"
    assert app_env["DAPR_GRPC_PORT"] == "50001"
    metrics = injector.metrics()
    assert 'dapr_injector_sidecar_injection_succeeded_total{app_id="nodeapp"}' in metrics


def test_third_party_plugin_extends_the_sidecar(
    injector: Injector, app_namespace: str, kube_api: Any
) -> None:
    # daprplane-sample, installed as its own distribution, adds an env var to daprd through the
    # daprplane_injector_edit_sidecar hook when its annotation is present.
    annotations = {**dapr_annotations("greeter"), "sample.daprplane.dev/greeting": "hello"}
    create_pod(kube_api, app_namespace, pod_manifest("greeter", annotations))
    daprd = container(stored_pod(kube_api, app_namespace, "greeter"), "daprd")
    assert daprd is not None
    assert {e.name: e.value for e in daprd.env}["SAMPLE_GREETING"] == "hello"


def test_allowed_service_account_gets_daprd_and_others_do_not(
    injector: Injector, app_namespace: str, kube_cluster: KubeCluster, kube_api: Any
) -> None:
    for account in ("builder-1", "default"):
        allow_pod_creation(
            kube_api,
            app_namespace,
            {"kind": "ServiceAccount", "name": account, "namespace": app_namespace},
        )
    with kube_cluster.service_account_api_client(app_namespace, "builder-1") as builder:
        create_pod(builder, app_namespace, pod_manifest("built", dapr_annotations("built")))
    with kube_cluster.service_account_api_client(app_namespace, "default") as other:
        create_pod(other, app_namespace, pod_manifest("plain", dapr_annotations("plain")))
    assert container(stored_pod(kube_api, app_namespace, "built"), "daprd") is not None
    unchanged = stored_pod(kube_api, app_namespace, "plain")
    assert [c.name for c in unchanged.spec.containers] == ["app"]
    assert "dapr.io/sidecar-injected" not in (unchanged.metadata.labels or {})
    assert 'reason="pod_patch"' in injector.metrics()


def test_user_outside_system_masters_gets_the_pod_unchanged(
    injector: Injector, app_namespace: str, kube_cluster: KubeCluster, kube_api: Any
) -> None:
    allow_pod_creation(
        kube_api,
        app_namespace,
        {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
    )
    with kube_cluster.user_api_client("alice", ["developers"]) as alice:
        create_pod(alice, app_namespace, pod_manifest("alices", dapr_annotations("alices")))
    assert [c.name for c in stored_pod(kube_api, app_namespace, "alices").spec.containers] == [
        "app"
    ]


@pytest.mark.parametrize(
    "annotations", [{}, {"dapr.io/enabled": "false"}, {"dapr.io/enabled": "yes"}]
)
def test_pods_without_dapr_are_untouched(
    injector: Injector, app_namespace: str, kube_api: Any, annotations: dict[str, str]
) -> None:
    created = create_pod(kube_api, app_namespace, pod_manifest("nodapr", annotations))
    pod = stored_pod(kube_api, app_namespace, "nodapr")
    assert [c.name for c in pod.spec.containers] == ["app"]
    assert pod.metadata.labels is None
    assert pod.to_dict() == created.to_dict()


def test_invalid_app_id_is_rejected_by_the_api_server_with_our_message(
    injector: Injector, app_namespace: str, kube_api: Any
) -> None:
    from kubernetes import client

    with pytest.raises(client.ApiException) as caught:
        create_pod(kube_api, app_namespace, pod_manifest("bad", dapr_annotations("Bad_Id")))
    assert caught.value.status == 400
    message = json.loads(caught.value.body)["message"]
    assert message.startswith(
        'admission webhook "sidecar-injector.dapr.io" denied the request: '
        "invalid app id (input: 'Bad_Id', service: 'Bad_Id-dapr')"
    )
    with pytest.raises(client.ApiException) as missing:
        stored_pod(kube_api, app_namespace, "bad")
    assert missing.value.status == 404


def served_certificate(injector: Injector) -> bytes:
    context = injector.ssl_context()
    raw = socket.create_connection(("127.0.0.1", injector.port), timeout=5)
    with context.wrap_socket(raw, server_hostname=injector.server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return der


def test_serving_certificate_is_rotated_without_a_restart(injector: Injector) -> None:
    first = served_certificate(injector)
    deadline = time.monotonic() + 20
    while served_certificate(injector) == first:
        assert time.monotonic() < deadline, "the serving certificate was not renewed"
        time.sleep(0.5)
    assert injector.process.poll() is None


def test_new_trust_anchors_are_written_to_the_ca_bundle(
    injector: Injector, kube_api: Any, tmp_path: Any
) -> None:
    from tests.pki import TlsCA

    original = injector.anchors_file.read_bytes()
    extra = TlsCA("another-root").cert_pem
    try:
        injector.anchors_file.write_bytes(original + extra)
        deadline = time.monotonic() + 15
        while (
            ca_bundle(kube_api).count(b"BEGIN CERTIFICATE")
            != original.count(b"BEGIN CERTIFICATE") + 1
        ):
            assert time.monotonic() < deadline, "caBundle not updated"
            time.sleep(0.2)
    finally:
        injector.anchors_file.write_bytes(original)
    deadline = time.monotonic() + 15
    while ca_bundle(kube_api) != original:
        assert time.monotonic() < deadline, "caBundle not restored"
        time.sleep(0.2)


def test_webhook_listens_only_on_the_listen_address(injector: Injector) -> None:
    addresses = {info[4][0] for info in socket.getaddrinfo(socket.gethostname(), None)}
    others = [a for a in addresses if not a.startswith("127.") and a != "::1"]
    for address in others[:1]:
        with pytest.raises(OSError):
            socket.create_connection((address, injector.port), timeout=2).close()
    served_certificate(injector)


def test_exits_1_when_the_webhook_configuration_cannot_be_patched(
    injector: Injector, kube_cluster: KubeCluster, kube_api: Any
) -> None:
    # A user that may list ServiceAccounts but not patch the webhook configuration.
    apply(
        kube_api,
        "/apis/rbac.authorization.k8s.io/v1/clusterroles",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "daprplane-test-sa-reader"},
            "rules": [{"apiGroups": [""], "resources": ["serviceaccounts"], "verbs": ["list"]}],
        },
    )
    apply(
        kube_api,
        "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "daprplane-test-sa-reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "daprplane-test-sa-reader",
            },
            "subjects": [
                {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "sa-reader"}
            ],
        },
    )
    kubeconfig = kube_cluster.user_kubeconfig("sa-reader")
    env = injector_env(injector.namespace, injector.anchors_file, injector.sentry)
    with run_injector(kubeconfig, env) as (process, *_):
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, out + err
    fatal = [line for line in out.splitlines() if "level=fatal" in line]
    assert len(fatal) == 1, out
    assert "failed to patch webhook configuration dapr-sidecar-injector" in fatal[0]
    assert "Traceback" not in out + err


def test_exits_1_when_service_accounts_cannot_be_listed(
    injector: Injector, kube_cluster: KubeCluster
) -> None:
    kubeconfig = kube_cluster.user_kubeconfig("nobody")
    env = injector_env(injector.namespace, injector.anchors_file, injector.sentry)
    with run_injector(kubeconfig, env) as (process, *_):
        out, err = process.communicate(timeout=60)
    assert process.returncode == 1, out + err
    assert "failed to get the service account UIDs" in out


def test_graceful_stop_exits_0(injector: Injector, kube_cluster: KubeCluster) -> None:
    # A second injector on another port: patches the same caBundle, then stops on SIGTERM.
    with kube_cluster.api_client() as api:
        kubeconfig = injector_kubeconfig(kube_cluster, api)
    env = injector_env(injector.namespace, injector.anchors_file, injector.sentry)
    with run_injector(kubeconfig, env) as (process, _, healthz, _):
        wait_until_healthy(process, healthz, what="injector")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    assert "shut down gracefully" in out
