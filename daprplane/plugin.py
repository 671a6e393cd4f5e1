"""Everything a daprplane plugin imports: the markers, and the types its hooks use.

Plugin authors import from here only, never from a component's modules, so components can
change inside without breaking plugins::

    from daprplane import plugin


    @plugin.hookimpl
    def daprplane_injector_edit_sidecar(sidecar: plugin.Container) -> None:
        sidecar["image"] = sidecar["image"].replace("ghcr.io/dapr", "mirror.example/dapr")

Importing this module costs no component's imports: the types that need a component's extra
(protobuf messages, the token validator types) load the first time they are used.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.flags import Flag, boolean, duration, integer, string, string_slice
from daprplane.core.markers import hookimpl, hookspec
from daprplane.core.runtime import FatalError

if TYPE_CHECKING:
    from daprplane._proto.placement.v1.placement_pb2 import Host as PlacementHost
    from daprplane._proto.sentry.v1.sentry_pb2 import SignCertificateRequest
    from daprplane.plugins.sentry.validators.base import Validation, ValidationError
    from daprplane.plugins.sentry.validators.base import Validator as TokenValidator
    from daprplane.plugins.sentry.validators.common import validate as check_sign_request

__all__ = [
    "ComponentContext",
    "ComponentSpec",
    "Container",
    "FatalError",
    "Flag",
    "PatchOperation",
    "PlacementHost",
    "PlacementTables",
    "Pod",
    "PodOperation",
    "SignCertificateRequest",
    "TokenValidator",
    "Validation",
    "ValidationError",
    "boolean",
    "check_sign_request",
    "duration",
    "hookimpl",
    "hookspec",
    "integer",
    "string",
    "string_slice",
]

# --- sidecar injector --------------------------------------------------------------------------

#: A Kubernetes container as JSON (camelCase keys): the ``sidecar`` a plugin edits.
Container = dict[str, Any]
#: A Kubernetes pod as JSON: the ``pod`` the injector hooks get (a copy; editing it does nothing).
Pod = Mapping[str, Any]


class PodOperation(TypedDict):
    """What ``daprplane_injector_edit_pod`` returns a list of: one RFC 6902 operation on the
    pod, at a ``path`` under ``/spec/`` or ``/metadata/``; ``value`` except for ``remove``."""

    op: Literal["add", "replace", "remove"]
    path: str
    value: NotRequired[Any]


#: One operation of the final patch ``daprplane_injector_edit_patch`` sees (RFC 6902); ``from``
#: is there for ``move`` and ``copy``. (``from`` is a keyword, hence the functional form.)
PatchOperation = TypedDict(
    "PatchOperation",
    {
        "op": Literal["add", "remove", "replace", "move", "copy", "test"],
        "path": str,
        "value": NotRequired[Any],
        "from": NotRequired[str],
    },
)


# --- placement ---------------------------------------------------------------------------------

#: ``daprplane_placement_table_disseminated``'s ``tables``: actor type -> host name -> Host.
PlacementTables = Mapping[str, Mapping[str, "PlacementHost"]]

# --- types that live in a component's extra, imported when first used ------------------------

_LAZY = {
    "PlacementHost": ("daprplane._proto.placement.v1.placement_pb2", "Host"),
    "SignCertificateRequest": ("daprplane._proto.sentry.v1.sentry_pb2", "SignCertificateRequest"),
    "TokenValidator": ("daprplane.plugins.sentry.validators.base", "Validator"),
    "Validation": ("daprplane.plugins.sentry.validators.base", "Validation"),
    "ValidationError": ("daprplane.plugins.sentry.validators.base", "ValidationError"),
    "check_sign_request": ("daprplane.plugins.sentry.validators.common", "validate"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
