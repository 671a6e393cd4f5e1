"""Secrets for ``secretKeyRef`` resolution: cached per namespace, started on first use.

Only namespaces whose resources reference a Secret are watched, so an operator in a cluster full
of large Secrets (Helm keeps every release in one) holds just the ones sidecars may need. A
Secret missing from the cache is read once from the API server before it is reported missing:
one created a moment ago may not have reached the watch yet.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from daprplane.core.kube.client import KubeApiError, request
from daprplane.core.kube.informer import Informer
from daprplane.plugins.operator.kinds import SECRETS
from daprplane.plugins.operator.secrets import SecretError

SYNC_TIMEOUT = 10.0
GET_TIMEOUT = 5.0


def _data_only(secret: dict[str, Any]) -> dict[str, Any]:
    metadata = secret.get("metadata") or {}
    return {
        "metadata": {
            "name": metadata.get("name"),
            "namespace": metadata.get("namespace"),
            "resourceVersion": metadata.get("resourceVersion"),
        },
        "data": secret.get("data") or {},
    }


class SecretCache:
    def __init__(self, api: Any, *, watch_namespace: str = "") -> None:
        self.api = api
        self.watch_namespace = watch_namespace
        self._informers: dict[str, Informer] = {}

    def _informer(self, namespace: str) -> Informer:
        informer = self._informers.get(namespace)
        if informer is None:
            informer = Informer(
                self.api,
                SECRETS.collection_path(namespace),
                transform=_data_only,
                name=f"secrets in {namespace}",
            )
            informer.start()
            self._informers[namespace] = informer
        return informer

    async def lookup(self, namespace: str, name: str) -> Mapping[str, str] | None:
        """The ``data`` of Secret ``namespace/name``, or None when it does not exist."""
        if self.watch_namespace and namespace != self.watch_namespace:
            return await self._get(namespace, name)
        informer = self._informer(namespace)
        if not await informer.wait_synced(SYNC_TIMEOUT):
            # Without a cache (no list/watch permission, say) a direct read still answers.
            return await self._get(namespace, name)
        cached = informer.get(namespace, name)
        if cached is not None:
            data: Mapping[str, str] = cached.get("data") or {}
            return data
        return await self._get(namespace, name)

    async def _get(self, namespace: str, name: str) -> Mapping[str, str] | None:
        try:
            secret = await request(
                self.api, "GET", SECRETS.object_path(namespace, name), timeout=GET_TIMEOUT
            )
        except KubeApiError as error:
            if error.not_found:
                return None
            raise SecretError(f"failed to get secret {namespace}/{name}: {error.message}") from None
        except (OSError, TimeoutError) as error:
            raise SecretError(f"failed to get secret {namespace}/{name}: {error}") from None
        data: Mapping[str, str] = (secret or {}).get("data") or {}
        return data

    async def aclose(self) -> None:
        informers, self._informers = self._informers, {}
        await asyncio.gather(*(informer.stop() for informer in informers.values()))
