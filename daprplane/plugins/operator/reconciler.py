"""The leader's Service reconciler: an ``<app-id>-dapr`` Service for every Dapr-enabled
Deployment and StatefulSet.

Changes to workloads and to the Services they own queue the workload; a few workers reconcile
the queue, each key at most once at a time. A Service is written only when it differs from what
it should be (Dapr rewrites it on every resync, which on a large cluster is a write per workload
every ten hours and a ``resourceVersion`` bump each time that every watcher of Services sees).

An invalid app ID is reported once per version of the workload, as a Warning Event on it and an
error line, and not retried: only an edit of the workload can fix it, and that edit queues it
again.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from daprplane.core.background import cancel_and_wait
from daprplane.core.kube.client import KubeApiError, request
from daprplane.core.kube.informer import object_key
from daprplane.plugins.operator.caches import KindCache
from daprplane.plugins.operator.dapr_service import (
    InvalidAppId,
    desired_service,
    is_truthy,
    service_differs,
    updated_service,
)
from daprplane.plugins.operator.kinds import SERVICES, ResourceKind
from daprplane.plugins.operator.metrics import OperatorMetrics

Key = tuple[str, str, str]  # kind, namespace, name
WORKERS = 8
MAX_BACKOFF = 60.0
REQUEST_TIMEOUT = 10.0
EVENT_SOURCE = "dapr-operator"


def workload_essentials(obj: dict[str, Any]) -> dict[str, Any]:
    """What the reconciler reads of a workload; the rest of a Dapr-enabled one (its pod spec,
    status, managed fields) and everything of the others is dropped."""
    metadata = obj.get("metadata") or {}
    kept_metadata = {
        key: metadata[key]
        for key in ("name", "namespace", "uid", "resourceVersion", "deletionTimestamp")
        if key in metadata
    }
    spec = obj.get("spec") or {}
    template = spec.get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    if not isinstance(annotations, Mapping) or not is_truthy(annotations.get("dapr.io/enabled")):
        return {"metadata": kept_metadata}
    return {
        "apiVersion": obj.get("apiVersion"),
        "kind": obj.get("kind"),
        "metadata": kept_metadata,
        "spec": {
            "selector": spec.get("selector"),
            "template": {"metadata": {"annotations": dict(annotations)}},
        },
    }


def controller_of(service: Mapping[str, Any]) -> tuple[str, str] | None:
    """(kind, name) of the Service's controller owner, if it is a workload kind."""
    for owner in (service.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(owner, Mapping) and owner.get("controller"):
            return str(owner.get("kind") or ""), str(owner.get("name") or "")
    return None


class ServiceReconciler:
    def __init__(
        self,
        api: Any,
        workloads: Mapping[str, tuple[ResourceKind, KindCache]],
        services: KindCache,
        *,
        mtls_enabled: Callable[[], bool],
        metrics: OperatorMetrics,
        log: logging.Logger,
        workers: int = WORKERS,
    ) -> None:
        self.api = api
        self.workloads = workloads
        self.services = services
        self.mtls_enabled = mtls_enabled
        self.metrics = metrics
        self.log = log
        self.workers = workers
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._reported: dict[Key, str] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._timers: set[asyncio.TimerHandle] = set()
        self.active = False
        for kind_name, (_, cache) in workloads.items():
            cache.add_listener(self._workload_listener(kind_name))
        services.add_listener(self._on_service)

    # -- queueing --------------------------------------------------------------------------------

    def _workload_listener(self, kind_name: str) -> Callable[..., None]:
        def listener(event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
            namespace, name = object_key(obj)
            self.enqueue((kind_name, namespace, name))

        return listener

    def _on_service(self, event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        owner = controller_of(obj)
        if owner is not None and owner[0] in self.workloads:
            self.enqueue((owner[0], object_key(obj)[0], owner[1]))

    def enqueue(self, key: Key) -> None:
        if self.active and key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def _retry_later(self, key: Key) -> None:
        failures = self._failures[key] = self._failures.get(key, 0) + 1
        delay = min(MAX_BACKOFF, 0.5 * 2 ** min(failures, 10)) * random.uniform(0.8, 1.2)
        handle = asyncio.get_running_loop().call_later(delay, self._requeue, key)
        self._timers.add(handle)

    def _requeue(self, key: Key) -> None:
        self._timers = {timer for timer in self._timers if not timer.cancelled()}
        self.enqueue(key)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> None:
        """Begin reconciling (this replica leads): every known workload is queued once."""
        self.active = True
        for kind_name, (_, cache) in self.workloads.items():
            for obj in cache:
                namespace, name = object_key(obj)
                self.enqueue((kind_name, namespace, name))
        self._tasks = [
            asyncio.create_task(self._work(), name=f"service-reconciler-{i}")
            for i in range(self.workers)
        ]

    async def aclose(self) -> None:
        self.active = False
        for timer in self._timers:
            timer.cancel()
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            await cancel_and_wait(task)

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                message = error.message if isinstance(error, KubeApiError) else str(error)
                self.log.error("Failed to reconcile %s %s/%s: %s", *key, message)
                self._retry_later(key)

    # -- one workload ----------------------------------------------------------------------------

    async def reconcile(self, key: Key) -> None:
        kind_name, namespace, name = key
        kind, cache = self.workloads[kind_name]
        workload = cache.get(namespace, name)
        if workload is None or (workload.get("metadata") or {}).get("deletionTimestamp"):
            self._reported.pop(key, None)
            return
        if "spec" not in workload:  # not Dapr-enabled (see workload_essentials)
            return
        try:
            desired = desired_service(
                workload,
                kind=kind.kind,
                api_version=kind.api_version,
                mtls_enabled=self.mtls_enabled(),
            )
        except InvalidAppId as error:
            await self._report_invalid(key, workload, str(error))
            return
        self._reported.pop(key, None)
        service_name = desired["metadata"]["name"]
        app_id = desired["metadata"]["annotations"]["dapr.io/app-id"]
        live = self.services.get(namespace, service_name) or await self._read(
            namespace, service_name
        )
        if live is None:
            try:
                await request(
                    self.api, "POST", SERVICES.collection_path(namespace), body=desired,
                    timeout=REQUEST_TIMEOUT,
                )  # fmt: skip
            except KubeApiError as error:
                if not error.conflict:
                    raise
                live = await self._read(namespace, service_name)
                if live is None:
                    raise
            else:
                self.metrics.service_created(app_id)
                self.log.info("Created service %s/%s for %s %s", namespace, service_name,
                              kind.kind, name)  # fmt: skip
                return
        if not service_differs(live, desired):
            return
        await request(
            self.api, "PUT", SERVICES.object_path(namespace, service_name),
            body=updated_service(live, desired), timeout=REQUEST_TIMEOUT,
        )  # fmt: skip
        self.metrics.service_updated(app_id)
        self.log.info("Updated service %s/%s for %s %s", namespace, service_name, kind.kind, name)

    async def _read(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = await request(
                self.api, "GET", SERVICES.object_path(namespace, name), timeout=REQUEST_TIMEOUT
            )
        except KubeApiError as error:
            if error.not_found:
                return None
            raise
        return found

    async def _report_invalid(self, key: Key, workload: Mapping[str, Any], message: str) -> None:
        kind_name, namespace, name = key
        metadata = workload.get("metadata") or {}
        version = str(metadata.get("resourceVersion") or "")
        if self._reported.get(key) == version:
            return
        self._reported[key] = version
        kind, _ = self.workloads[kind_name]
        self.log.error(
            "Not creating a Dapr service for %s %s/%s: %s", kind.kind, namespace, name, message
        )
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{name}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": kind.api_version,
                "kind": kind.kind,
                "name": name,
                "namespace": namespace,
                "uid": metadata.get("uid"),
                "resourceVersion": version,
            },
            "reason": "InvalidAppID",
            "message": message,
            "type": "Warning",
            "source": {"component": EVENT_SOURCE},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        try:
            await request(
                self.api, "POST", f"/api/v1/namespaces/{namespace}/events", body=event,
                timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        except (KubeApiError, OSError, TimeoutError) as error:
            # Dapr's chart grants no Event permission outside its own namespace: say so once.
            self.log.warning("Could not record an event on %s %s/%s: %s", kind.kind, namespace,
                             name, getattr(error, "message", error))  # fmt: skip
