"""The core Lease election on the real API server, with a Lease name no component uses.

Several elections share one ``kubernetes.aio`` client they did not create, as the operator's
does: they elect exactly one leader, a leader that leaves clears ``holderIdentity`` so a
follower takes over at its next retry, and leaving never closes the shared client.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from daprplane.core.kube.client import new_api_client, path_of, request
from daprplane.core.kube.lease import LeaseLeadership, LeaseTimings
from tests.k8s.cluster import KubeCluster

pytestmark = pytest.mark.k8s

NAME = "generic.daprplane.test"
#: A lease duration well above the retry period: a takeover much faster than it shows a release.
TIMINGS = LeaseTimings(lease_duration=4.0, renew_deadline=3.0, retry_period=0.3)


@pytest.fixture
async def shared_api(kube_cluster: KubeCluster) -> AsyncIterator[Any]:
    """The admin client, opened and closed by the test as a component would."""
    api = new_api_client(str(kube_cluster.kubeconfig), environ={})
    try:
        yield api
    finally:
        await api.close()


def leases_path(namespace: str, *name: str) -> str:
    return path_of("apis", "coordination.k8s.io", "v1", "namespaces", namespace, "leases", *name)


async def read_lease(api: Any, namespace: str) -> dict[str, Any]:
    lease: dict[str, Any] = await request(api, "GET", leases_path(namespace, NAME))
    return lease


def election(identity: str, namespace: str, api: Any) -> LeaseLeadership:
    return LeaseLeadership(
        identity, namespace, name=NAME, timings=TIMINGS, api_factory=lambda: api, owns_api=False
    )


@contextlib.asynccontextmanager
async def closing(*elections: LeaseLeadership) -> AsyncIterator[None]:
    try:
        yield
    finally:
        for each in elections:
            await each.aclose()


async def seconds_until(predicate: Any, timeout: float) -> float:
    loop = asyncio.get_running_loop()
    began = loop.time()
    while not predicate():
        assert loop.time() - began < timeout, "condition not reached in time"
        await asyncio.sleep(0.02)
    return loop.time() - began


async def test_two_elections_one_leader_and_a_fast_hand_over(
    kube_namespace: str, shared_api: Any
) -> None:
    a, b = election("a", kube_namespace, shared_api), election("b", kube_namespace, shared_api)
    lost: list[str] = []
    a.on_lost(lambda: lost.append("a"))
    b.on_lost(lambda: lost.append("b"))
    async with closing(a, b):
        await asyncio.gather(a.start(), b.start())
        await seconds_until(lambda: a.is_leader or b.is_leader, 10)
        # Over several retry periods, exactly one leads and it stays the same one.
        first = a if a.is_leader else b
        for _ in range(15):
            assert [e.identity for e in (a, b) if e.is_leader] == [first.identity]
            await asyncio.sleep(0.1)
        other = b if first is a else a

        lease = await read_lease(shared_api, kube_namespace)
        assert lease["spec"]["holderIdentity"] == first.identity
        assert lease["spec"]["leaseDurationSeconds"] == 4
        listed = await request(shared_api, "GET", leases_path(kube_namespace))
        assert [item["metadata"]["name"] for item in listed["items"]] == [NAME]

        await first.aclose()
        assert lost == [first.identity] and not first.is_leader
        # Released, so the follower need not wait out the 4s lease duration.
        assert (await read_lease(shared_api, kube_namespace))["spec"]["holderIdentity"] in (
            "",
            other.identity,
        )
        took = await seconds_until(lambda: other.is_leader, TIMINGS.lease_duration + 5)
        print(f"hand-over after release: {took:.2f}s")
        assert took < 2.0, took
        lease = await read_lease(shared_api, kube_namespace)
        assert lease["spec"]["holderIdentity"] == other.identity
        assert lease["spec"]["leaseTransitions"] == 1

        await other.aclose()
        assert lost == [first.identity, other.identity]
        # Neither election created the client, so it still works after both left.
        lease = await read_lease(shared_api, kube_namespace)
        assert lease["spec"]["holderIdentity"] == ""


async def test_leaving_leader_clears_the_holder(kube_namespace: str, shared_api: Any) -> None:
    only = election("only", kube_namespace, shared_api)
    async with closing(only):
        await only.start()
        await asyncio.wait_for(only.wait_for_leadership(), 10)
        assert (await read_lease(shared_api, kube_namespace))["spec"]["holderIdentity"] == "only"
        await only.aclose()
        assert not only.is_leader
        spec = (await read_lease(shared_api, kube_namespace))["spec"]
        assert spec["holderIdentity"] == ""
        assert spec["leaseDurationSeconds"] == 1


async def test_a_client_the_election_created_is_closed_by_it(
    kube_cluster: KubeCluster, kube_namespace: str, shared_api: Any
) -> None:
    created: list[Any] = []

    def factory() -> Any:
        created.append(new_api_client(str(kube_cluster.kubeconfig), environ={}))
        return created[-1]

    owner = LeaseLeadership(
        "owner", kube_namespace, name=NAME, timings=TIMINGS, api_factory=factory
    )
    async with closing(owner):
        await owner.start()
        await asyncio.wait_for(owner.wait_for_leadership(), 10)
        (api,) = created
        await owner.aclose()
    # Released first, through the client it then closed.
    assert (await read_lease(shared_api, kube_namespace))["spec"]["holderIdentity"] == ""
    with pytest.raises(RuntimeError, match="Session is closed"):
        await read_lease(api, kube_namespace)
