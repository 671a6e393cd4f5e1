"""The watchdog: its pod-deletion rate limit, what counts as a sidecar, and one pass against a
fake API server (contract §4)."""

from __future__ import annotations

import logging
import time
from types import SimpleNamespace
from typing import Any

import pytest

from daprplane.core.kube import client as kube_client
from daprplane.core.kube.client import KubeApiError
from daprplane.plugins.operator import watchdog
from daprplane.plugins.operator.watchdog import (
    FIRST_PASS_RETRY,
    INJECTOR_SELECTOR,
    PATCHED,
    POD_SELECTOR,
    RateLimiter,
    Watchdog,
    WatchdogError,
    has_sidecar,
)


class FakeClock:
    """``time.monotonic`` and ``asyncio.sleep`` of the watchdog module: sleeping moves time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(watchdog, "time", SimpleNamespace(monotonic=fake.monotonic))
    monkeypatch.setattr(watchdog, "asyncio", SimpleNamespace(sleep=fake.sleep))
    return fake


# -- RateLimiter -----------------------------------------------------------------------------------


@pytest.mark.parametrize("per_minute", [1, 3, 20])
async def test_the_first_per_minute_takes_are_immediate(clock: FakeClock, per_minute: int) -> None:
    limiter = RateLimiter(per_minute)
    for _ in range(per_minute):
        await limiter.take()
    assert clock.sleeps == []


@pytest.mark.parametrize("per_minute", [1, 3, 20])
async def test_then_takes_are_spaced_evenly(clock: FakeClock, per_minute: int) -> None:
    limiter = RateLimiter(per_minute)
    for _ in range(per_minute):
        await limiter.take()
    start = clock.now
    for i in range(1, 4):
        await limiter.take()
        assert clock.now - start == pytest.approx(i * 60 / per_minute)


async def test_any_window_holds_at_most_the_burst_plus_the_refill(clock: FakeClock) -> None:
    """A token bucket: in a window of T seconds, at most per_minute + T * per_minute / 60."""
    limiter = RateLimiter(5)
    taken_at: list[float] = []
    for _ in range(23):
        await limiter.take()
        taken_at.append(clock.now)
    for i, start in enumerate(taken_at):
        for end in taken_at[i:]:
            in_window = sum(1 for t in taken_at if start <= t <= end)
            assert in_window <= 5 + (end - start) * 5 / 60 + 1e-9
    # The long-run rate is per_minute: 18 takes after the burst need 18 * 12 s.
    assert taken_at[-1] - taken_at[0] == pytest.approx(18 * 12.0)


async def test_idle_time_refills_only_up_to_per_minute(clock: FakeClock) -> None:
    limiter = RateLimiter(4)
    for _ in range(4):
        await limiter.take()
    clock.now += 3600  # an hour without deletions does not bank an hour of tokens
    for _ in range(4):
        await limiter.take()
    assert clock.sleeps == []
    await limiter.take()
    assert sum(clock.sleeps) == pytest.approx(15.0)


async def test_partial_refill_shortens_the_wait(clock: FakeClock) -> None:
    limiter = RateLimiter(2)
    await limiter.take()
    await limiter.take()
    clock.now += 10  # a third of a token back (one token per 30 s)
    await limiter.take()
    assert sum(clock.sleeps) == pytest.approx(20.0)


@pytest.mark.parametrize("per_minute", [0, -1, -20])
async def test_zero_or_less_is_unlimited(clock: FakeClock, per_minute: int) -> None:
    limiter = RateLimiter(per_minute)
    for _ in range(500):
        await limiter.take()
    assert clock.sleeps == []


async def test_a_real_clock_throttles_after_the_burst() -> None:
    limiter = RateLimiter(600)  # one token per 0.1 s after a burst of 600
    for _ in range(600):
        await limiter.take()
    start = time.monotonic()
    await limiter.take()
    assert time.monotonic() - start >= 0.05


# -- has_sidecar -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pod", "expected"),
    [
        ({"spec": {"containers": [{"name": "app"}, {"name": "daprd"}]}}, True),
        ({"spec": {"containers": [{"name": "daprd"}]}}, True),
        ({"spec": {"containers": [{"name": "app"}]}}, False),
        ({"spec": {"containers": [{"name": "daprd-extra"}, {"name": "Daprd"}]}}, False),
        ({"spec": {"containers": []}}, False),
        ({"spec": {"containers": None}}, False),
        ({"spec": {"containers": ["daprd", None, 3]}}, False),
        ({"spec": {"initContainers": [{"name": "daprd"}]}}, False),
        ({"spec": None}, False),
        ({}, False),
    ],
)
def test_has_sidecar(pod: dict[str, Any], expected: bool) -> None:
    assert has_sidecar(pod) is expected


# -- one pass --------------------------------------------------------------------------------------

DEPLOYMENTS = "/apis/apps/v1/deployments"
PODS = "/api/v1/pods"


def injector(ready: int | None) -> dict[str, Any]:
    status = {} if ready is None else {"readyReplicas": ready}
    return {"metadata": {"name": "dapr-sidecar-injector"}, "status": status}


def dapr_pod(name: str, *, enabled: str | None = "true", sidecar: bool = False) -> dict[str, Any]:
    annotations: dict[str, str] = {} if enabled is None else {"dapr.io/enabled": enabled}
    containers = [{"name": "app"}] + ([{"name": "daprd"}] if sidecar else [])
    return {
        "metadata": {"name": name, "namespace": "shop", "annotations": annotations},
        "spec": {"containers": containers},
    }


class FakeApi:
    """The API server calls of a watchdog pass, answered from lists; writes are recorded."""

    def __init__(
        self,
        injectors: list[dict[str, Any]],
        pods: list[list[dict[str, Any]]],
        delete_errors: dict[str, KubeApiError] | None = None,
    ) -> None:
        self.injectors = injectors
        self.pod_pages = pods
        self.delete_errors = delete_errors or {}
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    async def __call__(self, api: Any, method: str, path: str, **kwargs: Any) -> Any:
        self.calls.append((method, path, kwargs))
        if method == "GET" and path.endswith("/deployments"):
            assert kwargs["query"]["labelSelector"] == INJECTOR_SELECTOR
            return {"items": self.injectors, "metadata": {}}
        if method == "GET" and path.endswith("/pods"):
            assert kwargs["query"]["labelSelector"] == POD_SELECTOR
            page = int(kwargs["query"].get("continue") or 0)
            following = str(page + 1) if page + 1 < len(self.pod_pages) else ""
            return {"items": self.pod_pages[page], "metadata": {"continue": following}}
        if method == "DELETE":
            name = path.rsplit("/", 1)[1]
            if name in self.delete_errors:
                raise self.delete_errors[name]
            return {}
        if method == "PATCH":
            return {}
        raise AssertionError(f"unexpected call {method} {path}")

    def writes(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path, _ in self.calls if method != "GET"]


def make_watchdog(
    monkeypatch: pytest.MonkeyPatch,
    api: FakeApi,
    *,
    can_patch: bool = False,
    per_minute: int = 0,
    interval: float = 0.0,
    namespace: str = "",
) -> Watchdog:
    monkeypatch.setattr(watchdog, "request", api)
    monkeypatch.setattr(kube_client, "request", api)  # list_items pages through it
    return Watchdog(
        object(),
        interval=interval,
        max_restarts_per_minute=per_minute,
        can_patch_labels=can_patch,
        watch_namespace=namespace,
        log=logging.getLogger("test.watchdog"),
    )


@pytest.mark.parametrize(
    ("injectors", "message"),
    [
        ([], "the sidecar injector deployment was not found"),
        ([injector(0)], "the sidecar injector has no ready replica"),
        ([injector(None)], "the sidecar injector has no ready replica"),
    ],
)
async def test_a_pass_needs_a_ready_injector(
    monkeypatch: pytest.MonkeyPatch, injectors: list[dict[str, Any]], message: str
) -> None:
    api = FakeApi(injectors, [[dapr_pod("web-1")]])
    with pytest.raises(WatchdogError, match=message):
        await make_watchdog(monkeypatch, api).one_pass()
    assert api.writes() == []


async def test_pods_without_their_sidecar_are_deleted(monkeypatch: pytest.MonkeyPatch) -> None:
    pods = [
        dapr_pod("no-sidecar"),
        dapr_pod("has-sidecar", sidecar=True),
        dapr_pod("not-dapr", enabled=None),
        dapr_pod("dapr-off", enabled="false"),
        dapr_pod("yes-sidecarless", enabled="Yes"),
    ]
    api = FakeApi([injector(0), injector(2)], [pods])
    deleted = await make_watchdog(monkeypatch, api).one_pass()
    assert deleted == 2
    assert api.writes() == [
        ("DELETE", "/api/v1/namespaces/shop/pods/no-sidecar"),
        ("DELETE", "/api/v1/namespaces/shop/pods/yes-sidecarless"),
    ]


async def test_pods_with_their_sidecar_are_labelled_when_allowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    api = FakeApi([injector(1)], [[dapr_pod("has-sidecar", sidecar=True)]])
    assert await make_watchdog(monkeypatch, api, can_patch=True).one_pass() == 0
    [(method, path, kwargs)] = [call for call in api.calls if call[0] != "GET"]
    assert (method, path) == ("PATCH", "/api/v1/namespaces/shop/pods/has-sidecar")
    assert kwargs["body"] == PATCHED
    assert kwargs["content_type"] == "application/merge-patch+json"


async def test_failed_deletions_are_not_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    errors = {
        "gone": KubeApiError(404, 'pods "gone" not found'),
        "forbidden": KubeApiError(403, "forbidden"),
    }
    pods = [dapr_pod("gone"), dapr_pod("forbidden"), dapr_pod("fine")]
    api = FakeApi([injector(1)], [pods], delete_errors=errors)
    assert await make_watchdog(monkeypatch, api).one_pass() == 1


async def test_every_page_of_pods_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [[dapr_pod("p1")], [dapr_pod("p2")], [dapr_pod("p3")]]
    api = FakeApi([injector(1)], pages)
    assert await make_watchdog(monkeypatch, api).one_pass() == 3


async def test_a_watched_namespace_narrows_the_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    api = FakeApi([injector(1)], [[]])
    await make_watchdog(monkeypatch, api, namespace="shop").one_pass()
    assert [path for _, path, _ in api.calls] == [
        "/apis/apps/v1/namespaces/shop/deployments",
        "/api/v1/namespaces/shop/pods",
    ]


async def test_deletions_are_rate_limited(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    api = FakeApi([injector(1)], [[dapr_pod(f"p{i}") for i in range(5)]])
    assert await make_watchdog(monkeypatch, api, per_minute=2).one_pass() == 5
    # Two at once, then one every 30 s: the limiter is taken after each deletion.
    assert sum(clock.sleeps) == pytest.approx(90.0)


async def test_the_first_pass_is_retried_until_it_succeeds(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    api = FakeApi([], [[dapr_pod("p1")]])
    dog = make_watchdog(monkeypatch, api, interval=0.0)
    attempts = 0
    real_pass = dog.one_pass

    async def flaky_pass() -> int:
        nonlocal attempts
        attempts += 1
        if attempts == 3:
            api.injectors = [injector(1)]
        return await real_pass()

    monkeypatch.setattr(dog, "one_pass", flaky_pass)
    await dog.run()  # an interval of 0 ("once") returns after the first successful pass
    assert attempts == 3
    assert clock.sleeps == [FIRST_PASS_RETRY, FIRST_PASS_RETRY]
    assert api.writes() == [("DELETE", "/api/v1/namespaces/shop/pods/p1")]
