"""The watchdog (``--watch-interval``): deletes Dapr pods that started without their sidecar.

A pod created while the injector was down gets no ``daprd``; deleting it lets its controller
create a new one, which the injector (checked to be ready first) now sees. Deletions are limited
to ``--max-pod-restarts-per-minute``. Pods that do carry the sidecar can be labelled
``dapr.io/watchdog-patched`` so later passes skip them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from typing import Any

from daprplane.core.kube.client import KubeApiError, list_items, request
from daprplane.plugins.operator.dapr_service import is_truthy
from daprplane.plugins.operator.kinds import DEPLOYMENTS, PODS

INJECTOR_SELECTOR = "app=dapr-sidecar-injector"
POD_SELECTOR = "!dapr.io/sidecar-injected,!dapr.io/watchdog-patched"
FIRST_PASS_RETRY = 5.0
REQUEST_TIMEOUT = 30.0
PATCHED = {"metadata": {"labels": {"dapr.io/watchdog-patched": "true"}}}


class WatchdogError(Exception):
    pass


class RateLimiter:
    """At most ``per_minute`` takes in any minute (a token bucket); ``<= 0`` means unlimited."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._tokens = float(per_minute)
        self._at = time.monotonic()

    async def take(self) -> None:
        if self.per_minute <= 0:
            return
        while True:
            now = time.monotonic()
            refill = (now - self._at) * self.per_minute / 60
            self._tokens = min(self.per_minute, self._tokens + refill)
            self._at = now
            if self._tokens >= 1:
                self._tokens -= 1
                return
            await asyncio.sleep((1 - self._tokens) * 60 / self.per_minute)


def has_sidecar(pod: Mapping[str, Any]) -> bool:
    containers = (pod.get("spec") or {}).get("containers") or []
    return any(isinstance(c, Mapping) and c.get("name") == "daprd" for c in containers)


class Watchdog:
    def __init__(
        self,
        api: Any,
        *,
        interval: float,
        max_restarts_per_minute: int,
        can_patch_labels: bool,
        watch_namespace: str,
        log: logging.Logger,
    ) -> None:
        self.api = api
        self.interval = interval
        self.limiter = RateLimiter(max_restarts_per_minute)
        self.can_patch_labels = can_patch_labels
        self.watch_namespace = watch_namespace
        self.log = log

    async def _list(self, path: str, selector: str) -> list[dict[str, Any]]:
        query = {"labelSelector": selector}
        return await list_items(self.api, path, query=query, timeout=REQUEST_TIMEOUT)

    async def _injector_ready(self) -> None:
        path = DEPLOYMENTS.collection_path(self.watch_namespace)
        deployments = await self._list(path, INJECTOR_SELECTOR)
        if not deployments:
            raise WatchdogError("the sidecar injector deployment was not found")
        ready = max(int((d.get("status") or {}).get("readyReplicas") or 0) for d in deployments)
        if ready < 1:
            raise WatchdogError("the sidecar injector has no ready replica")

    async def one_pass(self) -> int:
        """Delete the pods missing their sidecar; returns how many were deleted."""
        await self._injector_ready()
        pods = await self._list(PODS.collection_path(self.watch_namespace), POD_SELECTOR)
        deleted = 0
        for pod in pods:
            metadata = pod.get("metadata") or {}
            annotations = metadata.get("annotations") or {}
            if not is_truthy(annotations.get("dapr.io/enabled")):
                continue
            namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
            path = PODS.object_path(namespace, name)
            if has_sidecar(pod):
                if self.can_patch_labels:
                    await self._patch(path, namespace, name)
                continue
            try:
                await request(self.api, "DELETE", path, timeout=REQUEST_TIMEOUT)
            except KubeApiError as error:
                if not error.not_found:
                    self.log.error("Failed to delete pod %s/%s: %s", namespace, name, error)
                continue
            deleted += 1
            self.log.info("Deleted pod %s/%s: it has no Dapr sidecar", namespace, name)
            await self.limiter.take()
        return deleted

    async def _patch(self, path: str, namespace: str, name: str) -> None:
        try:
            await request(
                self.api, "PATCH", path, body=PATCHED,
                content_type="application/merge-patch+json", timeout=REQUEST_TIMEOUT,
            )  # fmt: skip
        except KubeApiError as error:
            self.log.warning("Failed to label pod %s/%s: %s", namespace, name, error.message)

    async def run(self) -> None:
        # The first pass must succeed (the injector may still be starting): retry it.
        while True:
            try:
                await self.one_pass()
                break
            except (WatchdogError, KubeApiError, OSError, TimeoutError) as error:
                self.log.warning("Watchdog pass failed: %s; retrying", error)
                await asyncio.sleep(FIRST_PASS_RETRY)
        if self.interval <= 0:
            return
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.one_pass()
            except (WatchdogError, KubeApiError, OSError, TimeoutError) as error:
                self.log.warning("Watchdog pass failed: %s", error)


__all__ = ["RateLimiter", "Watchdog", "has_sidecar"]
