"""The built-in placement plugin: registers the ``placement`` component and its launcher, and
adds the placement's hook specs to the host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daprplane.core.component import ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.plugins.placement import hookspecs
from daprplane.plugins.placement.flags import FLAGS

if TYPE_CHECKING:
    import pluggy


@hookimpl
def daprplane_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="placement",
            summary="Dapr actor placement service: maps actor types to sidecar hosts",
            run="daprplane.plugins.placement.service:run",
            flags=FLAGS,
            extra="placement",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes"),
            scope="dapr.placement",
            # The tools' modules are imported only when a tool runs: not by the launcher.
            commands={
                "locate": "daprplane.plugins.placement.cli:locate",
                "simulate": "daprplane.plugins.placement.cli:simulate",
            },
        )
    ]
