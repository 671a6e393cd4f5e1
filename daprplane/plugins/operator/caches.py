"""What the operator keeps of the cluster: one list+watch cache per kind, indexed by namespace.

Every replica keeps these (the gRPC API reads them); only the leader's reconciler writes. A kind
whose CRD is absent (an older chart without MCPServers, say) is not an error: its cache lists as
empty and keeps retrying, so the kind is picked up once the CRD is installed.

Objects are shrunk before they are stored (``transform``): ``managedFields`` are dropped from
everything, and pods keep only their Dapr annotations, so memory follows what the operator
uses, not the size of the cluster's objects.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from daprplane.core.kube.client import KubeApiError
from daprplane.core.kube.informer import DELETED, Informer, object_key
from daprplane.plugins.operator.kinds import ResourceKind

Transform = Callable[[dict[str, Any]], dict[str, Any]]
Listener = Callable[[str, dict[str, Any], dict[str, Any] | None], None]


def without_managed_fields(obj: dict[str, Any]) -> dict[str, Any]:
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        obj = {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return obj


class KindCache:
    """The objects of one kind (cluster-wide, or in ``watch_namespace``), by namespace.

    Listeners get ``(event, obj, old)`` for every change after the first complete list; the
    objects of that first list are the starting state, not news (Dapr's ``isInInitialList``).
    """

    def __init__(
        self,
        api: Any,
        kind: ResourceKind,
        *,
        watch_namespace: str = "",
        transform: Transform | None = without_managed_fields,
        label_selector: str | None = None,
    ) -> None:
        self.kind = kind
        self.informer = Informer(
            api,
            kind.collection_path(watch_namespace),
            transform=transform,
            label_selector=label_selector,
            name=kind.plural,
        )
        self._by_namespace: dict[str, dict[str, dict[str, Any]]] = {}
        self._listeners: list[Listener] = []
        self.informer.add_handler(self._on_event)

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def _on_event(self, event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        namespace, name = object_key(obj)
        if event == DELETED:
            names = self._by_namespace.get(namespace)
            if names is not None:
                names.pop(name, None)
                if not names:
                    del self._by_namespace[namespace]
        else:
            self._by_namespace.setdefault(namespace, {})[name] = obj
        if not self.informer.synced.is_set():
            return
        for listener in self._listeners:
            listener(event, obj, old)

    # -- reading ---------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._by_namespace.get(namespace, {}).get(name)

    def in_namespace(self, namespace: str) -> list[dict[str, Any]]:
        """The namespace's objects, ordered by name (API server list order)."""
        names = self._by_namespace.get(namespace, {})
        return [names[name] for name in sorted(names)]

    def __iter__(self) -> Iterable[dict[str, Any]]:
        return iter(self.informer)

    @property
    def absent(self) -> bool:
        """The collection does not exist (yet): its CRD is not installed."""
        error = self.informer.last_error
        missing = isinstance(error, KubeApiError) and error.not_found
        return missing and not self.informer.synced.is_set()

    @property
    def ready(self) -> bool:
        return self.informer.synced.is_set() or self.absent

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        self.informer.start()

    async def stop(self) -> None:
        await self.informer.stop()


async def wait_ready(caches: Iterable[KindCache], poll: float = 0.05) -> None:
    """Until every cache has listed once, or found its collection absent."""
    pending = list(caches)
    while pending:
        pending = [cache for cache in pending if not cache.ready]
        if pending:
            await asyncio.sleep(poll)


def dapr_pod_metadata(annotations_prefix: str = "dapr.io/") -> Transform:
    """Pods shrunk to name, namespace, version and their ``dapr.io/`` annotations; pods without
    any keep only their name (the cache must still know them to notice their deletion)."""

    def transform(pod: dict[str, Any]) -> dict[str, Any]:
        metadata = pod.get("metadata") or {}
        kept: dict[str, Any] = {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
        }
        annotations = metadata.get("annotations")
        if isinstance(annotations, Mapping):
            dapr = {k: v for k, v in annotations.items() if str(k).startswith(annotations_prefix)}
            if dapr:
                kept["annotations"] = dapr
        return {"metadata": kept}

    return transform
