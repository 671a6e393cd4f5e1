"""From an admitted pod to the JSON patch that injects daprd (Dapr's ``sidecar_patcher.go``).

The operations come in Dapr's order (§4.5 of the contract), except where Dapr's order is random
(per-container env and mount operations, which follow container order here) or destructive
(the pluggable-components socket volume, which no longer replaces volumes added before it).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pluggy

from daprplane.plugins.injector.addresses import ControlPlaneAddresses
from daprplane.plugins.injector.annotations import SidecarSettings
from daprplane.plugins.injector.config import InjectorConfig
from daprplane.plugins.injector.containerops import Operation, add, env_ops, escape, mount_ops
from daprplane.plugins.injector.daprd_args import HTTP_PORT, ArgsContext
from daprplane.plugins.injector.errors import PatchError
from daprplane.plugins.injector.hooks import InjectorHooks
from daprplane.plugins.injector.pluggable import find_components
from daprplane.plugins.injector.podsettings import PodSettings
from daprplane.plugins.injector.podview import PodView
from daprplane.plugins.injector.sidecar import SIDECAR_NAME, SidecarContext, build_sidecar, env_var
from daprplane.plugins.injector.volumes import token_volume, uds_mount, uds_volume

__all__ = ["PatchError", "build_patch", "needs_injection", "validate_app_id"]

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def needs_injection(pod: Any) -> bool:
    """Whether the webhook should inject (:attr:`PodSettings.needs_injection`).

    Dapr's handler accepts only a case-insensitive ``"true"`` here, although the patcher behind
    it would take any truthy value; the handler decides.
    """
    return PodSettings.of(pod).needs_injection


def validate_app_id(app_id: str) -> None:
    """Dapr's check: ``<app-id>-dapr`` (the sidecar's Service) must be a DNS-1123 label."""
    if app_id == "":
        raise PatchError("value for the dapr.io/app-id annotation is empty")
    service = f"{app_id}-dapr"
    problems = []
    if len(service.encode()) > 63:
        problems.append("must be no more than 63 characters")
    if not _DNS1123_LABEL.fullmatch(service):
        problems.append(_DNS1123_LABEL_MESSAGE)
    if problems:
        detail = "\n".join(problems)
        raise PatchError(f"invalid app id (input: '{app_id}', service: '{service}'): {detail}")


def build_patch(
    pod: Mapping[str, Any] | PodSettings,
    config: InjectorConfig,
    *,
    namespace: str,
    trust_anchors: str,
    hook: pluggy.HookRelay | None = None,
    scheduler_enabled: bool = True,
    mtls_enabled: bool = True,
    token_volume_enabled: bool = True,
    components: Sequence[Mapping[str, Any]] | None = None,
    on_plugin_failure: Callable[[str], None] | None = None,
) -> list[dict[str, Any]]:
    """The JSON patch (a list of operations) that injects daprd into ``pod``: the admitted
    object, or the request's reading of it (which then need not be read again).

    - ``namespace``: the admission request's namespace (Dapr uses it, not the pod's).
    - ``trust_anchors``: the PEM text of the trust-anchor file, copied into the sidecar env.
    - ``hook``: the plugin host's hook relay; ``None`` runs no plugins.
    - ``scheduler_enabled``: the ``--scheduler-enabled`` flag.
    - ``mtls_enabled``: ``spec.mtls.enabled`` of the ``daprsystem`` Configuration (true when
      absent or unreadable).
    - ``token_volume_enabled``: whether the injector itself has a Kubernetes token file; without
      one Dapr adds no projected token volume.
    - ``components``: the Component resources of ``namespace`` (JSON objects), needed only for
      ``dapr.io/inject-pluggable-components``.
    - ``on_plugin_failure``: called with a plugin's name each time it fails (for a metric).

    Returns ``[]`` when the pod needs no sidecar (not enabled, or already has daprd). Raises
    :class:`PatchError` for a pod that cannot be injected (its message is Dapr's where Dapr has
    one, e.g. for an invalid app id) or a plugin failure under the ``deny`` policy.
    """
    admitted = PodSettings.of(pod)
    view = admitted.view
    settings = admitted.sidecar(config)
    if not settings.enabled or view.has_container(SIDECAR_NAME):
        return []
    app_id = settings.app_id or view.name
    validate_app_id(app_id)
    addresses = ControlPlaneAddresses.from_config(config)
    plugins = InjectorHooks(hook, policy=config.plugin_failure_policy, on_failure=on_plugin_failure)

    pluggable, app_containers = find_components(
        view, settings.pluggable_components, settings.pluggable_components_sockets_folder,
        app_id, components if settings.inject_pluggable_components else None,
    )  # fmt: skip
    context = SidecarContext(
        args=ArgsContext(app_id, addresses, mtls_enabled, scheduler_enabled),
        namespace=namespace,
        trust_anchors=trust_anchors,
        token_volume=token_volume_enabled,
        components_socket_mount=pluggable.mount,
    )
    sidecar = build_sidecar(settings, config, view, context)
    raw = admitted.raw
    sidecar = plugins.edit_sidecar(sidecar, raw, view.annotations)

    ops: list[Operation] = []
    if not view.containers:
        ops.append(add("/spec/containers", []))
    if not view.labels:
        ops.append(add("/metadata/labels", {}))
    volume_ops = _volume_ops(view, settings, addresses, token_volume_enabled)
    ops += volume_ops
    ops += _sidecar_ops(view, settings, sidecar)
    ops += _label_ops(app_id, settings)
    ops += _app_container_ops(app_containers, settings)
    volumes_exist = bool(view.volumes) or bool(volume_ops)
    ops += pluggable.ops(volumes_exist, view.volume_names)

    ops += plugins.edit_pod(raw, view.annotations)
    return plugins.edit_patch(ops, raw)


def _volume_ops(
    view: PodView, settings: SidecarSettings, addresses: ControlPlaneAddresses, with_token: bool
) -> list[Operation]:
    volumes = []
    if settings.unix_domain_socket_path:
        volumes.append(uds_volume())
    if with_token:
        volumes.append(token_volume(addresses.sentry_spiffe_id))
    if not volumes:
        return []
    if not view.volumes:
        return [add("/spec/volumes", volumes)]
    present = set(view.volume_names)
    return [add("/spec/volumes/-", volume) for volume in volumes if volume["name"] not in present]


def _sidecar_ops(
    view: PodView, settings: SidecarSettings, sidecar: dict[str, Any]
) -> list[Operation]:
    if not settings.enable_native_sidecar:
        return [add("/spec/containers/-", sidecar)]
    ops = [] if view.init_containers else [add("/spec/initContainers", [])]
    return [*ops, add("/spec/initContainers/-", sidecar)]


def _label_ops(app_id: str, settings: SidecarSettings) -> list[Operation]:
    labels = {
        "dapr.io/sidecar-injected": "true",
        "dapr.io/app-id": app_id,
        "dapr.io/metrics-enabled": "true" if settings.enable_metrics else "false",
    }
    return [add(f"/metadata/labels/{escape(name)}", value) for name, value in labels.items()]


def _app_container_ops(
    app_containers: Sequence[tuple[int, Mapping[str, Any]]], settings: SidecarSettings
) -> list[Operation]:
    env = [
        env_var("DAPR_HTTP_PORT", str(HTTP_PORT)),
        env_var("DAPR_GRPC_PORT", str(settings.grpc_port)),
    ]
    protocol = app_protocol_env(settings)
    if protocol:
        env.append(env_var("APP_PROTOCOL", protocol))
    ops: list[Operation] = []
    for index, container in app_containers:
        ops += env_ops(container, index, env, "/spec/containers")
    if settings.unix_domain_socket_path:
        mount = uds_mount(settings.unix_domain_socket_path)
        for index, container in app_containers:
            ops += mount_ops(container, index, [mount], "/spec/containers")
    return ops


def app_protocol_env(settings: SidecarSettings) -> str:
    """``APP_PROTOCOL`` for app containers: normalised, or empty (no variable) when unknown."""
    protocol = settings.app_protocol.lower()
    if protocol in ("grpcs", "https", "h2c"):
        return protocol
    if protocol in ("http", "grpc"):
        return protocol + "s" if settings.app_ssl else protocol
    return "http" if protocol == "" else ""
