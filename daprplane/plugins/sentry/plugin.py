"""The built-in sentry plugin: registers the ``sentry`` component and its launcher."""

from __future__ import annotations

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.core.runtime import FatalError
from daprplane.plugins.sentry.flags import FLAGS


async def run(context: ComponentContext) -> None:
    # The launcher, flags and extra are in place; the service itself is not part of this release.
    raise FatalError("the sentry service is not implemented in this release of daprplane")


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="sentry",
            summary="Dapr certificate authority: issues SPIFFE X.509 identities for mTLS",
            run=run,
            flags=FLAGS,
            extra="sentry",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes", "yaml"),
            scope="dapr.sentry",
        )
    ]
