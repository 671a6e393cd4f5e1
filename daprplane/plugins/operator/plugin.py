"""The built-in operator plugin: registers the ``operator`` component and its launcher."""

from __future__ import annotations

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.core.runtime import FatalError
from daprplane.plugins.operator.flags import FLAGS


async def run(context: ComponentContext) -> None:
    # The launcher, flags and extra are in place; the service itself is not part of this release.
    raise FatalError("the operator service is not implemented in this release of daprplane")


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="operator",
            summary="Dapr operator: serves Dapr CRDs to sidecars, manages <app-id>-dapr Services",
            run=run,
            flags=FLAGS,
            extra="operator",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes"),
            scope="dapr.operator",
        )
    ]
