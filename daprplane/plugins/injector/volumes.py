"""The volumes and mounts of an injected pod: identity token, Unix sockets, user mounts."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

from daprplane.plugins.injector.daprd_args import UDS_MOUNT_PATH

log = logging.getLogger("dapr.injector")

TOKEN_VOLUME = "dapr-identity-token"
TOKEN_MOUNT_PATH = "/var/run/secrets/dapr.io/sentrytoken"
UDS_VOLUME = "dapr-unix-domain-socket"
COMPONENTS_SOCKET_VOLUME = "dapr-components-unix-domain-socket"
TOKEN_EXPIRATION_SECONDS = 7200


def token_volume(sentry_spiffe_id: str) -> dict[str, Any]:
    """The projected ServiceAccount token daprd presents to Sentry (audience: Sentry's ID)."""
    return {
        "name": TOKEN_VOLUME,
        "projected": {
            "sources": [
                {
                    "serviceAccountToken": {
                        "audience": sentry_spiffe_id,
                        "expirationSeconds": TOKEN_EXPIRATION_SECONDS,
                        "path": "token",
                    }
                }
            ],
            "defaultMode": 420,
        },
    }


def token_mount() -> dict[str, Any]:
    return {"name": TOKEN_VOLUME, "readOnly": True, "mountPath": TOKEN_MOUNT_PATH}


def uds_volume() -> dict[str, Any]:
    return {"name": UDS_VOLUME, "emptyDir": {"medium": "Memory"}}


def uds_mount(path: str = UDS_MOUNT_PATH) -> dict[str, Any]:
    return {"name": UDS_VOLUME, "mountPath": path}


def components_socket_volume() -> dict[str, Any]:
    return {"name": COMPONENTS_SOCKET_VOLUME, "emptyDir": {}}


def components_socket_mount(path: str) -> dict[str, Any]:
    return {"name": COMPONENTS_SOCKET_VOLUME, "mountPath": path}


def parse_volume_mounts(text: str, *, read_only: bool) -> list[dict[str, Any]]:
    """``vol:/path,other:/path2`` as daprd mounts; malformed entries are skipped, as in Dapr."""
    mounts = []
    for entry in text.split(","):
        parts = entry.strip().split(":")
        if len(parts) != 2:
            continue
        name, path = parts[0].strip(), parts[1].strip()
        if name and path:
            mount: dict[str, Any] = {"name": name, "mountPath": path}
            if read_only:
                mount = {"name": name, "readOnly": True, "mountPath": path}
            mounts.append(mount)
    return mounts


def user_mounts(
    read_only: str, read_write: str, pod_volumes: Iterable[str], pod_name: str
) -> list[dict[str, Any]]:
    """The ``dapr.io/volume-mounts(-rw)`` mounts whose volume the pod actually has."""
    known = set(pod_volumes)
    mounts = []
    requested = parse_volume_mounts(read_only, read_only=True)
    requested += parse_volume_mounts(read_write, read_only=False)
    for mount in requested:
        if mount["name"] in known:
            mounts.append(mount)
        else:
            log.warning("Volume %s is not present in pod %s, skipping", mount["name"], pod_name)
    return mounts


def has_mount(mounts: Iterable[Mapping[str, Any]], mount: Mapping[str, Any]) -> bool:
    """Whether a container already mounts this volume, or something at the same path."""
    return any(
        existing.get("name") == mount["name"] or existing.get("mountPath") == mount["mountPath"]
        for existing in mounts
    )
