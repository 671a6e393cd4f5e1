"""Placement's hooks, added to the host by the placement plugin when it loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.core.markers import hookspec


@hookspec
def daprplane_placement_table_disseminated(
    namespace: str, version: int, tables: Mapping[str, Mapping[str, Any]]
) -> None:
    """Observe each placement table after every sidecar in ``namespace`` unlocked ``version``.

    ``tables`` maps actor type to the hosts (``name -> Host``, copies of the protobuf messages,
    see ``daprplane.plugin.PlacementHost``) the table places it on. Called through pluggy on
    the placement event loop, so return quickly. An observer that raises is logged with its
    plugin's name; dissemination and the other observers go on.
    """
