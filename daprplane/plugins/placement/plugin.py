"""The built-in placement plugin: registers the ``placement`` component and its launcher."""

from __future__ import annotations

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.core.runtime import FatalError
from daprplane.plugins.placement.flags import FLAGS


async def run(context: ComponentContext) -> None:
    # The launcher, flags and extra are in place; the service itself is not part of this release.
    raise FatalError("the placement service is not implemented in this release of daprplane")


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="placement",
            summary="Dapr actor placement service: maps actor types to sidecar hosts",
            run=run,
            flags=FLAGS,
            extra="placement",
            requires=("grpc", "google.protobuf", "cryptography", "pysyncobj", "kubernetes"),
            scope="dapr.placement",
        )
    ]
