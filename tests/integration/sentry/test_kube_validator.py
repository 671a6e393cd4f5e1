"""The KUBERNETES validator against a real API server: TokenReview, pod and Configuration caches."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry import images
from daprplane.plugins.sentry.validators.base import ValidationError
from daprplane.plugins.sentry.validators.kubernetes import KubernetesValidator
from tests.k8s.cluster import KubeCluster
from tests.k8s.helpers import install_crds

pytestmark = pytest.mark.k8s

CRDS = Path(__file__).resolve().parents[3] / "deploy" / "crds" / "configuration.yaml"
SENTRY_TD = "localhost"
KUBERNETES = sentry_pb2.SignCertificateRequest.KUBERNETES


@pytest.fixture(scope="module")
def crds(kube_cluster: KubeCluster) -> None:
    with kube_cluster.api_client() as api:
        install_crds(api, [CRDS])


@pytest.fixture
def control_plane_namespace(kube_cluster: KubeCluster) -> Iterator[str]:
    name = kube_cluster.create_namespace(prefix="dapr-system-")
    yield name
    kube_cluster.delete_namespace(name)


def create_pod(
    api: Any,
    namespace: str,
    name: str,
    service_account: str = "default",
    annotations: dict[str, str] | None = None,
    image_ids: dict[str, str] | None = None,
) -> dict[str, Any]:
    core = client.CoreV1Api(api)
    if service_account != "default":
        try:
            core.create_namespaced_service_account(
                namespace, {"metadata": {"name": service_account}}
            )
        except client.ApiException as error:
            if error.status != 409:
                raise
    body = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "annotations": annotations or {}},
        "spec": {
            "serviceAccountName": service_account,
            "initContainers": [
                {"name": "daprd", "image": "ghcr.io/dapr/daprd:1.18.0", "restartPolicy": "Always"}
            ],
            "containers": [{"name": "app", "image": "example/app:1"}],
        },
    }
    pod = api.sanitize_for_serialization(core.create_namespaced_pod(namespace, body))
    if image_ids:
        status = {
            "initContainerStatuses": [
                {
                    "name": "daprd",
                    "image": "ghcr.io/dapr/daprd:1.18.0",
                    "imageID": image_ids["daprd"],
                    "ready": True,
                    "restartCount": 0,
                    "state": {},
                }
            ],
            "containerStatuses": [
                {
                    "name": "app",
                    "image": "example/app:1",
                    "imageID": image_ids["app"],
                    "ready": True,
                    "restartCount": 0,
                    "state": {},
                }
            ],
        }
        core.patch_namespaced_pod_status(name, namespace, {"status": status})
    return pod


def create_configuration(api: Any, namespace: str, name: str, trust_domain: str | None) -> None:
    spec: dict[str, Any] = {"mtls": {"enabled": True}}
    if trust_domain is not None:
        spec["accessControl"] = {"trustDomain": trust_domain, "defaultAction": "allow"}
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        "dapr.io",
        "v1alpha1",
        namespace,
        "configurations",
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": name},
            "spec": spec,
        },
    )


def token_for(cluster: KubeCluster, pod: dict[str, Any], audiences: list[str] | None = None) -> str:
    metadata = pod["metadata"]
    return cluster.service_account_token(
        metadata["namespace"],
        pod["spec"]["serviceAccountName"],
        audiences=audiences or ["dapr.io/sentry"],
        bound_object={
            "kind": "Pod",
            "apiVersion": "v1",
            "name": metadata["name"],
            "uid": metadata["uid"],
        },
        create=False,
    )


def sign_request(app_id: str, namespace: str, token: str) -> sentry_pb2.SignCertificateRequest:
    return sentry_pb2.SignCertificateRequest(
        id=app_id,
        namespace=namespace,
        token=token,
        certificate_signing_request=b"csr",
        token_validator=KUBERNETES,
    )


@pytest.fixture
async def validator(
    kube_cluster: KubeCluster, crds: None, control_plane_namespace: str
) -> AsyncIterator[KubernetesValidator]:
    instance = KubernetesValidator(
        kube_cluster.aio_api_client,
        trust_domain=SENTRY_TD,
        namespace=control_plane_namespace,
        sentry_id=f"spiffe://{SENTRY_TD}/ns/{control_plane_namespace}/dapr-sentry",
    )
    await asyncio.wait_for(instance.start(), 30)
    try:
        yield instance
    finally:
        await instance.stop()


async def cached(
    validator: KubernetesValidator, namespace: str, name: str, kind: str = "pods"
) -> None:
    informer = validator.pods if kind == "pods" else validator.configurations
    assert informer is not None
    for _ in range(300):
        if informer.get(namespace, name) is not None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{kind} {namespace}/{name} never reached the cache")


async def rejected(
    validator: KubernetesValidator, request: sentry_pb2.SignCertificateRequest
) -> str:
    with pytest.raises(ValidationError) as info:
        await validator.validate(request)
    return str(info.value)


async def test_app_pod_gets_its_configuration_trust_domain_and_images(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, validator: KubernetesValidator
) -> None:
    create_configuration(kube_api, kube_namespace, "appconfig", "example.org")
    pod = create_pod(
        kube_api,
        kube_namespace,
        "app-pod",
        "app-sa",
        {"dapr.io/app-id": "myapp", "dapr.io/config": "appconfig"},
        image_ids={
            "daprd": "ghcr.io/dapr/daprd@sha256:d1",
            "app": "docker.io/example/app@sha256:a1",
        },
    )
    await cached(validator, kube_namespace, "appconfig", "configurations")
    for _ in range(300):  # the status update arrives as a second event
        cached_pod = validator.pods.get(kube_namespace, "app-pod") if validator.pods else None
        if cached_pod and cached_pod["status"]["containerStatuses"]:
            break
        await asyncio.sleep(0.02)
    token = token_for(kube_cluster, pod)
    result = await validator.validate(sign_request("myapp", kube_namespace, token))
    assert result.trust_domain == "example.org"
    (extension,) = result.extensions
    assert extension.oid == images.IMAGES_OID
    assert extension.value.endswith(
        b'[{"role":"daprd","containerName":"daprd","image":"ghcr.io/dapr/daprd:1.18.0",'
        b'"digest":"sha256:d1"},{"role":"app","containerName":"app","image":"example/app:1",'
        b'"digest":"sha256:a1"}]'
    )


async def test_defaults_public_trust_domain_and_pod_name_as_id(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, validator: KubernetesValidator
) -> None:
    create_configuration(kube_api, kube_namespace, "notd", None)
    plain = create_pod(kube_api, kube_namespace, "plain")
    configured = create_pod(
        kube_api, kube_namespace, "configured", annotations={"dapr.io/config": "notd"}
    )
    await cached(validator, kube_namespace, "configured")
    await cached(validator, kube_namespace, "notd", "configurations")
    result = await validator.validate(
        sign_request("plain", kube_namespace, token_for(kube_cluster, plain))
    )
    assert result.trust_domain == "public"
    result = await validator.validate(
        sign_request("configured", kube_namespace, token_for(kube_cluster, configured))
    )
    assert result.trust_domain == "public"


async def test_control_plane_pod_gets_sentry_trust_domain(
    kube_cluster: KubeCluster,
    kube_api: Any,
    validator: KubernetesValidator,
    control_plane_namespace: str,
) -> None:
    pod = create_pod(
        kube_api,
        control_plane_namespace,
        "dapr-operator-0",
        "dapr-operator",
        {"dapr.io/control-plane": "operator", "dapr.io/config": "missing"},
    )
    await cached(validator, control_plane_namespace, "dapr-operator-0")
    token = token_for(kube_cluster, pod)
    result = await validator.validate(sign_request("dapr-operator", control_plane_namespace, token))
    assert result.trust_domain == SENTRY_TD
    message = await rejected(validator, sign_request("operator", control_plane_namespace, token))
    assert message == "app-id mismatch. expected: dapr-operator, received: operator"


async def test_rejections_in_dapr_order(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kube_api: Any,
    validator: KubernetesValidator,
    control_plane_namespace: str,
) -> None:
    app = create_pod(kube_api, kube_namespace, "app", annotations={"dapr.io/app-id": "myapp"})
    empty_config = create_pod(
        kube_api, kube_namespace, "empty-config", annotations={"dapr.io/config": ""}
    )
    missing_config = create_pod(
        kube_api, kube_namespace, "missing-config", annotations={"dapr.io/config": "nope"}
    )
    bad_td_pod = create_pod(
        kube_api, kube_namespace, "bad-td", annotations={"dapr.io/config": "badtd"}
    )
    create_configuration(kube_api, kube_namespace, "badtd", "Not A Domain")
    cp_elsewhere = create_pod(
        kube_api, kube_namespace, "cp", annotations={"dapr.io/control-plane": "sentry"}
    )
    cp_unknown = create_pod(
        kube_api,
        control_plane_namespace,
        "cp-unknown",
        annotations={"dapr.io/control-plane": "dashboard"},
    )
    cp_app_id = create_pod(
        kube_api,
        control_plane_namespace,
        "cp-app-id",
        annotations={"dapr.io/control-plane": "injector", "dapr.io/app-id": "x"},
    )
    for namespace, name in [(control_plane_namespace, "cp-app-id"), (kube_namespace, "cp")]:
        await cached(validator, namespace, name)
    await cached(validator, kube_namespace, "badtd", "configurations")
    token = token_for(kube_cluster, app)

    cases = [
        (
            sign_request("", kube_namespace, token),
            "invalid request: parameter app-id cannot be empty",
        ),
        (
            sign_request("a.b", "", token),
            "invalid request: parameter app-id cannot contain dots\nnamespace is required",
        ),
        (sign_request("myapp", kube_namespace, ""), "token review failed: "),
        (sign_request("myapp", kube_namespace, "garbage"), "invalid token: "),
        (
            sign_request("myapp", kube_namespace, token_for(kube_cluster, app, ["other-audience"])),
            "invalid token: ",
        ),
        (
            sign_request("myapp", "elsewhere", token),
            "namespace mismatch; received namespace: elsewhere",
        ),
        (
            sign_request("other", kube_namespace, token),
            "app-id mismatch. expected: myapp, received: other",
        ),
        (
            sign_request("empty-config", kube_namespace, token_for(kube_cluster, empty_config)),
            "failed to get configuration",
        ),
        (
            sign_request("missing-config", kube_namespace, token_for(kube_cluster, missing_config)),
            "failed to get configuration",
        ),
        (
            sign_request("bad-td", kube_namespace, token_for(kube_cluster, bad_td_pod)),
            'failed to parse trust domain "Not A Domain": ',
        ),
        (
            sign_request("dapr-sentry", kube_namespace, token_for(kube_cluster, cp_elsewhere)),
            f"control plane service in namespace '{kube_namespace}' is not allowed",
        ),
        (
            sign_request(
                "dapr-dashboard", control_plane_namespace, token_for(kube_cluster, cp_unknown)
            ),
            "unknown control plane service 'cp-unknown'",
        ),
        (
            sign_request(
                "dapr-injector", control_plane_namespace, token_for(kube_cluster, cp_app_id)
            ),
            "control plane service 'cp-app-id' cannot have annotation 'dapr.io/app-id'",
        ),
    ]
    for request, expected in cases:
        message = await rejected(validator, request)
        if expected.endswith(": "):
            assert message.startswith(expected), (request, message)
        else:
            assert message == expected, (request, message)


async def test_token_without_pod_claim(
    kube_cluster: KubeCluster, kube_namespace: str, validator: KubernetesValidator
) -> None:
    token = kube_cluster.service_account_token(
        kube_namespace, "default", audiences=["dapr.io/sentry"]
    )
    message = await rejected(validator, sign_request("x", kube_namespace, token))
    assert message == "kubernetes.io/pod/name claim is missing from Kubernetes token"


async def test_sentry_spiffe_id_is_an_accepted_audience(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, validator: KubernetesValidator
) -> None:
    pod = create_pod(kube_api, kube_namespace, "by-id")
    await cached(validator, kube_namespace, "by-id")
    token = token_for(kube_cluster, pod, [validator.audiences[1]])
    assert (
        await validator.validate(sign_request("by-id", kube_namespace, token))
    ).trust_domain == "public"


async def test_stale_cache_missing_pod_and_service_account_mismatch(
    kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any, validator: KubernetesValidator
) -> None:
    """The cache lags the API server: the TokenReview sees a pod the cache does not (yet)."""
    create_pod(kube_api, kube_namespace, "moved", "old-sa")
    await cached(validator, kube_namespace, "moved")
    assert validator.pods is not None
    await validator.pods.stop()  # freeze the cache as it is
    core = client.CoreV1Api(kube_api)
    core.delete_namespaced_pod("moved", kube_namespace, grace_period_seconds=0)
    moved = create_pod(kube_api, kube_namespace, "moved", "new-sa")
    fresh = create_pod(kube_api, kube_namespace, "fresh")
    message = await rejected(
        validator, sign_request("moved", kube_namespace, token_for(kube_cluster, moved))
    )
    assert message == "pod service account mismatch"
    message = await rejected(
        validator, sign_request("fresh", kube_namespace, token_for(kube_cluster, fresh))
    )
    assert message == "failed to get pod of identity"


async def test_rbac_of_the_dapr_chart_is_enough(
    kube_cluster: KubeCluster,
    kube_namespace: str,
    kube_api: Any,
    crds: None,
    control_plane_namespace: str,
) -> None:
    """Sentry's ServiceAccount with Dapr's ClusterRole can validate (TokenReview, list/watch)."""
    rbac = client.RbacAuthorizationV1Api(kube_api)
    role = f"dapr-sentry-{control_plane_namespace}"
    rbac.create_cluster_role(
        {
            "metadata": {"name": role},
            "rules": [
                {
                    "apiGroups": ["authentication.k8s.io"],
                    "resources": ["tokenreviews"],
                    "verbs": ["create"],
                },
                {
                    "apiGroups": ["dapr.io"],
                    "resources": ["configurations"],
                    "verbs": ["list", "get", "watch"],
                },
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["list", "get", "watch"]},
            ],
        }
    )
    try:
        rbac.create_cluster_role_binding(
            {
                "metadata": {"name": role},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": role,
                },
                "subjects": [
                    {
                        "kind": "ServiceAccount",
                        "name": "dapr-sentry",
                        "namespace": control_plane_namespace,
                    }
                ],
            }
        )
        sentry_token = kube_cluster.service_account_token(control_plane_namespace, "dapr-sentry")
        validator = KubernetesValidator(
            lambda: kube_cluster.aio_api_client(sentry_token),
            trust_domain=SENTRY_TD,
            namespace=control_plane_namespace,
            sentry_id=f"spiffe://{SENTRY_TD}/ns/{control_plane_namespace}/dapr-sentry",
        )
        await asyncio.wait_for(validator.start(), 30)
        try:
            pod = create_pod(
                kube_api, kube_namespace, "rbac-app", annotations={"dapr.io/app-id": "rbac"}
            )
            await cached(validator, kube_namespace, "rbac-app")
            result = await validator.validate(
                sign_request("rbac", kube_namespace, token_for(kube_cluster, pod))
            )
            assert result.trust_domain == "public"
        finally:
            await validator.stop()
    finally:
        rbac.delete_cluster_role(role)
        with contextlib.suppress(client.ApiException):
            rbac.delete_cluster_role_binding(role)
