"""The built-in sentry plugin: registers the ``sentry`` component and its launcher."""

from __future__ import annotations

from daprplane.core.component import ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.plugins.sentry.flags import FLAGS


@hookimpl
def daprplane_register_components() -> list[ComponentSpec]:
    return [
        ComponentSpec(
            name="sentry",
            summary="Dapr certificate authority: issues SPIFFE X.509 identities for mTLS",
            run="daprplane.plugins.sentry.service:run",
            flags=FLAGS,
            extra="sentry",
            requires=("grpc", "google.protobuf", "cryptography", "kubernetes", "yaml", "jwt"),
            scope="dapr.sentry",
        )
    ]
