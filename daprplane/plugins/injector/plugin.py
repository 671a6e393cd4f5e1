"""The built-in injector plugin: registers the ``injector`` component and its launcher, and
adds the injector's hook specs to the host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daprplane.core.component import ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.plugins.injector import hookspecs
from daprplane.plugins.injector.flags import FLAGS

if TYPE_CHECKING:
    import pluggy


@hookimpl
def daprplane_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="injector",
            summary="Dapr sidecar injector: a mutating admission webhook that adds daprd to pods",
            run="daprplane.plugins.injector.service:run",
            flags=FLAGS,
            extra="injector",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes"),
            scope="dapr.injector",
        )
    ]
