"""JSON-patch operations that add env vars and mounts to containers already in the pod."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daprplane.plugins.injector.volumes import has_mount

Operation = dict[str, Any]


def add(path: str, value: Any) -> Operation:
    return {"op": "add", "path": path, "value": value}


def escape(segment: str) -> str:
    """A JSON-pointer path segment (RFC 6901): ``dapr.io/app-id`` -> ``dapr.io~1app-id``."""
    return segment.replace("~", "~0").replace("/", "~1")


def env_ops(
    container: Mapping[str, Any], index: int, wanted: Sequence[Mapping[str, Any]], base: str
) -> list[Operation]:
    """Add ``wanted`` env vars whose names the container does not define yet."""
    existing = container.get("env") or []
    path = f"{base}/{index}/env"
    if not existing:
        return [add(path, [dict(variable) for variable in wanted])] if wanted else []
    names = {variable.get("name") for variable in existing}
    return [
        add(f"{path}/-", dict(variable)) for variable in wanted if variable["name"] not in names
    ]


def mount_ops(
    container: Mapping[str, Any], index: int, wanted: Sequence[Mapping[str, Any]], base: str
) -> list[Operation]:
    """Add ``wanted`` mounts unless the container has the same volume or the same path."""
    existing = container.get("volumeMounts") or []
    path = f"{base}/{index}/volumeMounts"
    if not existing:
        return [add(path, [dict(mount) for mount in wanted])] if wanted else []
    return [add(f"{path}/-", dict(mount)) for mount in wanted if not has_mount(existing, mount)]
