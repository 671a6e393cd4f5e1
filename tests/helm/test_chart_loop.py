"""The whole loop: the chart rendered and installed on the real API server, its four pods run
here as their containers would run (:mod:`tests.helm.loop_plane`), and Dapr's ``nodeapp``
sample deployed against them.

Sentry creates the CA and publishes it; placement, the operator and the injector get their
identities from it with their pods' ServiceAccount tokens and reach the API server with the
chart's RBAC; the API server sends a new pod through the injector's webhook; the operator
makes the app's Service; and a sidecar (the identity and placement clients, as daprd uses them)
gets its certificate from sentry, its Configuration from the operator and its actor tables
from placement. The chart is rendered with Dapr's defaults, sentry's local address and the
registry-mirror plugin configured; the last test stops everything with SIGTERM and removes it.
"""

from __future__ import annotations

import base64
import itertools
import json
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from kubernetes import client

from daprplane.core.security.sentry_client import SentryError
from tests.helm.apply import ensure_crds
from tests.helm.cases import TRUST_DOMAIN, WEBHOOK_COLLECTION
from tests.helm.chart import CHART_CRDS_DIR, Rendered, env_of, render
from tests.helm.launchers import expand, resolved_environ
from tests.helm.loop_apps import (
    APP_ID,
    APP_IMAGE,
    DAPRD,
    NodeApp,
    deploy_nodeapp,
    operator_stub,
    placement_host,
    sidecar_sentry_client,
    sidecar_token,
)
from tests.helm.loop_plane import (
    INJECTOR,
    PLACEMENT,
    SENTRY,
    SUBSCRIPTIONS_CRD,
    TRUST_BUNDLE,
    LoopPlane,
    control_plane,
)
from tests.helm.loop_pods import isolation_unavailable, override_flags
from tests.k8s.cluster import KubeCluster, raw_request
from tests.k8s.helpers import wait_for

_UNAVAILABLE = isolation_unavailable()
pytestmark = [
    pytest.mark.k8s,
    pytest.mark.skipif(_UNAVAILABLE is not None, reason=f"pods need namespaces: {_UNAVAILABLE}"),
]

MIRROR = "mirror.registry.internal/dapr"
PULL_SECRET = "dapr-mirror-pull"
EXTRA_VALUES = {
    "dapr_sidecar_injector": {
        "registryMirror": {
            "rules": [{"source": "ghcr.io/dapr", "mirror": MIRROR}],
            "imagePullSecrets": [PULL_SECRET],
        }
    }
}
ACTOR_TYPE = "NodeActor"
TIMEOUT = 20.0


@pytest.fixture(scope="module")
def plane(kube_cluster: KubeCluster) -> Iterator[LoopPlane]:
    with kube_cluster.api_client() as api, control_plane(kube_cluster, api, EXTRA_VALUES) as up:
        yield up


@pytest.fixture(scope="module")
def nodeapp(plane: LoopPlane) -> Iterator[NodeApp]:
    namespace = plane.cluster.create_namespace(f"loop-apps-{secrets.token_hex(3)}")
    try:
        yield deploy_nodeapp(plane, namespace)
    finally:
        plane.cluster.delete_namespace(namespace)


@pytest.fixture
def token(plane: LoopPlane, nodeapp: NodeApp, tmp_path: Path) -> Path:
    return sidecar_token(plane, nodeapp, tmp_path / "token")


# ---------------------------------------------------------------------- the chart, installed


def test_every_rendered_object_is_created(plane: LoopPlane) -> None:
    assert len(plane.created) == len(plane.rendered.documents)
    for item, document in zip(plane.created, plane.rendered, strict=True):
        assert (item.body["kind"], item.body["metadata"]["name"]) == (
            document["kind"],
            document["metadata"]["name"],
        )
        assert (
            raw_request(plane.api, "GET", item.path)["metadata"]["name"]
            == (document["metadata"]["name"])
        )
    assert len(ensure_crds(plane.api, CHART_CRDS_DIR)) == 7  # all Established


def test_values_change_only_the_sentry_address_and_the_mirror(plane: LoopPlane) -> None:
    """The loop's values against Dapr's defaults: exactly the documented differences."""
    expected = _comparable(render(namespace=plane.namespace))
    sentry_address = plane.sentry.address
    expected["Configuration/daprsystem"]["spec"]["mtls"]["sentryAddress"] = sentry_address
    placement_args = expected[f"StatefulSet/{PLACEMENT}"]["container"]["args"]
    placement_args[placement_args.index("--sentry-address") + 1] = sentry_address
    injector_env = expected[f"Deployment/{INJECTOR}"]["container"]["env"]
    injector_env["DAPR_SENTRY_ADDRESS"] = sentry_address
    injector_env["DAPRPLANE_REGISTRY_MIRROR"] = f"ghcr.io/dapr={MIRROR}"
    injector_env["DAPRPLANE_IMAGE_PULL_SECRETS"] = PULL_SECRET
    assert _comparable(plane.rendered) == expected


def _comparable(rendered: Rendered) -> dict[str, Any]:
    """Documents by kind/name; a workload's container apart, with its env as a dict."""
    documents: dict[str, Any] = {}
    for document in rendered:
        key = f"{document['kind']}/{document['metadata']['name']}"
        documents[key] = json.loads(json.dumps(document))
        if document["kind"] in ("Deployment", "StatefulSet"):
            (container,) = documents[key]["spec"]["template"]["spec"].pop("containers")
            container["env"] = env_of(container)
            documents[key]["container"] = container
    return documents


def test_each_pod_runs_its_rendered_container(plane: LoopPlane) -> None:
    """The stored pod's container is the template's, and the process runs it as rendered, but
    for the overridden ports."""
    for name, component in plane.components.items():
        rendered = plane.rendered.container(name)
        stored = component.pod.container
        for field in ("command", "args", "image", "securityContext"):
            assert stored[field] == rendered[field], (name, field)
        fields = {"metadata.name": component.pod.name, "metadata.namespace": plane.namespace}
        environ = resolved_environ(rendered, fields)
        assert resolved_environ(stored, fields) == environ, name
        command = expand([*rendered["command"], *rendered["args"]], environ)
        overrides = {f"--{flag}": str(port) for flag, port in component.ports.items()}
        assert component.launch.command[1:] == override_flags(command, overrides)[1:]
        assert Path(component.launch.command[0]).name == rendered["command"][0]
        assert component.launch.env.items() >= environ.items()
        assert component.process is not None and component.process.poll() is None, name


def test_sentry_publishes_the_trust_bundle(plane: LoopPlane) -> None:
    core = f"/api/v1/namespaces/{plane.namespace}"
    secret = raw_request(plane.api, "GET", f"{core}/secrets/{TRUST_BUNDLE}")["data"]
    assert {"ca.crt", "issuer.crt", "issuer.key"} <= secret.keys()
    assert base64.b64decode(secret["ca.crt"]) == plane.anchors
    (root,) = x509.load_pem_x509_certificates(plane.anchors)
    issuer = x509.load_pem_x509_certificate(base64.b64decode(secret["issuer.crt"]))
    issuer.verify_directly_issued_by(root)
    # What each identity pod has mounted (the kubelet's sync of the ConfigMap).
    for name, component in plane.components.items():
        if name != SENTRY:
            mounted = component.pod.file("/var/run/secrets/dapr.io/tls", "ca.crt")
            assert mounted.read_bytes() == plane.anchors, name


def test_injector_keeps_the_webhook_ca_bundle(plane: LoopPlane) -> None:
    webhook = raw_request(plane.api, "GET", f"{WEBHOOK_COLLECTION}/{INJECTOR}")["webhooks"][0]
    assert base64.b64decode(webhook["clientConfig"]["caBundle"]) == plane.anchors
    assert webhook["clientConfig"]["service"] == {
        "namespace": plane.namespace,
        "name": INJECTOR,
        "path": "/mutate",
        "port": plane.injector.ports["port"],
    }


# ---------------------------------------------------------------------- the app


def test_nodeapp_pod_gets_daprd(plane: LoopPlane, nodeapp: NodeApp) -> None:
    daprd = nodeapp.daprd
    args = daprd["args"]

    def flag(name: str) -> str:
        return str(args[args.index(name) + 1])

    namespace, domain = plane.namespace, "svc.cluster.local"
    assert flag("--sentry-address") == f"dapr-sentry.{namespace}.{domain}:443"
    assert flag("--control-plane-address") == f"dapr-api.{namespace}.{domain}:443"
    assert flag("--placement-host-address") == f"dapr-placement-server.{namespace}.{domain}:50005"
    assert (flag("--app-id"), flag("--app-port"), flag("--config")) == (APP_ID, "3000", "tracing")
    assert flag("--mode") == "kubernetes" and "--enable-mtls" in args
    env = env_of(daprd)
    assert env["DAPR_TRUST_ANCHORS"].encode() == plane.anchors
    assert env["DAPR_CONTROLPLANE_NAMESPACE"] == namespace
    assert env["DAPR_CONTROLPLANE_TRUST_DOMAIN"] == TRUST_DOMAIN
    assert env["NAMESPACE"] == nodeapp.namespace
    app_env = env_of(nodeapp.app)
    assert (app_env["DAPR_HTTP_PORT"], app_env["DAPR_GRPC_PORT"]) == ("3500", "50001")
    # The injector has a ServiceAccount token, so the sidecar gets its own for sentry.
    assert nodeapp.identity_audience() == f"spiffe://{TRUST_DOMAIN}/ns/{namespace}/dapr-sentry"
    mounts = {mount["mountPath"]: mount["name"] for mount in daprd["volumeMounts"]}
    assert mounts["/var/run/secrets/dapr.io/sentrytoken"] == "dapr-identity-token"


def test_deployment_gets_its_dapr_service(plane: LoopPlane, nodeapp: NodeApp) -> None:
    deployments = f"/apis/apps/v1/namespaces/{nodeapp.namespace}/deployments"
    stored = raw_request(plane.api, "GET", f"{deployments}/{APP_ID}")
    assert stored["metadata"]["uid"] == nodeapp.deployment["metadata"]["uid"]
    path = f"/api/v1/namespaces/{nodeapp.namespace}/services/{APP_ID}-dapr"

    def service() -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = raw_request(plane.api, "GET", path)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
            return None
        return found

    created = wait_for(service, timeout=TIMEOUT, message=f"Service {APP_ID}-dapr")
    assert created is not None
    ports = [
        (port["name"], port["port"], port["targetPort"], port["appProtocol"])
        for port in created["spec"]["ports"]
    ]
    assert ports == [
        ("dapr-http", 80, 3500, "http"),
        ("dapr-grpc", 50001, 50001, "grpc"),
        ("dapr-internal", 50002, 50002, "tls"),
        ("dapr-metrics", 9090, 9090, "http"),
    ]
    assert created["spec"]["clusterIP"] == "None"
    assert created["spec"]["selector"] == {"app": "node"}
    (owner,) = created["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["uid"]) == ("Deployment", stored["metadata"]["uid"])


async def test_sidecar_identity_from_sentry(
    plane: LoopPlane, nodeapp: NodeApp, token: Path
) -> None:
    svid = await sidecar_sentry_client(plane, nodeapp, token).sign()
    # The app's Configuration ("tracing") sets no trust domain: sentry gives apps "public".
    assert str(svid.spiffe_id) == f"spiffe://public/ns/{nodeapp.namespace}/{APP_ID}"
    leaf, *intermediates = svid.certificates
    (root,) = x509.load_pem_x509_certificates(plane.anchors)
    chain = [leaf, *intermediates, root]
    for certificate, issuer in itertools.pairwise(chain):
        certificate.verify_directly_issued_by(issuer)
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.UniformResourceIdentifier) == [str(svid.spiffe_id)]


async def test_sentry_refuses_another_app_id_for_the_pod(
    plane: LoopPlane, nodeapp: NodeApp, token: Path
) -> None:
    impostor = sidecar_sentry_client(plane, nodeapp, token, app_id="someone-else", tries=1)
    with pytest.raises(SentryError, match="app-id mismatch"):
        await impostor.sign()


async def test_operator_serves_the_sidecar_its_configuration(
    plane: LoopPlane, nodeapp: NodeApp, token: Path
) -> None:
    from daprplane._proto.operator.v1 import operator_pb2

    async with operator_stub(plane, nodeapp, token) as stub:
        response = await stub.GetConfiguration(
            operator_pb2.GetConfigurationRequest(name="tracing", namespace=nodeapp.namespace),
            timeout=TIMEOUT,
        )
    configuration = json.loads(response.configuration)
    assert configuration["metadata"]["name"] == "tracing"
    assert configuration["spec"]["tracing"]["samplingRate"] == "1"


async def test_placement_disseminates_the_sidecar_actor_types(
    plane: LoopPlane, nodeapp: NodeApp, token: Path
) -> None:
    async with placement_host(plane, nodeapp, token, [ACTOR_TYPE]) as host:
        tables = await host.wait_ready(TIMEOUT)
        assert ACTOR_TYPE in tables.types
        assert host.locate(ACTOR_TYPE, "actor-1").app_id == APP_ID
        await host.update_actor_types([ACTOR_TYPE, "NodeTimer"])
        newer = await host.wait_version(tables.version + 1, TIMEOUT)
        assert {ACTOR_TYPE, "NodeTimer"} <= newer.types.keys()
        assert newer.version > tables.version


def test_private_registry_mirror_and_pull_secret(nodeapp: NodeApp) -> None:
    assert nodeapp.daprd["image"] == f"{MIRROR}/daprd:1.18.3"
    assert nodeapp.app["image"] == APP_IMAGE  # only daprd is mirrored
    assert nodeapp.pod["spec"]["imagePullSecrets"] == [{"name": PULL_SECRET}]
    assert DAPRD in {container["name"] for container in nodeapp.pod["spec"]["containers"]}


# ---------------------------------------------------------------------- the end


def test_everything_stops_and_is_removed(plane: LoopPlane, nodeapp: NodeApp) -> None:
    """Last: SIGTERM stops every component with exit code 0, and nothing is left behind."""
    codes = plane.stop()
    failed = {name: plane.components[name].output() for name, code in codes.items() if code}
    assert codes == dict.fromkeys(codes, 0), failed
    plane.cluster.delete_namespace(nodeapp.namespace)
    plane.remove()
    for path in [
        f"/api/v1/namespaces/{plane.namespace}",
        f"/api/v1/namespaces/{nodeapp.namespace}",
        *(item.path for item in plane.created if not item.namespaced),
    ]:
        with pytest.raises(client.ApiException) as missing:
            raw_request(plane.api, "GET", path)
        assert missing.value.status == 404, path
    crd = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{SUBSCRIPTIONS_CRD}"
    conversion = raw_request(plane.api, "GET", crd)["spec"]["conversion"]["webhook"]
    assert conversion["clientConfig"]["service"]["namespace"] == "replaceme"
    assert "caBundle" not in conversion["clientConfig"]
    assert not plane.directory.exists()
