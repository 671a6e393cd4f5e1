"""daprplane: the Dapr control plane for Kubernetes, in Python.

The public surface is small: the plugin markers and the types a plugin needs to add a component.
"""

from daprplane.core.component import ComponentContext, ComponentSpec
from daprplane.core.flags import Flag, Kind
from daprplane.core.markers import hookimpl, hookspec
from daprplane.core.runtime import FatalError

__version__ = "0.1.0"

__all__ = [
    "ComponentContext",
    "ComponentSpec",
    "FatalError",
    "Flag",
    "Kind",
    "__version__",
    "hookimpl",
    "hookspec",
]
