"""The update streams' fan-out: namespace and scope routing, resync suppression, shared payloads,
overflow and shutdown (contract §2.6)."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
from collections.abc import Mapping
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from daprplane.core.kube.informer import ADDED, DELETED, MODIFIED
from daprplane.plugins.operator import streams
from daprplane.plugins.operator.streams import (
    CREATED,
    MAX_PENDING,
    REMOVED,
    UPDATED,
    EventHub,
    SharedPayload,
    Watcher,
    in_scope,
)

NS = "default"
APP = "a"


def manifest(
    name: str = "comp",
    namespace: str = NS,
    *,
    scopes: list[str] | None = None,
    rv: str = "1",
    tag: str = "",
) -> dict[str, Any]:
    """A Dapr object as the cache hands it to listeners; ``tag`` tells versions apart."""
    obj: dict[str, Any] = {
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": rv},
        "spec": {"tag": tag},
    }
    if scopes is not None:
        obj["scopes"] = scopes
    return obj


class CountingEncoder:
    """JSON bytes of the object, counting how often it is asked to encode."""

    def __init__(self) -> None:
        self.calls = 0

    async def __call__(self, obj: dict[str, Any]) -> bytes:
        self.calls += 1
        return json.dumps(obj, sort_keys=True).encode()


async def drain(watcher: Watcher) -> list[tuple[int, SharedPayload] | None]:
    """What ``watcher`` has pending, read through ``next()`` until it would wait."""
    items: list[tuple[int, SharedPayload] | None] = []
    while True:
        reading = asyncio.ensure_future(watcher.next())
        await asyncio.sleep(0)  # lets the read run once: it finishes unless it must wait
        if not reading.done():
            reading.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            return items
        items.append(reading.result())


async def received(watcher: Watcher) -> list[tuple[int, dict[str, Any]]]:
    """The events queued for ``watcher``, with their payloads decoded."""
    events = []
    for item in await drain(watcher):
        assert item is not None, "the stream was ended"
        event_type, payload = item
        events.append((event_type, json.loads(await payload.get())))
    return events


def hub_with(*watchers: Watcher, scoped: bool = True) -> tuple[EventHub, CountingEncoder]:
    encoder = CountingEncoder()
    hub = EventHub(encoder, scoped=scoped)
    for watcher in watchers:
        hub.subscribe(watcher)
    return hub, encoder


# -- in_scope --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        (None, False),
        ({}, True),
        ({"scopes": None}, True),
        ({"scopes": []}, True),
        ({"scopes": ["a"]}, True),
        ({"scopes": ["x", "a", "y"]}, True),
        ({"scopes": ["b"]}, False),
        ({"scopes": ["A"]}, False),  # app IDs compare case-sensitively
        ({"scopes": ["a "]}, False),
        # Not a list: Go could not have decoded it as scopes, so it restricts nothing.
        ({"scopes": "b"}, True),
        ({"scopes": {"b": 1}}, True),
    ],
)
def test_in_scope(obj: dict[str, Any] | None, expected: bool) -> None:
    assert in_scope(obj, "a") is expected


# -- routing of scoped kinds -----------------------------------------------------------------------

IN_SCOPES: list[list[str] | None] = [None, [], [APP], ["other", APP]]
OUT_SCOPES: list[list[str] | None] = [["other"], ["other", "third"]]


@pytest.mark.parametrize("scopes", IN_SCOPES)
async def test_added_in_scope_is_created(scopes: list[str] | None) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    obj = manifest(scopes=scopes)
    hub.publish(ADDED, obj, None)
    assert await received(watcher) == [(CREATED, obj)]


@pytest.mark.parametrize("scopes", OUT_SCOPES)
async def test_added_out_of_scope_is_not_seen(scopes: list[str]) -> None:
    watcher = Watcher(NS, APP)
    hub, encoder = hub_with(watcher)
    hub.publish(ADDED, manifest(scopes=scopes), None)
    assert await received(watcher) == []
    assert encoder.calls == 0


@pytest.mark.parametrize("scopes", IN_SCOPES)
async def test_deleted_in_scope_is_deleted(scopes: list[str] | None) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    obj = manifest(scopes=scopes, rv="7")
    hub.publish(DELETED, obj, None)
    assert await received(watcher) == [(REMOVED, obj)]


@pytest.mark.parametrize("scopes", OUT_SCOPES)
async def test_deleted_out_of_scope_is_not_seen(scopes: list[str]) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    hub.publish(DELETED, manifest(scopes=scopes), None)
    assert await received(watcher) == []


@pytest.mark.parametrize("before", IN_SCOPES)
@pytest.mark.parametrize("after", IN_SCOPES)
async def test_modified_staying_in_scope_is_updated(
    before: list[str] | None, after: list[str] | None
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    old = manifest(scopes=before, rv="1", tag="old")
    new = manifest(scopes=after, rv="2", tag="new")
    hub.publish(MODIFIED, new, old)
    assert await received(watcher) == [(UPDATED, new)]


@pytest.mark.parametrize("before", OUT_SCOPES)
@pytest.mark.parametrize("after", IN_SCOPES)
async def test_modified_entering_scope_is_created(
    before: list[str], after: list[str] | None
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    old = manifest(scopes=before, rv="1", tag="old")
    new = manifest(scopes=after, rv="2", tag="new")
    hub.publish(MODIFIED, new, old)
    assert await received(watcher) == [(CREATED, new)]


@pytest.mark.parametrize("before", IN_SCOPES)
@pytest.mark.parametrize("after", OUT_SCOPES)
async def test_modified_leaving_scope_is_deleted_with_the_old_object(
    before: list[str] | None, after: list[str]
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    old = manifest(scopes=before, rv="1", tag="old")
    new = manifest(scopes=after, rv="2", tag="new")
    hub.publish(MODIFIED, new, old)
    assert await received(watcher) == [(REMOVED, old)]


@pytest.mark.parametrize("before", OUT_SCOPES)
@pytest.mark.parametrize("after", OUT_SCOPES)
async def test_modified_staying_out_of_scope_is_not_seen(
    before: list[str], after: list[str]
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    hub.publish(MODIFIED, manifest(scopes=after, rv="2"), manifest(scopes=before, rv="1"))
    assert await received(watcher) == []


async def test_modified_without_an_old_object_counts_as_entering_scope() -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    new = manifest(scopes=[APP], rv="2")
    hub.publish(MODIFIED, new, None)
    assert await received(watcher) == [(CREATED, new)]


async def test_one_change_reaches_each_app_as_that_app_sees_it() -> None:
    """Scopes move from [a, b] to [b, c]: a loses it, b keeps it, c gains it, d never had it."""
    watchers = {app: Watcher(NS, app) for app in ("a", "b", "c", "d")}
    hub, encoder = hub_with(*watchers.values())
    old = manifest(scopes=["a", "b"], rv="1", tag="old")
    new = manifest(scopes=["b", "c"], rv="2", tag="new")
    hub.publish(MODIFIED, new, old)
    assert await received(watchers["a"]) == [(REMOVED, old)]
    assert await received(watchers["b"]) == [(UPDATED, new)]
    assert await received(watchers["c"]) == [(CREATED, new)]
    assert await received(watchers["d"]) == []
    assert encoder.calls == 2  # once for the old object, once for the new one


@pytest.mark.parametrize("scoped", [True, False])
@pytest.mark.parametrize("event", [ADDED, MODIFIED, DELETED])
async def test_other_namespaces_never_see_it(scoped: bool, event: str) -> None:
    elsewhere = Watcher("other", APP)
    same_app_here = Watcher(NS, APP)
    hub, _ = hub_with(elsewhere, same_app_here, scoped=scoped)
    old = manifest(scopes=[APP], rv="1") if event == MODIFIED else None
    hub.publish(event, manifest(scopes=[APP], rv="2"), old)
    assert await received(elsewhere) == []
    assert len(await received(same_app_here)) == 1


async def test_an_object_without_namespace_reaches_no_namespaced_stream() -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    hub.publish(ADDED, {"metadata": {"name": "x"}}, None)
    assert await received(watcher) == []


# -- routing of unscoped kinds ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("event", "expected"), [(ADDED, CREATED), (MODIFIED, UPDATED), (DELETED, REMOVED)]
)
@pytest.mark.parametrize("scopes", [None, [], ["other"], [APP]])
async def test_unscoped_kinds_ignore_scopes(
    event: str, expected: int, scopes: list[str] | None
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher, scoped=False)
    # Even a change of scopes is a plain update for a kind that has none.
    old = manifest(scopes=[APP], rv="1", tag="old") if event == MODIFIED else None
    new = manifest(scopes=scopes, rv="2", tag="new")
    hub.publish(event, new, old)
    assert await received(watcher) == [(expected, new)]


# -- resyncs ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("scoped", [True, False])
async def test_resync_with_equal_resource_version_is_dropped(scoped: bool) -> None:
    watcher = Watcher(NS, APP)
    hub, encoder = hub_with(watcher, scoped=scoped)
    obj = manifest(scopes=[APP], rv="42")
    hub.publish(MODIFIED, copy.deepcopy(obj), obj)
    assert await drain(watcher) == []
    assert encoder.calls == 0


@pytest.mark.parametrize("scoped", [True, False])
async def test_resync_with_empty_resource_versions_is_delivered(scoped: bool) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher, scoped=scoped)
    obj = manifest(scopes=[APP], rv="")
    del obj["metadata"]["resourceVersion"]
    hub.publish(MODIFIED, copy.deepcopy(obj), obj)
    hub.publish(MODIFIED, manifest(scopes=[APP], rv=""), manifest(scopes=[APP], rv=""))
    assert [event for event, _ in await received(watcher)] == [UPDATED, UPDATED]


@pytest.mark.parametrize(("old_rv", "new_rv"), [("1", "2"), ("", "2"), ("2", "")])
async def test_modified_with_differing_resource_versions_is_delivered(
    old_rv: str, new_rv: str
) -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    new = manifest(scopes=[APP], rv=new_rv, tag="new")
    hub.publish(MODIFIED, new, manifest(scopes=[APP], rv=old_rv, tag="old"))
    assert await received(watcher) == [(UPDATED, new)]


async def test_equal_resource_versions_do_not_drop_adds_and_deletes() -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    obj = manifest(scopes=[APP], rv="5")
    hub.publish(ADDED, obj, copy.deepcopy(obj))
    hub.publish(DELETED, obj, copy.deepcopy(obj))
    assert [event for event, _ in await received(watcher)] == [CREATED, REMOVED]


# -- accept filters --------------------------------------------------------------------------------


@pytest.mark.parametrize("scoped", [True, False])
async def test_accept_filters_each_watcher(scoped: bool) -> None:
    only_wanted = Watcher(NS, APP, accept=lambda obj: obj["metadata"]["name"] == "wanted")
    everything = Watcher(NS, APP)
    hub, _ = hub_with(only_wanted, everything, scoped=scoped)
    wanted, unwanted = manifest("wanted"), manifest("unwanted")
    for obj in (wanted, unwanted):
        hub.publish(ADDED, obj, None)
    assert await received(only_wanted) == [(CREATED, wanted)]
    assert await received(everything) == [(CREATED, wanted), (CREATED, unwanted)]


async def test_accept_sees_the_new_object_and_wins_over_scope_transitions() -> None:
    seen: list[Mapping[str, Any]] = []

    def refuse(obj: Mapping[str, Any]) -> bool:
        seen.append(obj)
        return False

    watcher = Watcher(NS, APP, accept=refuse)
    hub, encoder = hub_with(watcher)
    old, new = manifest(scopes=[APP], rv="1"), manifest(scopes=["other"], rv="2")
    hub.publish(MODIFIED, new, old)
    assert await drain(watcher) == []
    assert seen == [new]
    assert encoder.calls == 0


# -- shared payloads -------------------------------------------------------------------------------


async def received_payloads(watcher: Watcher) -> list[tuple[int, SharedPayload]]:
    items = await drain(watcher)
    assert None not in items
    return [item for item in items if item is not None]


async def test_one_encoding_for_many_watchers() -> None:
    watchers = [Watcher(NS, f"app{i}") for i in range(50)]
    hub, encoder = hub_with(*watchers)
    obj = manifest()
    hub.publish(ADDED, obj, None)
    payloads = [payload for w in watchers for _, payload in await received_payloads(w)]
    assert len(payloads) == 50
    assert len({id(payload) for payload in payloads}) == 1  # the very same SharedPayload
    results = await asyncio.gather(*(payload.get() for payload in payloads))
    assert set(results) == {json.dumps(obj, sort_keys=True).encode()}
    assert encoder.calls == 1


async def test_each_change_is_encoded_anew() -> None:
    watcher = Watcher(NS, APP)
    hub, encoder = hub_with(watcher)
    hub.publish(ADDED, manifest(rv="1"), None)
    hub.publish(MODIFIED, manifest(rv="2", tag="x"), manifest(rv="1"))
    for _, payload in await received_payloads(watcher):
        await payload.get()
        await payload.get()
    assert encoder.calls == 2


async def test_nothing_is_encoded_until_a_stream_asks() -> None:
    hub, encoder = hub_with(*(Watcher(NS, f"app{i}") for i in range(5)))
    hub.publish(ADDED, manifest(), None)
    await asyncio.sleep(0)
    assert encoder.calls == 0


async def test_no_watchers_in_the_namespace_costs_nothing() -> None:
    hub, encoder = hub_with(Watcher("other", APP))
    hub.publish(ADDED, manifest(), None)
    assert encoder.calls == 0


async def test_an_encoding_error_reaches_every_stream_and_is_computed_once() -> None:
    calls = 0

    class Boom(Exception):
        pass

    async def failing(obj: dict[str, Any]) -> bytes:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise Boom("secret gone")

    payload = SharedPayload(manifest(), failing)
    results = await asyncio.gather(*(payload.get() for _ in range(5)), return_exceptions=True)
    assert all(isinstance(result, Boom) for result in results)
    with pytest.raises(Boom):
        await payload.get()
    assert calls == 1


async def test_a_cancelled_reader_does_not_cancel_the_shared_encoding() -> None:
    release = asyncio.Event()
    calls = 0

    async def slow(obj: dict[str, Any]) -> bytes:
        nonlocal calls
        calls += 1
        await release.wait()
        return b"done"

    payload = SharedPayload(manifest(), slow)
    first = asyncio.create_task(payload.get())
    await asyncio.sleep(0)
    first.cancel()
    second = asyncio.create_task(payload.get())
    await asyncio.sleep(0)
    release.set()
    assert await second == b"done"
    assert calls == 1


class CountingFrame:
    def __init__(self) -> None:
        self.calls: list[tuple[bytes, int]] = []

    def __call__(self, data: bytes, event_type: int) -> bytes:
        self.calls.append((data, event_type))
        return b"%d:" % event_type + data


async def test_event_is_framed_once_per_event_type() -> None:
    encoder = CountingEncoder()
    payload = SharedPayload(manifest(), encoder)
    frame = CountingFrame()
    encoded = await payload.get()
    created = [await payload.event(CREATED, frame) for _ in range(10)]
    removed = [await payload.event(REMOVED, frame) for _ in range(10)]
    assert set(created) == {b"%d:" % CREATED + encoded}
    assert set(removed) == {b"%d:" % REMOVED + encoded}
    assert frame.calls == [(encoded, CREATED), (encoded, REMOVED)]
    assert encoder.calls == 1


async def test_framed_is_none_until_a_stream_has_framed_the_event() -> None:
    payload = SharedPayload(manifest(), CountingEncoder())
    frame = CountingFrame()
    assert payload.framed(CREATED) is None
    message = await payload.event(CREATED, frame)
    assert payload.framed(CREATED) == message
    assert payload.framed(UPDATED) is None


async def test_streams_woken_together_frame_an_event_once() -> None:
    """What a fan-out looks like: every stream wakes for the same event and frames it at once."""
    watchers = [Watcher(NS, f"app{i}") for i in range(20)]
    hub, encoder = hub_with(*watchers)
    frame = CountingFrame()

    async def stream(watcher: Watcher) -> bytes:
        item = await watcher.next()
        assert item is not None
        event_type, payload = item
        return await payload.event(event_type, frame)

    tasks = [asyncio.create_task(stream(watcher)) for watcher in watchers]
    await asyncio.sleep(0)
    hub.publish(ADDED, manifest(), None)
    messages = await asyncio.gather(*tasks)
    assert len(set(messages)) == 1
    assert encoder.calls == 1
    assert len(frame.calls) == 1


# -- overflow --------------------------------------------------------------------------------------


async def test_a_stream_that_falls_behind_is_ended() -> None:
    slow, prompt = Watcher(NS, APP), Watcher(NS, "b")
    hub, _ = hub_with(slow, prompt)
    for i in range(MAX_PENDING):
        hub.publish(ADDED, manifest(f"c{i}"), None)
        assert await drain(prompt)  # the prompt reader keeps up
    assert not slow.overflowed

    hub.publish(ADDED, manifest("one-too-many"), None)
    assert slow.overflowed
    assert not prompt.overflowed
    assert len(await drain(prompt)) == 1
    # Nothing more is queued once the stream is over; the backlog ends with the end marker.
    hub.publish(ADDED, manifest("later"), None)
    backlog = await drain(slow)
    assert len(backlog) == MAX_PENDING + 1
    assert backlog[-1] is None
    assert all(item is not None for item in backlog[:-1])


async def test_next_returns_none_once_overflowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(streams, "MAX_PENDING", 2)
    watcher = Watcher(NS, APP)
    payload = SharedPayload(manifest(), CountingEncoder())
    for _ in range(3):
        watcher.deliver(CREATED, payload)
    assert watcher.overflowed
    assert await watcher.next() == (CREATED, payload)
    assert await watcher.next() == (CREATED, payload)
    assert await asyncio.wait_for(watcher.next(), 1) is None
    watcher.deliver(CREATED, payload)
    assert await drain(watcher) == []


# -- lifecycle -------------------------------------------------------------------------------------


async def test_close_all_ends_every_stream() -> None:
    watchers = [Watcher(NS, APP), Watcher(NS, "b"), Watcher("other", APP)]
    hub, _ = hub_with(*watchers)
    assert len(hub) == 3
    hub.close_all()
    assert hub.closed
    results = await asyncio.wait_for(asyncio.gather(*(w.next() for w in watchers)), 1)
    assert results == [None, None, None]
    assert not any(watcher.overflowed for watcher in watchers)


async def test_close_all_wakes_a_waiting_stream() -> None:
    watcher = Watcher(NS, APP)
    hub, _ = hub_with(watcher)
    waiting = asyncio.create_task(watcher.next())
    await asyncio.sleep(0)
    assert not waiting.done()
    hub.close_all()
    assert await asyncio.wait_for(waiting, 1) is None


async def test_subscribing_after_close_ends_at_once() -> None:
    hub, _ = hub_with()
    hub.close_all()
    late = Watcher(NS, APP)
    hub.subscribe(late)
    assert len(hub) == 0
    assert await asyncio.wait_for(late.next(), 1) is None


async def test_unsubscribe() -> None:
    first, second = Watcher(NS, APP), Watcher(NS, "b")
    hub, _ = hub_with(first, second)
    hub.unsubscribe(first)
    hub.unsubscribe(first)  # twice is harmless
    hub.unsubscribe(Watcher("never-subscribed", APP))
    assert len(hub) == 1
    hub.publish(ADDED, manifest(), None)
    assert await drain(first) == []
    assert len(await drain(second)) == 1
    hub.unsubscribe(second)
    assert len(hub) == 0
    hub.publish(ADDED, manifest(), None)
    assert await drain(second) == []


# -- property: an app's view always matches its scope ----------------------------------------------

APPS = ("a", "b", "c", "never")
SCOPE_SETS = st.one_of(
    st.none(),
    st.lists(st.sampled_from(["a", "b", "c", "outsider"]), max_size=4, unique=True),
)


class ScopeChanges(RuleBasedStateMachine):
    """One object is created, rescoped, resynced and deleted at random; each app's stream,
    replayed, must leave that app holding the object exactly when it is in the app's scope."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.hub = EventHub(CountingEncoder(), scoped=True)
        self.watchers = {app: Watcher(NS, app) for app in APPS}
        self.elsewhere = Watcher("other", "a")
        for watcher in (*self.watchers.values(), self.elsewhere):
            self.hub.subscribe(watcher)
        self.current: dict[str, Any] | None = None
        self.version = 0
        # What each app holds after replaying its stream: the object's JSON, or None.
        self.views: dict[str, dict[str, Any] | None] = dict.fromkeys(APPS)

    def teardown(self) -> None:
        self.loop.close()

    def _next_version(self, empty: bool) -> str:
        self.version += 1
        return "" if empty else str(self.version)

    @rule(scopes=SCOPE_SETS, empty_rv=st.booleans())
    def put(self, scopes: list[str] | None, empty_rv: bool) -> None:
        obj = manifest(scopes=scopes, rv=self._next_version(empty_rv), tag=str(self.version))
        if self.current is None:
            self.hub.publish(ADDED, obj, None)
        else:
            self.hub.publish(MODIFIED, obj, self.current)
        self.current = obj

    @precondition(lambda self: self.current is not None)
    @rule()
    def resync(self) -> None:
        assert self.current is not None
        self.hub.publish(MODIFIED, copy.deepcopy(self.current), self.current)

    @precondition(lambda self: self.current is not None)
    @rule()
    def delete(self) -> None:
        assert self.current is not None
        self.hub.publish(DELETED, self.current, None)
        self.current = None

    @invariant()
    def views_follow_scopes(self) -> None:
        for app, watcher in self.watchers.items():
            for event_type, obj in self.loop.run_until_complete(received(watcher)):
                held = self.views[app]
                if event_type == CREATED:
                    assert held is None, f"{app} got CREATED for an object it already holds"
                    self.views[app] = obj
                elif event_type == UPDATED:
                    assert held is not None, f"{app} got UPDATED for an object it lacks"
                    self.views[app] = obj
                else:
                    assert event_type == REMOVED
                    assert held is not None, f"{app} got DELETED for an object it lacks"
                    # Leaving scope carries the object as the app last saw it, not the new one.
                    assert obj == held, f"{app} got DELETED carrying another version"
                    self.views[app] = None
            expected = self.current if in_scope(self.current, app) else None
            assert self.views[app] == expected, app
        assert self.loop.run_until_complete(drain(self.elsewhere)) == []


ScopeChanges.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestScopeChanges = ScopeChanges.TestCase
