"""The sidecar injector's hooks, added to the host by the injector plugin when it loads.

Called for every admitted pod that will get a sidecar, in this order: annotations (once, at
start-up) -> edit_sidecar -> edit_pod -> edit_patch. Each call goes through pluggy (most
recently registered plugin first; ``tryfirst``/``trylast`` and wrappers as pluggy documents),
with every plugin on its own copy of the data and the injector's failure policy applied to
each one; see ``docs/plugins.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from daprplane.core.markers import hookspec


@hookspec
def daprplane_injector_annotations() -> Sequence[str]:
    """Return the extra pod annotations this plugin understands (e.g. ``dapr.io/my-feature``).

    Called once at injector start-up. The injector passes these through to the hooks below in
    ``annotations`` and lists them in its start-up log; it never rejects an unknown annotation.
    """


@hookspec
def daprplane_injector_edit_sidecar(
    sidecar: dict[str, Any], pod: Mapping[str, Any], annotations: Mapping[str, str]
) -> dict[str, Any] | None:
    """Edit the ``daprd`` container spec in place (or return a replacement).

    ``sidecar`` is the container as a Kubernetes JSON object (camelCase keys); ``pod`` is a copy
    of the incoming pod. Every plugin sees the result of the one called before it. The edited
    container must still be a JSON object named ``daprd``.
    """


@hookspec
def daprplane_injector_edit_pod(
    pod: Mapping[str, Any], annotations: Mapping[str, str]
) -> Sequence[Mapping[str, Any]] | None:
    """Return JSON-patch operations for pod-level changes (volumes, init containers, labels).

    The operations are appended after the injector's own, in the order the plugins are called.
    Each must be an object with ``op`` (``add``, ``replace`` or ``remove``), a ``path`` under
    ``/spec/`` or ``/metadata/`` and, except for ``remove``, a JSON ``value``.
    """


@hookspec
def daprplane_injector_edit_patch(
    patch: list[dict[str, Any]], pod: Mapping[str, Any]
) -> list[dict[str, Any]] | None:
    """See, and extend or edit in place (or replace), the final JSON patch before it is returned.

    It must stay a list of RFC 6902 operations.
    """
