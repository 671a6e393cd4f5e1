"""Fan-out of resource changes to the sidecars' update streams (``ComponentUpdate`` and the rest).

A stream sees only its own namespace, and of scoped kinds only the objects scoped to its app;
a change of ``scopes`` is what the app sees, not what happened to the object: an object that
leaves the app's scope arrives as DELETED (carrying the object as it was), one that enters it as
CREATED. There is no initial snapshot: sidecars list first, then follow the stream.

An event's payload (secrets resolved, Go's JSON) is the same for every stream of its namespace,
so it is computed once, by the first stream that needs it, and shared with the rest: a change
seen by a thousand sidecars costs one secret lookup and one encoding.

A stream that stops reading is not allowed to hold memory without bound: past
:data:`MAX_PENDING` undelivered events it is ended, and its sidecar reconnects and lists again,
as it does after any stream error.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from daprplane._proto.operator.v1 import operator_pb2
from daprplane.core.kube.informer import ADDED, DELETED, MODIFIED, object_key

CREATED = operator_pb2.ResourceEventType.CREATED
UPDATED = operator_pb2.ResourceEventType.UPDATED
REMOVED = operator_pb2.ResourceEventType.DELETED
MAX_PENDING = 1000

Encoder = Callable[[dict[str, Any]], Awaitable[bytes]]

log = logging.getLogger("dapr.operator.api")


def in_scope(obj: Mapping[str, Any] | None, app_id: str) -> bool:
    """No scopes (or none that are a list) means every app in the namespace."""
    if obj is None:
        return False
    scopes = obj.get("scopes")
    if not isinstance(scopes, list) or not scopes:
        return True
    return app_id in scopes


def _resource_version(obj: Mapping[str, Any] | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


class SharedPayload:
    """The bytes of one object for the streams, computed at most once."""

    def __init__(self, obj: dict[str, Any], encode: Encoder) -> None:
        self._obj = obj
        self._encode = encode
        self._result: asyncio.Future[bytes] | None = None
        self._events: dict[int, bytes] = {}

    async def get(self) -> bytes:
        if self._result is None:
            self._result = asyncio.ensure_future(self._encode(self._obj))
        if self._result.done():
            return self._result.result()
        # Shielded: one stream ending must not cancel the encoding the others wait for.
        return await asyncio.shield(self._result)

    def framed(self, event_type: int) -> bytes | None:
        """The stream message for ``event_type`` if a stream has already made it."""
        return self._events.get(event_type)

    async def event(self, event_type: int, frame: Callable[[bytes, int], bytes]) -> bytes:
        """The serialized stream message for ``event_type``, made once for every stream."""
        framed = self._events.get(event_type)
        if framed is None:
            data = await self.get()
            # Streams woken by the same event all waited above: only the first one frames it.
            framed = self._events.get(event_type)
            if framed is None:
                framed = self._events[event_type] = frame(data, event_type)
        return framed


class Watcher:
    """One open update stream: who it is for and what it has yet to send."""

    def __init__(
        self,
        namespace: str,
        app_id: str,
        accept: Callable[[Mapping[str, Any]], bool] | None = None,
    ) -> None:
        self.namespace = namespace
        self.app_id = app_id
        self.accept = accept
        # A deque and one waiter rather than an asyncio.Queue: a fan-out touches every stream,
        # and this is the cheapest wake-up asyncio has.
        self._pending: collections.deque[tuple[int, SharedPayload] | None] = collections.deque()
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False

    def _put(self, item: tuple[int, SharedPayload] | None) -> None:
        self._pending.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def deliver(self, event_type: int, payload: SharedPayload) -> None:
        if self.overflowed:
            return
        if len(self._pending) >= MAX_PENDING:
            self.overflowed = True
            self.close()
            return
        self._put((event_type, payload))

    def close(self) -> None:
        self._put(None)

    async def next(self) -> tuple[int, SharedPayload] | None:
        """The next event, or None when the stream must end."""
        while not self._pending:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._pending.popleft()


class EventHub:
    """The open streams of one kind, fed by that kind's cache."""

    def __init__(self, encode: Encoder, *, scoped: bool) -> None:
        self.encode = encode
        self.scoped = scoped
        self._watchers: dict[str, set[Watcher]] = {}
        self.closed = False

    def __len__(self) -> int:
        return sum(len(watchers) for watchers in self._watchers.values())

    def subscribe(self, watcher: Watcher) -> None:
        if self.closed:
            watcher.close()
            return
        self._watchers.setdefault(watcher.namespace, set()).add(watcher)

    def unsubscribe(self, watcher: Watcher) -> None:
        watchers = self._watchers.get(watcher.namespace)
        if watchers is not None:
            watchers.discard(watcher)
            if not watchers:
                del self._watchers[watcher.namespace]

    def close_all(self) -> None:
        """End every stream (shutdown); later subscribers end at once."""
        self.closed = True
        for watchers in self._watchers.values():
            for watcher in watchers:
                watcher.close()

    def publish(self, event: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        """A cache listener: route one change to the streams that must see it."""
        if (
            event == MODIFIED
            and _resource_version(obj)
            and (_resource_version(obj) == _resource_version(old))
        ):
            return  # a resync, not a change
        namespace, _ = object_key(obj)
        watchers = self._watchers.get(namespace)
        if not watchers:
            return
        payloads: dict[int, SharedPayload] = {}

        def payload(of: dict[str, Any]) -> SharedPayload:
            shared = payloads.get(id(of))
            if shared is None:
                shared = payloads[id(of)] = SharedPayload(of, self.encode)
            return shared

        for watcher in list(watchers):
            routed = self._route(event, obj, old, watcher)
            if routed is not None:
                event_type, manifest = routed
                watcher.deliver(event_type, payload(manifest))

    def _route(
        self, event: str, obj: dict[str, Any], old: dict[str, Any] | None, watcher: Watcher
    ) -> tuple[int, dict[str, Any]] | None:
        if watcher.accept is not None and not watcher.accept(obj):
            return None
        if not self.scoped:
            kind = {ADDED: CREATED, MODIFIED: UPDATED, DELETED: REMOVED}[event]
            return kind, obj
        app = watcher.app_id
        now = in_scope(obj, app)
        before = event == MODIFIED and in_scope(old, app)
        if event == ADDED:
            return (CREATED, obj) if now else None
        if event == DELETED:
            return (REMOVED, obj) if now else None
        if now and before:
            return UPDATED, obj
        if now:
            return CREATED, obj
        if before and old is not None:
            return REMOVED, old
        return None
