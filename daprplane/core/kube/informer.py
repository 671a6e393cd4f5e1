"""A list+watch cache of one resource collection, as client-go's informers keep one.

The collection is listed (in pages), then watched from the list's resourceVersion with
bookmarks; a watch that ends is resumed from the last version seen, and a ``410 Gone`` (the
version was compacted away) starts over with a fresh list. After a relist, objects that
disappeared meanwhile are reported as deleted, so handlers see every change exactly as a
sequence of ADDED / MODIFIED / DELETED events.

Objects are plain JSON dicts; a ``transform`` may shrink them before they are stored (a
cluster-wide pod cache needs a few fields of each pod, not the whole object).
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import aiohttp

from daprplane.core.background import cancel_and_wait
from daprplane.core.kube.client import KubeApiError, open_request, request

log = logging.getLogger("daprplane.kube.informer")

Key = tuple[str, str]
Handler = Callable[[str, dict[str, Any], dict[str, Any] | None], None]

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"


def object_key(obj: Mapping[str, Any]) -> Key:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def _resource_version(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


class _Relist(Exception):
    """The watch cannot resume: list again."""


class Informer:
    """Cache of the objects at ``path`` (e.g. ``/api/v1/pods`` or a namespaced collection).

    ``run()`` keeps the cache up to date until cancelled; ``synced`` is set after the first
    complete list. API errors other than 410 are retried with capped exponential backoff;
    the latest one is kept in ``last_error``.
    """

    def __init__(
        self,
        api: Any,
        path: str,
        *,
        field_selector: str | None = None,
        label_selector: str | None = None,
        transform: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        page_size: int = 500,
        watch_timeout: tuple[int, int] = (300, 600),
        name: str | None = None,
    ) -> None:
        self.api = api
        self.path = path
        self.field_selector = field_selector
        self.label_selector = label_selector
        self.transform = transform
        self.page_size = page_size
        self.watch_timeout = watch_timeout
        self.name = name or path
        self.synced = asyncio.Event()
        self.resource_version = ""
        self.last_error: Exception | None = None
        self.relists = 0
        self._store: dict[Key, dict[str, Any]] = {}
        self._handlers: list[Handler] = []
        self._task: asyncio.Task[None] | None = None

    # -- reading ---------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._store.get((namespace, name))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(list(self._store.values()))

    def __len__(self) -> int:
        return len(self._store)

    def add_handler(self, handler: Handler) -> None:
        """``handler(event_type, obj, old)`` after each change; ``old`` is the previous object."""
        self._handlers.append(handler)

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> asyncio.Task[None]:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"informer {self.name}")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def wait_synced(self, timeout: float | None = None) -> bool:
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def run(self) -> None:
        backoff = 0.2
        # Started again after stop(): resume watching where the cache is.
        need_list = not self.resource_version
        while True:
            try:
                if need_list:
                    await self._list()
                    need_list = False
                await self._watch()
                backoff = 0.2
            except _Relist:
                need_list = True
                self.relists += 1
            except asyncio.CancelledError:
                raise
            except KubeApiError as error:
                if error.gone:
                    need_list = True
                    self.relists += 1
                    continue
                self._failed(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as error:
                self._failed(error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    def _failed(self, error: Exception) -> None:
        if str(error) != str(self.last_error):
            log.warning("Informer %s: %s; retrying", self.name, error)
        self.last_error = error

    # -- list and watch --------------------------------------------------------------------------

    def _selectors(self) -> list[tuple[str, str]]:
        query = []
        if self.field_selector:
            query.append(("fieldSelector", self.field_selector))
        if self.label_selector:
            query.append(("labelSelector", self.label_selector))
        return query

    async def _list(self) -> None:
        items: dict[Key, dict[str, Any]] = {}
        token = ""
        while True:
            query = [*self._selectors(), ("limit", self.page_size)]
            if token:
                query.append(("continue", token))
            try:
                page = await request(self.api, "GET", self.path, query=query)
            except KubeApiError as error:
                if error.gone and token:  # the continue token expired: list from the start
                    items, token = {}, ""
                    continue
                raise
            for item in page.get("items") or []:
                obj = self.transform(item) if self.transform else item
                items[object_key(item)] = obj
            metadata = page.get("metadata") or {}
            token = metadata.get("continue") or ""
            if not token:
                self.resource_version = str(metadata.get("resourceVersion") or "")
                break
        self._replace(items)
        self.last_error = None
        self.synced.set()

    def _replace(self, items: dict[Key, dict[str, Any]]) -> None:
        old_store, self._store = self._store, items
        for key, gone in old_store.items():
            if key not in items:
                self._emit(DELETED, gone, gone)
        for key, obj in items.items():
            old = old_store.get(key)
            if old is None:
                self._emit(ADDED, obj, None)
            elif _resource_version(old) != _resource_version(obj):
                self._emit(MODIFIED, obj, old)

    async def _watch(self) -> None:
        seconds = random.randint(*self.watch_timeout)
        query = [
            *self._selectors(),
            ("watch", "true"),
            ("allowWatchBookmarks", "true"),
            ("resourceVersion", self.resource_version),
            ("timeoutSeconds", seconds),
        ]
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=seconds + 30)
        response = await open_request(self.api, "GET", self.path, query=query, timeout=timeout)
        stream = response.response
        try:
            while True:
                line = await stream.content.readline()
                if not line:
                    return  # the server ended the watch: resume from resource_version
                if line.strip():
                    self._apply(json.loads(line))
        finally:
            stream.close()  # a watch connection is not reused

    def _apply(self, event: Mapping[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            if code == 410:
                raise _Relist()
            raise KubeApiError(int(code or 500), str(obj.get("message") or obj), body=obj)
        version = _resource_version(obj)
        if version:
            self.resource_version = version
        if kind == "BOOKMARK":
            return
        key = object_key(obj)
        old = self._store.get(key)
        if kind == DELETED:
            if old is not None:
                del self._store[key]
                self._emit(DELETED, old, old)
            return
        stored = self.transform(obj) if self.transform else obj
        self._store[key] = stored
        self._emit(ADDED if old is None else MODIFIED, stored, old)

    def _emit(self, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        for handler in self._handlers:
            try:
                handler(kind, obj, old)
            except Exception:  # a broken handler must not stop the cache
                log.exception("Informer %s: event handler failed", self.name)
