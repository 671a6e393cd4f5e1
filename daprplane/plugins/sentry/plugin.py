"""The built-in sentry plugin: registers the ``sentry`` component and its launcher, and
adds the sentry's hook specs to the host."""

from __future__ import annotations

from typing import TYPE_CHECKING

from daprplane.core.component import ComponentSpec
from daprplane.core.markers import hookimpl
from daprplane.plugins.sentry import hookspecs
from daprplane.plugins.sentry.flags import FLAGS

if TYPE_CHECKING:
    import pluggy


@hookimpl
def daprplane_addhooks(pluginmanager: pluggy.PluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


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
