"""One admitted pod, read once per admission request.

Before a patch is built, the webhook asks the pod four things: Dapr's pre-check (is injection
asked for?), the app id its logs and metrics name, whether it already carries ``daprd``, and
whether the namespace's Components must be listed for it. Those come from one lenient reading of
the pod that never fails, because Dapr's handler counts a pod it cannot read as enabled and lets
the patcher refuse it later with a clear message.

The patch itself is built from the strict reading: :class:`PodView` (which raises
:class:`PatchError` for a field of the wrong type) and the :class:`SidecarSettings` of its
annotations. It is made on first use and kept, so the pod is parsed once however many parts of
the injector look at it.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from daprplane.plugins.injector.annotations import (
    APP_ID,
    ENABLED,
    INJECT_PLUGGABLE_COMPONENTS,
    SidecarSettings,
    read_settings,
)
from daprplane.plugins.injector.podview import PodView
from daprplane.plugins.injector.sidecar import SIDECAR_NAME

if TYPE_CHECKING:
    from daprplane.plugins.injector.config import InjectorConfig


class PodSettings:
    """What one admitted pod says about its sidecar; see the module docstring."""

    def __init__(self, pod: Any) -> None:
        #: ``request.object`` as decoded, whatever its shape; plugins get this.
        self.raw = pod
        self._metadata = _mapping(pod.get("metadata")) if isinstance(pod, Mapping) else {}
        #: The annotations as found, values of any type (the strict reading checks them).
        self.annotations: Mapping[Any, Any] = _mapping(self._metadata.get("annotations"))
        self._sidecar: tuple[InjectorConfig, SidecarSettings] | None = None

    @classmethod
    def of(cls, pod: Any) -> PodSettings:
        """``pod`` itself when it is already read, else a new reading of it."""
        return pod if isinstance(pod, PodSettings) else cls(pod)

    # -- the lenient reading: the handler's questions -------------------------------------------

    @property
    def readable(self) -> bool:
        """Whether the pod is a non-empty JSON object (an empty one is Go's zero value)."""
        return isinstance(self.raw, Mapping) and bool(self.raw)

    @property
    def enabled(self) -> bool:
        """Dapr's pre-check: a pod that cannot be read counts as enabled (the patcher refuses it
        later with a clear message); a readable one needs ``dapr.io/enabled`` equal to ``true``
        in any case. ``yes`` or ``1`` pass the patcher's IsTruthy but not this check."""
        return not self.readable or _says_true(self.annotations.get(ENABLED))

    @property
    def app_id(self) -> str:
        """The app id logs and metrics name: ``dapr.io/app-id``, else the pod name, else ``""``."""
        value = self.annotations.get(APP_ID)
        if isinstance(value, str) and value:
            return value
        name = self._metadata.get("name")
        return name if isinstance(name, str) else ""

    @property
    def needs_injection(self) -> bool:
        """Whether the webhook should build a patch: ``dapr.io/enabled`` is ``true`` and there is
        no ``daprd`` container yet (the API server reinvokes the webhook on injected pods).

        A pod that is not a JSON object is not injected here; one whose fields have the wrong
        types is, so that the strict reading reports them.
        """
        if not isinstance(self.raw, Mapping) or not _says_true(self.annotations.get(ENABLED)):
            return False
        spec = self.raw.get("spec")
        if not isinstance(spec, Mapping):
            return True
        for field in ("containers", "initContainers"):
            containers = spec.get(field)
            if isinstance(containers, list) and any(
                isinstance(c, Mapping) and c.get("name") == SIDECAR_NAME for c in containers
            ):
                return False
        return True

    @property
    def asks_for_components(self) -> bool:
        """Whether ``dapr.io/inject-pluggable-components`` is present, whatever its value: the
        namespace's Components are listed before the value is read."""
        return INJECT_PLUGGABLE_COMPONENTS in self.annotations

    # -- the strict reading: what the patch is built from --------------------------------------

    @functools.cached_property
    def view(self) -> PodView:
        """The checked pod; raises :class:`PatchError` for a field of the wrong type."""
        return PodView(self.raw)

    def sidecar(self, config: InjectorConfig) -> SidecarSettings:
        """The annotations over the defaults, two of which come from the injector's ``config``."""
        if self._sidecar is None or self._sidecar[0] is not config:
            settings = read_settings(
                self.view.annotations,
                native_sidecar_default=config.native_sidecar_enabled,
                sockets_folder_default=config.component_sockets_folder,
            )
            self._sidecar = (config, settings)
        return self._sidecar[1]


def _mapping(value: Any) -> Mapping[Any, Any]:
    return value if isinstance(value, Mapping) else {}


def _says_true(value: Any) -> bool:
    # Go's strings.EqualFold(value, "true"); no non-ASCII letter folds to one of t, r, u, e.
    return isinstance(value, str) and value.isascii() and value.lower() == "true"
