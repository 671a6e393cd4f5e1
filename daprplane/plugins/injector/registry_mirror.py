"""Built-in injector plugin for private registries: a daprd image mirror and pull secrets.

Environment of the injector:

- ``DAPRPLANE_REGISTRY_MIRROR``: comma-separated ``SOURCE=MIRROR`` rules, e.g.
  ``ghcr.io/dapr=registry.example.internal/dapr``. The first rule whose ``SOURCE`` equals the
  daprd image's repository path or is a ``/``-bounded prefix of it has that prefix replaced by
  ``MIRROR``; the rest of the reference (path, tag, digest) is kept:
  ``ghcr.io/dapr/daprd:1.18.3`` becomes ``registry.example.internal/dapr/daprd:1.18.3``.
  ``ghcr.io/dapr`` does not match ``ghcr.io/daprx/daprd``, and ``localhost`` does not match
  ``localhost:5000/dapr/daprd`` (a source may be followed by ``/``, or by the tag or digest).
  Only the daprd container is rewritten, never the app's.
- ``DAPRPLANE_IMAGE_PULL_SECRETS``: comma-separated Secret names added to the pod's
  ``imagePullSecrets``, together with those of the pod annotation
  ``dapr.io/sidecar-image-pull-secrets``; names the pod already lists are not added again.

Both are read once, from the environment the plugin host hands every plugin when it loads
(``daprplane_configure``: the injector's process environment), not from ``os.environ`` for each
pod; changing them takes a restart. With neither set, the plugin changes nothing. One injector
runs per process, so the settings are the module's: the last host to load it configures it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from daprplane.plugin import hookimpl

MIRROR_ENV = "DAPRPLANE_REGISTRY_MIRROR"
PULL_SECRETS_ENV = "DAPRPLANE_IMAGE_PULL_SECRETS"
PULL_SECRETS_ANNOTATION = "dapr.io/sidecar-image-pull-secrets"


def parse_rules(text: str) -> list[tuple[str, str]]:
    """``a=b,c=d`` -> ``[("a","b"), ("c","d")]``; entries without both sides are ignored."""
    rules = []
    for entry in text.split(","):
        source, equals, mirror = entry.strip().partition("=")
        source, mirror = source.strip().rstrip("/"), mirror.strip().rstrip("/")
        if equals and source and mirror:
            rules.append((source, mirror))
    return rules


def mirrored(image: str, rules: Sequence[tuple[str, str]]) -> str:
    """``image`` with the first matching rule's prefix replaced (see the module docstring)."""
    for source, mirror in rules:
        if not image.startswith(source):
            continue
        rest = image[len(source) :]
        # A tag or digest may follow the whole repository, but a ":" before a "/" is a port.
        if rest == "" or rest[0] == "/" or (rest[0] in ":@" and "/" not in rest):
            return mirror + rest
    return image


def _names(text: str) -> list[str]:
    return [name.strip() for name in text.split(",") if name.strip()]


@dataclass(frozen=True)
class MirrorSettings:
    """What the environment asks of this plugin, parsed once."""

    rules: tuple[tuple[str, str], ...] = ()
    pull_secrets: tuple[str, ...] = ()

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> MirrorSettings:
        return cls(
            rules=tuple(parse_rules(environ.get(MIRROR_ENV, ""))),
            pull_secrets=tuple(_names(environ.get(PULL_SECRETS_ENV, ""))),
        )


#: Nothing until a host configures the plugin.
settings = MirrorSettings()


@hookimpl
def daprplane_configure(environ: Mapping[str, str]) -> None:
    global settings
    settings = MirrorSettings.from_environ(environ)


@hookimpl
def daprplane_injector_annotations() -> list[str]:
    return [PULL_SECRETS_ANNOTATION]


@hookimpl
def daprplane_injector_edit_sidecar(sidecar: dict[str, Any]) -> None:
    if settings.rules and isinstance(sidecar.get("image"), str):
        sidecar["image"] = mirrored(sidecar["image"], settings.rules)


@hookimpl
def daprplane_injector_edit_pod(
    pod: Mapping[str, Any], annotations: Mapping[str, str]
) -> list[dict[str, Any]]:
    wanted = [*settings.pull_secrets, *_names(annotations.get(PULL_SECRETS_ANNOTATION, ""))]
    spec = pod.get("spec") or {}
    existing = spec.get("imagePullSecrets") if isinstance(spec, Mapping) else None
    existing = existing if isinstance(existing, list) else []
    have = {item.get("name") for item in existing if isinstance(item, Mapping)}
    new = []
    for name in wanted:
        if name not in have:
            have.add(name)
            new.append({"name": name})
    if not new:
        return []
    if not existing:
        return [{"op": "add", "path": "/spec/imagePullSecrets", "value": new}]
    return [{"op": "add", "path": "/spec/imagePullSecrets/-", "value": item} for item in new]
