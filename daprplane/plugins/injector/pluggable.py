"""Pluggable components: containers that serve Dapr components over a shared Unix socket folder.

Two sources: containers already in the pod that ``dapr.io/pluggable-components`` names, and,
with ``dapr.io/inject-pluggable-components``, containers described by the
``dapr.io/component-container`` annotation of the namespace's Component resources (which the
caller lists; this module does no I/O).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daprplane.plugins.injector.containerops import Operation, add, env_ops, mount_ops
from daprplane.plugins.injector.podview import PodView
from daprplane.plugins.injector.volumes import components_socket_mount, components_socket_volume

log = logging.getLogger("dapr.injector")

CONTAINER_ANNOTATION = "dapr.io/component-container"
DEFAULT_SOCKETS_FOLDER = "/tmp/dapr-components-sockets"


@dataclass
class PluggableComponents:
    """The component containers of one pod and the socket mount they share with daprd."""

    in_pod: list[tuple[int, Mapping[str, Any]]] = field(default_factory=list)
    injected: list[dict[str, Any]] = field(default_factory=list)
    mount: dict[str, Any] | None = None

    def ops(self, volumes_exist: bool, pod_volumes: Sequence[str]) -> list[Operation]:
        """The operations, after the injector's own (``volumes_exist``: the pod has a list now).

        Dapr adds the socket volume with ``add /spec/volumes [v]`` whenever the *original* pod
        had no volumes, replacing the token and UDS volumes added just before; we append then.
        """
        if self.mount is None:
            return []
        volume = components_socket_volume()
        ops = [add("/spec/volumes/-", volume) if volumes_exist else add("/spec/volumes", [volume])]
        socket_env = [{"name": "DAPR_COMPONENT_SOCKETS_FOLDER", "value": self.mount["mountPath"]}]
        for index, container in self.in_pod:
            ops += env_ops(container, index, socket_env, "/spec/containers")
            ops += mount_ops(container, index, [self.mount], "/spec/containers")
        known = set(pod_volumes)
        for container in self.injected:
            container["env"] = [*(container.get("env") or []), *socket_env]
            for mount in container.get("volumeMounts") or []:
                if mount.get("name") not in known:
                    known.add(mount.get("name"))
                    ops.append(add("/spec/volumes/-", {"name": mount.get("name"), "emptyDir": {}}))
            container["volumeMounts"] = [*(container.get("volumeMounts") or []), dict(self.mount)]
            ops.append(add("/spec/containers/-", container))
        return ops


def find_components(
    pod: PodView,
    names_annotation: str,
    sockets_folder: str,
    app_id: str,
    components: Sequence[Mapping[str, Any]] | None,
) -> tuple[PluggableComponents, list[tuple[int, Mapping[str, Any]]]]:
    """Split the pod's containers into components and apps; pick the containers to inject."""
    names = {name.strip() for name in names_annotation.split(",") if name.strip()}
    found = PluggableComponents()
    apps = []
    for index, container in enumerate(pod.containers):
        if container.get("name") in names:
            found.in_pod.append((index, container))
        else:
            apps.append((index, container))
    found.injected = _injected_containers(components or (), app_id)
    if found.in_pod or found.injected:
        found.mount = components_socket_mount(sockets_folder or DEFAULT_SOCKETS_FOLDER)
    return found, apps


def _injected_containers(
    components: Sequence[Mapping[str, Any]], app_id: str
) -> list[dict[str, Any]]:
    containers = []
    images: set[str] = set()
    for component in components:
        metadata = component.get("metadata") if isinstance(component, Mapping) else None
        if not isinstance(metadata, Mapping):
            continue
        annotations = metadata.get("annotations")
        text = annotations.get(CONTAINER_ANNOTATION) if isinstance(annotations, Mapping) else None
        scopes = component.get("scopes") or []
        if not isinstance(text, str) or not text or not isinstance(scopes, list):
            continue
        if scopes and app_id not in scopes:
            continue
        container = _container_from_json(text, str(metadata.get("name") or ""))
        if container is None or container.get("image", "") in images:
            continue
        images.add(container.get("image", ""))
        containers.append(container)
    return containers


def _container_from_json(text: str, component_name: str) -> dict[str, Any] | None:
    try:
        container = json.loads(text)
    except ValueError as error:
        log.warning("Could not unmarshal container %s: %s", component_name, error)
        return None
    shape_ok = (
        isinstance(container, dict)
        and all(isinstance(container.get(key), str | None) for key in ("name", "image"))
        and all(
            isinstance(container.get(key), list | None)
            and all(isinstance(item, dict) for item in container.get(key) or [])
            for key in ("env", "volumeMounts")
        )
    )
    if not shape_ok:
        log.warning("Could not unmarshal container %s: not a container object", component_name)
        return None
    found: dict[str, Any] = container
    if not found.get("name"):
        found["name"] = component_name
    return found
