"""A checked, read-only view of the admitted pod: the fields the injector reads, typed.

Dapr unmarshals the pod into Go structs first, so a field of the wrong type is an error there
(``could not unmarshal raw object``) rather than a crash; JSON ``null`` is the zero value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.plugins.injector.errors import PatchError

_CONTAINER_STRINGS = ("name", "image")


class PodView:
    """The pod's metadata and spec, validated once so the builders can trust their types."""

    def __init__(self, pod: Any) -> None:
        if not isinstance(pod, Mapping):
            raise _unmarshal("the pod", "an object")
        self.raw = pod
        metadata = _object(pod.get("metadata"), "metadata")
        self.spec = _object(pod.get("spec"), "spec")
        self.name = _string(metadata.get("name"), "metadata.name")
        self.annotations = _string_map(metadata.get("annotations"), "metadata.annotations")
        self.labels = _string_map(metadata.get("labels"), "metadata.labels")
        self.containers = _containers(self.spec.get("containers"), "spec.containers")
        self.init_containers = _containers(self.spec.get("initContainers"), "spec.initContainers")
        self.volumes = _named_list(self.spec.get("volumes"), "spec.volumes")

    @property
    def volume_names(self) -> list[str]:
        return [volume.get("name") or "" for volume in self.volumes]

    def has_container(self, name: str) -> bool:
        return any(c.get("name") == name for c in [*self.containers, *self.init_containers])


def _unmarshal(where: str, expected: str) -> PatchError:
    return PatchError(f"could not unmarshal raw object: {where} must be {expected}")


def _object(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _unmarshal(where, "an object")
    return value


def _string(value: Any, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _unmarshal(where, "a string")
    return value


def _string_map(value: Any, where: str) -> dict[str, str]:
    mapping = _object(value, where)
    for key, item in mapping.items():
        if not isinstance(key, str) or not isinstance(item, str | None):
            raise _unmarshal(where, "a map of strings")
    return {key: item or "" for key, item in mapping.items()}


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _unmarshal(where, "an array")
    return value


def _named_list(value: Any, where: str) -> list[Mapping[str, Any]]:
    items = _list(value, where)
    for index, item in enumerate(items):
        _object(item, f"{where}[{index}]")
        _string(item.get("name") if item is not None else None, f"{where}[{index}].name")
    return [item or {} for item in items]


def _containers(value: Any, where: str) -> list[Mapping[str, Any]]:
    containers = _named_list(value, where)
    for index, container in enumerate(containers):
        here = f"{where}[{index}]"
        for field in _CONTAINER_STRINGS:
            _string(container.get(field), f"{here}.{field}")
        _named_list(container.get("env"), f"{here}.env")
        for position, mount in enumerate(
            _named_list(container.get("volumeMounts"), f"{here}.volumeMounts")
        ):
            _string(mount.get("mountPath"), f"{here}.volumeMounts[{position}].mountPath")
    return containers
