"""The KUBERNETES validator: a ServiceAccount token, reviewed by the API server, of a real pod.

The API server authenticates the token (TokenReview, audiences ``dapr.io/sentry`` and sentry's
SPIFFE ID); the pod it was issued for, found in a cluster-wide pod cache, must be in the
requested namespace, run as the token's ServiceAccount and carry the requested app ID. The trust
domain comes from the pod's Dapr Configuration (``spec.accessControl.trustDomain``, default
``public``); control-plane pods, annotated ``dapr.io/control-plane``, get sentry's own. The
certificate also records the pod's container images (:mod:`daprplane.plugins.sentry.images`).
Checks and messages follow Dapr's ``validator/kubernetes`` in order.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from collections.abc import Callable, Mapping
from typing import Any

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.kube import Informer, KubeApiError, new_api_client, request
from daprplane.core.security import spiffe
from daprplane.plugins.sentry import images
from daprplane.plugins.sentry.validators import common
from daprplane.plugins.sentry.validators.base import TokenValidator, Validation, ValidationError

HEALTHZ_TARGET = "sentry-kubernetes-validator"
TOKEN_AUDIENCE = "dapr.io/sentry"
APP_ID_ANNOTATION = "dapr.io/app-id"
CONFIG_ANNOTATION = "dapr.io/config"
CONTROL_PLANE_ANNOTATION = "dapr.io/control-plane"
CONTROL_PLANE_SERVICES = ("operator", "placement", "injector", "sentry", "scheduler")
TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
PODS_PATH = "/api/v1/pods"
CONFIGURATIONS_PATH = "/apis/dapr.io/v1alpha1/configurations"


class TokenParseError(ValueError):
    pass


def _b64url(segment: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError):
        raise TokenParseError("failed to decode base64url segment") from None


def token_claims(token: str) -> Mapping[str, Any]:
    """The claims of ``token`` without checking its signature (the API server already did).

    Accepts a compact JWS, a JSON-serialized JWS, or bare JSON claims, as jwx's
    ``jwt.ParseInsecure`` does.
    """
    text = token.strip()
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as error:
            raise TokenParseError(f"failed to parse JSON: {error}") from None
        if not isinstance(document, dict):
            raise TokenParseError("token is not a JSON object")
        if "payload" in document and ("signatures" in document or "signature" in document):
            return _claims_json(_b64url(str(document["payload"])))
        return document
    parts = text.split(".")
    if len(parts) != 3:
        raise TokenParseError(
            f"invalid compact serialization format: invalid number of segments ({len(parts)})"
        )
    return _claims_json(_b64url(parts[1]))


def _claims_json(payload: bytes) -> Mapping[str, Any]:
    try:
        claims = json.loads(payload)
    except ValueError as error:
        raise TokenParseError(f"failed to parse payload: {error}") from None
    if not isinstance(claims, dict):
        raise TokenParseError("payload is not a JSON object")
    return claims


def pod_name_claim(claims: Mapping[str, Any]) -> str:
    section = claims.get("kubernetes.io")
    pod = section.get("pod") if isinstance(section, Mapping) else None
    name = pod.get("name") if isinstance(pod, Mapping) else None
    return name if isinstance(name, str) else ""


def slim_pod(pod: dict[str, Any]) -> dict[str, Any]:
    """What the cache keeps of a pod: identity, annotations, service account, containers."""
    metadata = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}

    def containers(items: Any, *keys: str) -> list[dict[str, Any]]:
        return [{k: c[k] for k in keys if k in c} for c in items or [] if isinstance(c, dict)]

    return {
        "metadata": {
            k: metadata[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "annotations")
            if k in metadata
        },
        "spec": {
            "serviceAccountName": spec.get("serviceAccountName") or "",
            "containers": containers(spec.get("containers"), "name", "image"),
            "initContainers": containers(
                spec.get("initContainers"), "name", "image", "restartPolicy"
            ),
        },
        "status": {
            "containerStatuses": containers(status.get("containerStatuses"), "name", "imageID"),
            "initContainerStatuses": containers(
                status.get("initContainerStatuses"), "name", "imageID"
            ),
        },
    }


def slim_configuration(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata") or {}
    spec = obj.get("spec") or {}
    access = spec.get("accessControl") if isinstance(spec, dict) else None
    trust_domain = access.get("trustDomain") if isinstance(access, dict) else None
    return {
        "metadata": {
            k: metadata[k] for k in ("name", "namespace", "resourceVersion") if k in metadata
        },
        "spec": {"accessControl": {"trustDomain": trust_domain or ""}},
    }


class KubernetesValidator:
    kind: int = TokenValidator.KUBERNETES
    healthz_target: str | None = HEALTHZ_TARGET

    def __init__(
        self,
        api_factory: Callable[[], Any],
        *,
        trust_domain: str,
        namespace: str,
        sentry_id: str,
    ) -> None:
        self.api_factory = api_factory
        self.trust_domain = trust_domain
        self.namespace = namespace
        self.audiences = [TOKEN_AUDIENCE, sentry_id]
        self.api: Any = None
        self.pods: Informer | None = None
        self.configurations: Informer | None = None

    @property
    def ready(self) -> bool:
        return (
            self.pods is not None
            and self.configurations is not None
            and self.pods.synced.is_set()
            and self.configurations.synced.is_set()
        )

    async def start(self) -> None:
        """Fill the cluster-wide pod and Configuration caches; returns once both are synced."""
        self.api = self.api_factory()
        self.pods = Informer(self.api, PODS_PATH, transform=slim_pod, name="pods")
        self.configurations = Informer(
            self.api, CONFIGURATIONS_PATH, transform=slim_configuration, name="configurations"
        )
        self.pods.start()
        self.configurations.start()
        await asyncio.gather(self.pods.synced.wait(), self.configurations.synced.wait())

    async def stop(self) -> None:
        for informer in (self.pods, self.configurations):
            if informer is not None:
                await informer.stop()
        if self.api is not None:
            await self.api.close()
            self.api = None

    async def _review(self, token: str) -> str:
        body = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenReview",
            "spec": {"token": token, "audiences": self.audiences},
        }
        try:
            review = await request(self.api, "POST", TOKEN_REVIEW_PATH, body=body)
        except KubeApiError as error:
            raise ValidationError(f"token review failed: {error}") from None
        except Exception as error:  # connection trouble reads like client-go's error
            raise ValidationError(f"token review failed: {error}") from None
        status = (review or {}).get("status") or {}
        if status.get("error"):
            raise ValidationError(f"invalid token: {status['error']}")
        if not status.get("authenticated"):
            raise ValidationError("authentication failed")
        return str((status.get("user") or {}).get("username") or "")

    def _expected_id(self, pod: Mapping[str, Any]) -> tuple[str, bool]:
        metadata = pod.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        name = str(metadata.get("name") or "")
        if CONTROL_PLANE_ANNOTATION in annotations:
            if metadata.get("namespace") != self.namespace:
                raise ValidationError(
                    f"control plane service in namespace '{metadata.get('namespace')}' "
                    "is not allowed"
                )
            service = annotations[CONTROL_PLANE_ANNOTATION]
            if service not in CONTROL_PLANE_SERVICES:
                # Dapr formats this message with the pod name, not the annotation value.
                raise ValidationError(f"unknown control plane service '{name}'")
            if APP_ID_ANNOTATION in annotations:
                raise ValidationError(
                    f"control plane service '{name}' cannot have annotation '{APP_ID_ANNOTATION}'"
                )
            return f"dapr-{service}", True
        return str(annotations.get(APP_ID_ANNOTATION, name)), False

    def _trust_domain(self, pod: Mapping[str, Any], namespace: str) -> str:
        annotations = (pod.get("metadata") or {}).get("annotations") or {}
        if CONFIG_ANNOTATION not in annotations:
            return common.PUBLIC_TRUST_DOMAIN
        assert self.configurations is not None
        name = annotations[CONFIG_ANNOTATION]
        configuration = self.configurations.get(namespace, name) if name else None
        if configuration is None:
            raise ValidationError("failed to get configuration")
        trust_domain = configuration["spec"]["accessControl"]["trustDomain"]
        if not trust_domain:
            return common.PUBLIC_TRUST_DOMAIN
        try:
            return spiffe.trust_domain_from_string(trust_domain)
        except spiffe.SpiffeIdError as error:
            raise ValidationError(
                f"failed to parse trust domain {json.dumps(trust_domain)}: {error}"
            ) from None

    async def validate(self, request_: sentry_pb2.SignCertificateRequest) -> Validation:
        if not self.ready:
            raise ValidationError("validator not ready")
        assert self.pods is not None
        common.check_request(request_)  # the requested trust domain is not used
        username = await self._review(request_.token)
        parts = username.split(":")
        if len(parts) != 4 or parts[0] != "system":
            raise ValidationError(
                "provided token is not a properly structured service account token"
            )
        sa_namespace, service_account = parts[2], parts[3]
        try:
            claims = token_claims(request_.token)
        except TokenParseError as error:
            raise ValidationError(f"failed to parse Kubernetes token: {error}") from None
        pod_name = pod_name_claim(claims)
        if not pod_name:
            raise ValidationError("kubernetes.io/pod/name claim is missing from Kubernetes token")
        pod = self.pods.get(sa_namespace, pod_name)
        if pod is None:
            raise ValidationError("failed to get pod of identity")
        if sa_namespace != request_.namespace:
            raise ValidationError(f"namespace mismatch; received namespace: {request_.namespace}")
        if pod["spec"]["serviceAccountName"] != service_account:
            raise ValidationError("pod service account mismatch")
        expected, control_plane = self._expected_id(pod)
        if expected != request_.id:
            raise ValidationError(f"app-id mismatch. expected: {expected}, received: {request_.id}")
        if control_plane:
            trust_domain = self.trust_domain
        else:
            trust_domain = self._trust_domain(pod, request_.namespace)
        extension = images.images_extension(pod)
        return Validation(
            trust_domain=trust_domain, extensions=(extension,) if extension is not None else ()
        )


def create(options: Mapping[str, str], environment: Any) -> KubernetesValidator:
    """The factory ``validators.build`` calls. ``environment.extras`` may carry
    ``kube_api_factory`` (a callable returning a ``kubernetes.aio`` ApiClient) or
    ``kubeconfig`` (the ``--kubeconfig`` value)."""
    extras = getattr(environment, "extras", None) or {}
    factory = extras.get("kube_api_factory")
    if factory is None:
        kubeconfig = extras.get("kubeconfig") or None

        def factory() -> Any:
            return new_api_client(kubeconfig)

    return KubernetesValidator(
        factory,
        trust_domain=environment.trust_domain,
        namespace=environment.namespace,
        sentry_id=environment.sentry_id,
    )
