"""The Lease election and the Leadership seam against an in-memory Lease API.

The fake answers the calls :func:`daprplane.core.kube.client.request` makes the way the API
server does for Leases (404 when missing, 409 on a name taken or a stale ``resourceVersion``),
so the election's races, hand-overs and step-downs run in milliseconds. The same behaviour
against the real API server is in ``tests/integration/core/test_lease_generic.py``.
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging
from typing import Any
from urllib.parse import urlsplit

import pytest

from daprplane.core.kube.client import KubeConfigError
from daprplane.core.kube.leadership import Leadership, SingleNode
from daprplane.core.kube.lease import LeaseLeadership, LeaseTimings
from daprplane.core.runtime import FatalError

NAMESPACE = "ns"
NAME = "unit.example.io"
FAST = LeaseTimings(lease_duration=1.0, renew_deadline=0.6, retry_period=0.05)


class _Response:
    def __init__(self, status: int, body: Any, reason: str = "") -> None:
        self.status = status
        self.reason = reason
        self._data = json.dumps(body).encode()

    async def read(self) -> bytes:
        return self._data


class _Configuration:
    host = "https://fake.invalid"
    username = None

    async def auth_settings(self) -> dict[str, Any]:
        return {}


class FakeLeaseApi:
    """Leases in memory, answering like the API server; ``failing`` makes every call a 500."""

    def __init__(self) -> None:
        self.configuration = _Configuration()
        self.user_agent = "fake"
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self.version = 0
        self.failing = False
        self.closed = False
        #: Cancelled by the next PUT just before it answers, as a shutdown racing a renewal.
        self.cancel_on_put: asyncio.Task[Any] | None = None

    def _status(self, code: int, reason: str, message: str) -> _Response:
        body = {"kind": "Status", "code": code, "reason": reason, "message": message}
        return _Response(code, body, reason)

    def _store(self, key: tuple[str, str], lease: dict[str, Any]) -> dict[str, Any]:
        self.version += 1
        stored = copy.deepcopy(lease)
        stored.setdefault("metadata", {})["resourceVersion"] = str(self.version)
        self.leases[key] = stored
        return copy.deepcopy(stored)

    def holder(self, name: str = NAME) -> str:
        return str(self.leases[(NAMESPACE, name)]["spec"].get("holderIdentity") or "")

    def write_holder(self, holder: str, name: str = NAME) -> None:
        """An outside write, as another client would make it."""
        lease = copy.deepcopy(self.leases[(NAMESPACE, name)])
        lease["spec"]["holderIdentity"] = holder
        self._store((NAMESPACE, name), lease)

    async def call_api(
        self, method: str, url: str, *, header_params: Any, body: Any, _request_timeout: Any
    ) -> _Response:
        assert not self.closed, "request on a closed client"
        await asyncio.sleep(0)  # let other tasks run between calls, as a network would
        if self.failing:
            return self._status(500, "InternalError", "etcd is down")
        parts = urlsplit(url).path.strip("/").split("/")
        assert parts[:4] == ["apis", "coordination.k8s.io", "v1", "namespaces"], url
        assert parts[5] == "leases", url
        namespace = parts[4]
        if method == "POST":
            assert len(parts) == 6
            key = (namespace, body["metadata"]["name"])
            if key in self.leases:
                return self._status(409, "AlreadyExists", f'leases "{key[1]}" already exists')
            return _Response(201, self._store(key, body))
        key = (namespace, parts[6])
        if key not in self.leases:
            return self._status(404, "NotFound", f'leases "{key[1]}" not found')
        if method == "GET":
            return _Response(200, copy.deepcopy(self.leases[key]))
        assert method == "PUT"
        if self.cancel_on_put is not None:
            self.cancel_on_put.cancel()
            self.cancel_on_put = None
        current = self.leases[key]["metadata"]["resourceVersion"]
        if body["metadata"].get("resourceVersion") != current:
            return self._status(409, "Conflict", "the object has been modified")
        return _Response(200, self._store(key, body))

    async def close(self) -> None:
        self.closed = True


def election(identity: str, api: FakeLeaseApi, **kwargs: Any) -> LeaseLeadership:
    kwargs.setdefault("timings", FAST)
    kwargs.setdefault("owns_api", False)
    return LeaseLeadership(identity, NAMESPACE, name=NAME, api_factory=lambda: api, **kwargs)


async def wait_until(predicate: Any, timeout: float) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout``."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not predicate():
        assert loop.time() - began < timeout, "condition not reached in time"
        await asyncio.sleep(0.01)
    return loop.time() - began


# -- the Leadership seam ------------------------------------------------------------------------


class _Manual(Leadership):
    async def start(self) -> None:
        pass


async def test_leadership_events_and_loss_callbacks() -> None:
    leadership = _Manual()
    calls: list[str] = []
    leadership.on_lost(lambda: calls.append("first"))
    leadership.on_lost(lambda: calls.append("second"))
    assert not leadership.is_leader
    await asyncio.wait_for(leadership.wait_for_loss(), 1)  # a follower from the start
    leadership._lost()  # not leading: nothing to lose
    assert calls == []

    waiter = asyncio.create_task(leadership.wait_for_leadership())
    await asyncio.sleep(0)
    assert not waiter.done()
    leadership._gained()
    await asyncio.wait_for(waiter, 1)
    assert leadership.is_leader
    loss = asyncio.create_task(leadership.wait_for_loss())
    await asyncio.sleep(0)
    assert not loss.done()

    leadership._lost()
    await asyncio.wait_for(loss, 1)
    assert not leadership.is_leader
    assert calls == ["first", "second"]
    leadership._lost()
    assert calls == ["first", "second"]
    await leadership.aclose()


async def test_single_node_leads_once_started() -> None:
    single = SingleNode()
    assert not single.is_leader
    await single.start()
    assert single.is_leader
    await single.aclose()


# -- the Lease election -------------------------------------------------------------------------


async def test_exactly_one_leads_and_leaving_hands_over_at_once() -> None:
    api = FakeLeaseApi()
    a, b = election("a", api), election("b", api)
    lost: list[str] = []
    a.on_lost(lambda: lost.append("a"))
    b.on_lost(lambda: lost.append("b"))
    try:
        await a.start()
        await asyncio.wait_for(a.wait_for_leadership(), 1)
        await b.start()
        for _ in range(20):  # several renewals and retries: leadership never doubles or moves
            await asyncio.sleep(0.02)
            assert a.is_leader and not b.is_leader
        assert api.holder() == "a"
        assert api.leases[(NAMESPACE, NAME)]["spec"]["leaseDurationSeconds"] == 1

        await a.aclose()
        assert lost == ["a"] and not a.is_leader
        # Released: b takes over at its next retry, long before the lease duration.
        assert api.holder() in ("", "b")
        took = await wait_until(lambda: b.is_leader, FAST.lease_duration)
        assert took < FAST.lease_duration / 2, took
        spec = api.leases[(NAMESPACE, NAME)]["spec"]
        assert spec["holderIdentity"] == "b"
        assert (
            spec["leaseTransitions"] == 1
        )  # the release keeps the count; b's acquisition adds one

        await b.aclose()
        assert api.holder() == "" and lost == ["a", "b"]
        assert not api.closed  # neither election created the client
    finally:
        await a.aclose()
        await b.aclose()


async def test_a_client_the_election_created_is_closed_with_it() -> None:
    api = FakeLeaseApi()
    created: list[FakeLeaseApi] = []

    def factory() -> FakeLeaseApi:
        created.append(api)
        return api

    owner = LeaseLeadership("a", NAMESPACE, name=NAME, timings=FAST, api_factory=factory)
    await owner.start()
    await asyncio.wait_for(owner.wait_for_leadership(), 1)
    assert created == [api]
    await owner.aclose()
    assert api.closed
    assert api.holder() == ""  # released before the client closed
    await owner.aclose()  # a second close does nothing


async def test_follower_closes_without_touching_the_lease() -> None:
    api = FakeLeaseApi()
    a, b = election("a", api), election("b", api)
    try:
        await a.start()
        await asyncio.wait_for(a.wait_for_leadership(), 1)
        await b.start()
        await asyncio.sleep(0.1)
        version = api.version
        await b.aclose()
        assert api.version in (version, version + 1)  # at most a's renewal
        assert api.holder() == "a" and a.is_leader
    finally:
        await a.aclose()
        await b.aclose()


async def test_task_is_named_after_the_lease() -> None:
    api = FakeLeaseApi()
    a = election("a", api)
    try:
        await a.start()
        assert f"lease-{NAME}" in {task.get_name() for task in asyncio.all_tasks()}
    finally:
        await a.aclose()
    assert f"lease-{NAME}" not in {task.get_name() for task in asyncio.all_tasks()}


async def test_another_holder_written_on_the_lease_demotes_the_leader(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeLeaseApi()
    a = election("a", api)
    lost: list[str] = []
    a.on_lost(lambda: lost.append("a"))
    try:
        await a.start()
        await asyncio.wait_for(a.wait_for_leadership(), 1)
        with caplog.at_level(logging.WARNING, "daprplane.core.kube.lease"):
            api.write_holder("someone-else")
            await asyncio.wait_for(a.wait_for_loss(), 0.5)
        assert lost == ["a"]
        assert f"Lease {NAMESPACE}/{NAME} is held by someone-else" in caplog.text
        # Nobody renews it: a takes it back once it looked unchanged for a lease duration.
        took = await wait_until(lambda: a.is_leader, 3)
        assert took > FAST.lease_duration * 0.8, took
        assert api.holder() == "a"
    finally:
        await a.aclose()


async def test_leader_that_cannot_renew_steps_down_at_the_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    api = FakeLeaseApi()
    a = election("a", api)
    try:
        with caplog.at_level(logging.INFO, "daprplane.core.kube.lease"):
            await a.start()
            await asyncio.wait_for(a.wait_for_leadership(), 1)
            api.failing = True
            took = await wait_until(lambda: not a.is_leader, 2)
            assert FAST.renew_deadline * 0.5 < took < FAST.renew_deadline + 0.5, took
            api.failing = False
            # Its own name is still on the Lease: it leads again at the next attempt.
            await asyncio.wait_for(a.wait_for_leadership(), 1)
        messages = [r.getMessage() for r in caplog.records]
        errors = [m for m in messages if m.startswith("error retrieving or updating lease")]
        assert errors == [f"error retrieving or updating lease {NAMESPACE}/{NAME}: etcd is down"]
        assert f"Failed to renew lease {NAMESPACE}/{NAME} within 0.6s" in messages
        assert messages.count(f"Successfully acquired lease {NAMESPACE}/{NAME}") == 2
    finally:
        await a.aclose()


async def test_racing_creators_elect_one() -> None:
    api = FakeLeaseApi()
    elections = [election(f"r{i}", api) for i in range(5)]
    try:
        await asyncio.gather(*(e.start() for e in elections))
        await wait_until(lambda: any(e.is_leader for e in elections), 1)
        for _ in range(10):
            await asyncio.sleep(0.02)
            assert [e.identity for e in elections if e.is_leader] == [api.holder()]
    finally:
        for e in elections:
            await e.aclose()


async def test_a_cancellation_arriving_as_a_renewal_completes_ends_the_election() -> None:
    api = FakeLeaseApi()
    a = election("a", api)
    try:
        await a.start()
        await asyncio.wait_for(a.wait_for_leadership(), 1)
        task = a._task
        assert task is not None
        api.cancel_on_put = task
        done, _ = await asyncio.wait({task}, timeout=1)
        assert task in done and task.cancelled()
        assert api.cancel_on_put is None  # the renewal did run
    finally:
        await asyncio.wait_for(a.aclose(), 2)


async def test_missing_configuration_is_fatal() -> None:
    def factory() -> object:
        raise KubeConfigError("no KUBECONFIG")

    unconfigured = LeaseLeadership("a", NAMESPACE, name=NAME, api_factory=factory)
    with pytest.raises(FatalError, match="leader election on a Lease needs the Kubernetes API"):
        await unconfigured.start()
    await unconfigured.aclose()
