"""Dapr's classic ``nodeapp`` in an app namespace, and a sidecar's view of the control plane.

The app is Dapr's hello-kubernetes Node.js sample as its manifest declares it (a Deployment of
``ghcr.io/dapr/samples/hello-k8s-node`` annotated for Dapr, with the ``tracing`` Configuration
it names), plus the Pod its ReplicaSet would create: with no controller-manager here, that Pod is
created directly, and the API server sends it through the injector's webhook like any other.

A sidecar's identity is what daprd does with its projected token: a token for the pod's
ServiceAccount, bound to the pod, for the audience of the injected ``dapr-identity-token``
volume, sent to sentry with a CSR for the app ID.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.helm.cases import TRUST_DOMAIN
from tests.helm.loop_plane import LoopPlane
from tests.helm.loop_pods import pod_from_template, pod_name
from tests.k8s.cluster import raw_request

APP_ID = "nodeapp"
APP_IMAGE = "ghcr.io/dapr/samples/hello-k8s-node:latest"
APP_PORT = 3000
CONFIGURATION = "tracing"
DAPRD = "daprd"
IDENTITY_VOLUME = "dapr-identity-token"
INJECTION_TIMEOUT = 30.0


def nodeapp_deployment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": APP_ID, "namespace": namespace, "labels": {"app": "node"}},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"app": "node"}},
            "template": {
                "metadata": {
                    "labels": {"app": "node"},
                    "annotations": {
                        "dapr.io/enabled": "true",
                        "dapr.io/app-id": APP_ID,
                        "dapr.io/app-port": str(APP_PORT),
                        "dapr.io/config": CONFIGURATION,
                    },
                },
                "spec": {
                    "containers": [
                        {
                            "name": "node",
                            "image": APP_IMAGE,
                            "env": [{"name": "APP_PORT", "value": str(APP_PORT)}],
                            "ports": [{"containerPort": APP_PORT}],
                            "imagePullPolicy": "Always",
                        }
                    ]
                },
            },
        },
    }


def tracing_configuration(namespace: str) -> dict[str, Any]:
    """The sample's ``tracing`` Configuration (every request sampled, to Zipkin)."""
    return {
        "apiVersion": "dapr.io/v1alpha1",
        "kind": "Configuration",
        "metadata": {"name": CONFIGURATION, "namespace": namespace},
        "spec": {
            "tracing": {
                "samplingRate": "1",
                "zipkin": {
                    "endpointAddress": "http://zipkin.default.svc.cluster.local:9411/api/v2/spans"
                },
            }
        },
    }


def containers_by_name(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {container["name"]: container for container in pod["spec"]["containers"]}


def create_injected_pod(api: Any, pod: dict[str, Any]) -> dict[str, Any]:
    """Create ``pod`` once the API server sends it through the injector; the stored Pod.

    The API server picks up the webhook configuration (and the caBundle the injector patches
    in) a moment after it changes, and the chart's ``failurePolicy: Ignore`` admits a pod
    unchanged meanwhile. So the pod is first created with ``dryRun=All`` (admission runs, the
    webhook has no side effects, nothing is stored) until it comes back injected.
    """
    collection = f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods"
    deadline = time.monotonic() + INJECTION_TIMEOUT
    while DAPRD not in containers_by_name(
        raw_request(api, "POST", collection, body=pod, query=[("dryRun", "All")])
    ):
        if time.monotonic() > deadline:
            raise AssertionError(f"the API server did not inject {pod['metadata']['name']}")
        time.sleep(0.2)
    stored: dict[str, Any] = raw_request(api, "POST", collection, body=pod)
    return stored


@dataclass
class NodeApp:
    namespace: str
    configuration: dict[str, Any]
    deployment: dict[str, Any]
    pod: dict[str, Any]  # the stored, injected Pod

    @property
    def daprd(self) -> dict[str, Any]:
        return containers_by_name(self.pod)[DAPRD]

    @property
    def app(self) -> dict[str, Any]:
        return containers_by_name(self.pod)["node"]

    def identity_audience(self) -> str:
        """The audience of the sentry token the injector projects into the pod."""
        (volume,) = (v for v in self.pod["spec"]["volumes"] if v["name"] == IDENTITY_VOLUME)
        (source,) = volume["projected"]["sources"]
        return str(source["serviceAccountToken"]["audience"])


def deploy_nodeapp(plane: LoopPlane, namespace: str) -> NodeApp:
    """The sample's objects in ``namespace``, and the Pod its ReplicaSet would create."""
    api = plane.api
    configuration = raw_request(
        api,
        "POST",
        f"/apis/dapr.io/v1alpha1/namespaces/{namespace}/configurations",
        body=tracing_configuration(namespace),
    )
    deployment = raw_request(
        api,
        "POST",
        f"/apis/apps/v1/namespaces/{namespace}/deployments",
        body=nodeapp_deployment(namespace),
    )
    pod = create_injected_pod(api, pod_from_template(deployment, pod_name(deployment)))
    return NodeApp(namespace, configuration, deployment, pod)


def sidecar_token(plane: LoopPlane, app: NodeApp, path: Path) -> Path:
    """What the kubelet would put in the sidecar's ``dapr-identity-token`` volume."""
    token = plane.cluster.service_account_token(
        app.namespace,
        app.pod["spec"]["serviceAccountName"],
        audiences=[app.identity_audience()],
        bound_object={
            "kind": "Pod",
            "apiVersion": "v1",
            "name": app.pod["metadata"]["name"],
            "uid": app.pod["metadata"]["uid"],
        },
        create=False,
    )
    path.write_text(token)
    return path


def sidecar_sentry_client(
    plane: LoopPlane, app: NodeApp, token: Path, *, app_id: str = APP_ID, tries: int = 5
) -> Any:
    """The sentry client daprd would build from its injected flags (its sentry at our port)."""
    from daprplane.core.security.anchors import StaticTrustAnchors
    from daprplane.core.security.sentry_client import SentryClient

    return SentryClient(
        address=plane.sentry.address,
        anchors=StaticTrustAnchors.from_pem(plane.anchors),
        app_id=app_id,
        namespace=app.namespace,
        control_plane_trust_domain=TRUST_DOMAIN,
        control_plane_namespace=plane.namespace,
        kubernetes_mode=True,
        environ={"DAPR_SENTRY_TOKEN_FILE": str(token)},
        tries=tries,
    )


@contextlib.asynccontextmanager
async def placement_host(
    plane: LoopPlane, app: NodeApp, token: Path, actor_types: list[str]
) -> AsyncIterator[Any]:
    """A placement client for the app's sidecar, with its SVID from sentry, connected."""
    from daprplane.core.security.anchors import StaticTrustAnchors
    from daprplane.core.security.rotation import SvidSource
    from daprplane.plugins.placement.client import MtlsCredentials, PlacementClient

    sentry = sidecar_sentry_client(plane, app, token)
    async with SvidSource(sentry.sign) as svid:
        await svid.wait_ready()
        credentials = MtlsCredentials(
            StaticTrustAnchors.from_pem(plane.anchors),
            svid,
            trust_domain=TRUST_DOMAIN,
            control_plane_namespace=plane.namespace,
        )
        client = PlacementClient(
            plane.placement.address,
            app_id=APP_ID,
            namespace=app.namespace,
            host_name="127.0.0.1:50002",
            actor_types=actor_types,
            credentials=credentials,
        )
        async with client:
            yield client


@contextlib.asynccontextmanager
async def operator_stub(plane: LoopPlane, app: NodeApp, token: Path) -> AsyncIterator[Any]:
    """The operator's API as the app's sidecar reaches it: mTLS, the operator's ID pinned."""
    from daprplane._proto.operator.v1 import operator_pb2_grpc
    from daprplane.core.security.anchors import StaticTrustAnchors
    from daprplane.core.security.authz import allow_ids
    from daprplane.core.security.dialer import SpiffeChannel
    from daprplane.core.security.rotation import SvidSource
    from daprplane.core.security.spiffe import SpiffeId

    operator_id = SpiffeId.for_app(TRUST_DOMAIN, plane.namespace, "dapr-operator")
    sentry = sidecar_sentry_client(plane, app, token)
    async with SvidSource(sentry.sign) as svid:
        await svid.wait_ready()
        channel = SpiffeChannel(
            plane.operator.address,
            anchors=StaticTrustAnchors.from_pem(plane.anchors),
            authorize=allow_ids(operator_id),
            svid=svid,
        )
        async with channel as grpc_channel:
            yield operator_pb2_grpc.OperatorStub(grpc_channel)  # type: ignore[no-untyped-call]
