"""The operator's hooks, added to the host by the operator plugin when it loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.core.markers import hookspec


@hookspec
def daprplane_operator_resource_changed(kind: str, event: str, resource: Mapping[str, Any]) -> None:
    """Observe each change the operator sees to a Dapr resource (audit trails, GitOps checks).

    ``kind`` is the resource's kind (``Component``, ``Configuration``, ``Subscription``,
    ``Resiliency``, ``HTTPEndpoint``, ``MCPServer``, ``WorkflowAccessPolicy``), ``event`` one of
    ``CREATED``, ``UPDATED``, ``DELETED``, and ``resource`` the object as the API server sent it
    (read-only; secret references are not resolved). Called once per change on every operator
    replica, after its caches have listed once (the objects that exist at start are not
    reported), on the operator's event loop: return quickly. A failing observer is logged with
    its exception; the operator and the streams to sidecars are not affected.
    """
