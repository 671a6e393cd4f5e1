"""The built-in operator plugin: registers the ``operator`` component and its launcher, and
adds the operator's hook specs to the host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daprplane.core.component import ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.plugins.operator import hookspecs
from daprplane.plugins.operator.flags import FLAGS

if TYPE_CHECKING:
    import pluggy


@hookimpl
def daprplane_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="operator",
            summary="Dapr operator: serves Dapr CRDs to sidecars, manages <app-id>-dapr Services",
            run="daprplane.plugins.operator.service:run",
            flags=FLAGS,
            extra="operator",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes"),
            scope="dapr.operator",
        )
    ]
