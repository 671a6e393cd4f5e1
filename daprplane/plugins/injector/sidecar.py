"""The ``daprd`` container (Dapr's ``sidecar_container.go``), as a Kubernetes JSON object.

Keys follow the order Go's JSON encoder writes a ``corev1.Container`` in, and empty optional
fields are left out as ``omitempty`` leaves them out, so a patch compares equal to Dapr's.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from daprplane.plugins.injector.annotations import SidecarSettings, annotation_of
from daprplane.plugins.injector.config import InjectorConfig
from daprplane.plugins.injector.daprd_args import (
    DAPRD_BINARY,
    HTTP_PORT,
    PUBLIC_PORT,
    UDS_MOUNT_PATH,
    ArgsContext,
    daprd_flags,
    debug_wrapper,
)
from daprplane.plugins.injector.envparse import parse_env, parse_env_from_secret
from daprplane.plugins.injector.errors import PatchError
from daprplane.plugins.injector.podview import PodView
from daprplane.plugins.injector.quantity import QuantityError, canonical_quantity
from daprplane.plugins.injector.tolerations import pod_tolerations, tolerates_any
from daprplane.plugins.injector.volumes import token_mount, uds_mount, user_mounts

log = logging.getLogger("dapr.injector")

SIDECAR_NAME = "daprd"
COMPONENTS_SOCKETS_ENV = "DAPR_COMPONENT_SOCKETS_FOLDER"


@dataclass(frozen=True)
class SidecarContext:
    """What the container needs beyond the annotations and the injector config."""

    args: ArgsContext
    namespace: str  # the admission request's namespace
    trust_anchors: str
    token_volume: bool
    components_socket_mount: dict[str, Any] | None = None


def build_sidecar(
    settings: SidecarSettings, config: InjectorConfig, pod: PodView, context: SidecarContext
) -> dict[str, Any]:
    """The daprd container; raises :class:`PatchError` for a port Kubernetes cannot accept."""
    _check_ports(settings)
    env = _env(settings, config, context)
    container: dict[str, Any] = {
        "name": SIDECAR_NAME,
        "image": settings.image or config.sidecar_image,
    }
    container.update(_command(settings, config, pod, daprd_flags(settings, context.args)))
    container["ports"] = _ports(settings)
    container["env"] = env
    container["resources"] = _resources(settings)
    if settings.enable_native_sidecar:
        container["restartPolicy"] = "Always"
    mounts = _mounts(settings, pod, context)
    if mounts:
        container["volumeMounts"] = mounts
    container["livenessProbe"] = _probe(
        {"tcpSocket": {"port": PUBLIC_PORT}},
        settings.liveness_delay,
        settings.liveness_timeout,
        settings.liveness_period,
        settings.liveness_threshold,
    )
    container["readinessProbe"] = _probe(
        {"httpGet": {"path": "/v1.0/healthz", "port": PUBLIC_PORT}},
        settings.readiness_delay,
        settings.readiness_timeout,
        settings.readiness_period,
        settings.readiness_threshold,
    )
    container["imagePullPolicy"] = config.pull_policy
    container["securityContext"] = _security_context(settings, config, env)
    return container


def env_var(name: str, value: str) -> dict[str, Any]:
    """An EnvVar as Go writes it: ``value`` is omitted when empty."""
    return {"name": name, "value": value} if value else {"name": name}


def _command(
    settings: SidecarSettings, config: InjectorConfig, pod: PodView, flags: list[str]
) -> dict[str, Any]:
    argv = (
        [*debug_wrapper(settings.debug_port), *flags]
        if settings.enable_debug
        else [
            DAPRD_BINARY,
            *flags,
        ]
    )
    # Virtual-node runtimes ignore the image entrypoint: the binary must be the command.
    if config.ignore_entrypoint_tolerations and tolerates_any(
        pod_tolerations(pod.spec), config.ignore_entrypoint_tolerations
    ):
        return {"command": argv[:1], "args": argv[1:]}
    return {"args": argv}


def _ports(settings: SidecarSettings) -> list[dict[str, Any]]:
    ports = [
        {"name": "dapr-http", "containerPort": HTTP_PORT},
        {"name": "dapr-grpc", "containerPort": settings.grpc_port},
        {"name": "dapr-internal", "containerPort": settings.internal_grpc_port},
        {"name": "dapr-metrics", "containerPort": settings.metrics_port},
    ]
    if settings.enable_debug:
        ports.append({"name": "dapr-debug", "containerPort": settings.debug_port})
    return ports


def _check_ports(settings: SidecarSettings) -> None:
    # Dapr copies any int32 into containerPort and the API server then rejects the pod with a
    # message about the sidecar's spec; naming the annotation is clearer.
    fields = ["grpc_port", "internal_grpc_port", "metrics_port"]
    if settings.enable_debug:
        fields.append("debug_port")
    for field in fields:
        port = getattr(settings, field)
        if not 1 <= port <= 65535:
            raise PatchError(
                f"invalid value for annotation {annotation_of(field)}: {port} is not a port "
                "number between 1 and 65535"
            )


def _env(
    settings: SidecarSettings, config: InjectorConfig, context: SidecarContext
) -> list[dict[str, Any]]:
    env = [
        env_var("NAMESPACE", context.namespace),
        env_var("DAPR_TRUST_ANCHORS", context.trust_anchors),
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        env_var("DAPR_CONTROLPLANE_NAMESPACE", config.namespace),
        env_var("DAPR_CONTROLPLANE_TRUST_DOMAIN", config.control_plane_trust_domain),
    ]
    if config.enable_k8s_downward_apis:
        env.append(
            {"name": "DAPR_HOST_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}
        )
    keys = []
    for name, value in parse_env(settings.env):
        env.append(env_var(name, value))
        keys.append(name)
    references, secret_names = parse_env_from_secret(settings.env_from_secret)
    for reference in references:
        env.append(_secret_env(reference.name, reference.secret, reference.key))
    keys += secret_names
    if keys:
        env.append(env_var("DAPR_ENV_KEYS", " ".join(keys)))
    if context.components_socket_mount is not None:
        env.append(env_var(COMPONENTS_SOCKETS_ENV, context.components_socket_mount["mountPath"]))
    if settings.api_token_secret:
        env.append(_secret_env("DAPR_API_TOKEN", settings.api_token_secret, "token"))
    if settings.app_token_secret:
        env.append(_secret_env("APP_API_TOKEN", settings.app_token_secret, "token"))
    return env


def _secret_env(name: str, secret: str, key: str) -> dict[str, Any]:
    reference = {"key": key} if secret == "" else {"name": secret, "key": key}
    return {"name": name, "valueFrom": {"secretKeyRef": reference}}


def _resources(settings: SidecarSettings) -> dict[str, Any]:
    wanted = [
        ("limits", "cpu", settings.cpu_limit, "cpu limit"),
        ("limits", "memory", settings.memory_limit, "memory limit"),
        ("requests", "cpu", settings.cpu_request, "cpu request"),
        ("requests", "memory", settings.memory_request, "memory request"),
    ]
    resources: dict[str, dict[str, str]] = {}
    for group, resource, text, what in wanted:
        if not text:
            continue
        try:
            resources.setdefault(group, {})[resource] = canonical_quantity(text)
        except QuantityError as error:
            # Dapr's behaviour, kept: one bad quantity drops every resource setting.
            log.warning(
                "couldn't set container resource requirements: error parsing sidecar %s: %s. "
                "using defaults",
                what,
                error,
            )
            return {}
    return resources


def _mounts(
    settings: SidecarSettings, pod: PodView, context: SidecarContext
) -> list[dict[str, Any]]:
    mounts = user_mounts(
        settings.volume_mounts, settings.volume_mounts_rw, pod.volume_names, pod.name
    )
    if settings.unix_domain_socket_path:
        mounts.append(uds_mount(UDS_MOUNT_PATH))
    if context.token_volume:
        mounts.append(token_mount())
    if context.components_socket_mount is not None:
        mounts.append(dict(context.components_socket_mount))
    return mounts


def _probe(
    handler: dict[str, Any], delay: int, timeout: int, period: int, threshold: int
) -> dict[str, Any]:
    probe = dict(handler)
    # int32 fields with omitempty: a zero is not written.
    for key, value in (
        ("initialDelaySeconds", delay),
        ("timeoutSeconds", timeout),
        ("periodSeconds", period),
        ("failureThreshold", threshold),
    ):
        if value:
            probe[key] = value
    return probe


def _security_context(
    settings: SidecarSettings, config: InjectorConfig, env: list[dict[str, Any]]
) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if config.drop_all_capabilities:
        context["capabilities"] = {"drop": ["ALL"]}
    if any(variable["name"] == "SSL_CERT_DIR" for variable in env):
        # A custom certificate directory means a Windows node: run as the admin user there.
        context["windowsOptions"] = {"runAsUserName": "ContainerAdministrator"}
        context["runAsNonRoot"] = False
        context["readOnlyRootFilesystem"] = False
    else:
        if config.run_as_user is not None:
            context["runAsUser"] = config.run_as_user
        if config.run_as_group is not None:
            context["runAsGroup"] = config.run_as_group
        context["runAsNonRoot"] = config.run_as_non_root
        context["readOnlyRootFilesystem"] = config.read_only_root_filesystem
    context["allowPrivilegeEscalation"] = False
    if settings.seccomp_profile_type:
        context["seccompProfile"] = {"type": settings.seccomp_profile_type}
    return context
