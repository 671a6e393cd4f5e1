"""The built-in injector plugin: registers the ``injector`` component and its launcher."""

from __future__ import annotations

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.core.runtime import FatalError
from daprplane.plugins.injector.flags import FLAGS


async def run(context: ComponentContext) -> None:
    # The launcher, flags and extra are in place; the service itself is not part of this release.
    raise FatalError("the injector service is not implemented in this release of daprplane")


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="injector",
            summary="Dapr sidecar injector: a mutating admission webhook that adds daprd to pods",
            run=run,
            flags=FLAGS,
            extra="injector",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes"),
            scope="dapr.injector",
        )
    ]
