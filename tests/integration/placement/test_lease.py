"""Kubernetes mode: the peers elect a leader on a coordination.k8s.io Lease of the real API server.

Every peer runs as ``daprplane-placement --mode kubernetes`` with the credentials of a
ServiceAccount bound only to the Role a chart has to add for placement (leases get/update on the
one Lease, create), so these tests also check that those rules are enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import time
from collections.abc import Iterator
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import grpc
import pytest
from kubernetes import client

from daprplane.core.runtime import FatalError
from daprplane.plugins.placement.leadership import RaftLeadership
from daprplane.plugins.placement.lease import LEASE_NAME, LeaseLeadership, LeaseTimings
from daprplane.plugins.placement.options import PlacementOptions
from daprplane.plugins.placement.service import _leadership
from tests.integration.placement.server_fixture import PlacementProcess, channel, run_placement
from tests.integration.placement.sidecars import Sidecar
from tests.k8s.cluster import KubeCluster

FAST = {
    "DAPRPLANE_PLACEMENT_LEASE_DURATION": "3s",
    "DAPRPLANE_PLACEMENT_LEASE_RENEW_DEADLINE": "2s",
    "DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD": "500ms",
}
ACCOUNT = "dapr-placement"


def placement_rbac(api: Any, namespace: str, *, bind: bool = True) -> None:
    """The Role a chart needs for placement's Lease, bound to the ``dapr-placement`` account."""
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(
        namespace,
        client.V1Role(
            metadata=client.V1ObjectMeta(name=ACCOUNT),
            rules=[
                client.V1PolicyRule(
                    api_groups=["coordination.k8s.io"],
                    resources=["leases"],
                    verbs=["get", "update"],
                    resource_names=[LEASE_NAME],
                ),
                client.V1PolicyRule(
                    api_groups=["coordination.k8s.io"], resources=["leases"], verbs=["create"]
                ),
            ],
        ),
    )
    if bind:
        bind_role(api, namespace)


def bind_role(api: Any, namespace: str) -> None:
    client.RbacAuthorizationV1Api(api).create_namespaced_role_binding(
        namespace,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=ACCOUNT),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=ACCOUNT
            ),
            subjects=[
                client.RbacV1Subject(kind="ServiceAccount", name=ACCOUNT, namespace=namespace)
            ],
        ),
    )


@pytest.fixture
def placement_kubeconfig(kube_cluster: KubeCluster, kube_namespace: str, kube_api: Any) -> str:
    placement_rbac(kube_api, kube_namespace)
    token = kube_cluster.service_account_token(kube_namespace, ACCOUNT)
    return str(kube_cluster.token_kubeconfig(token, ACCOUNT))


@contextlib.contextmanager
def peers(
    size: int,
    namespace: str,
    kubeconfig: str,
    lease: dict[str, str],
    *extra: str,
    started: int | None = None,
) -> Iterator[list[PlacementProcess]]:
    """``size`` peers in --initial-cluster, the first ``started`` (default all) of them running.

    A single-peer cluster leads at once without a Lease, so Lease tests list at least two."""
    # Kubernetes mode never listens on these raft addresses; they only name the peers.
    members = ",".join(f"p{i}=127.0.0.1:{50000 + i}" for i in range(size))
    env = {
        "NAMESPACE": namespace,
        "KUBECONFIG": kubeconfig,
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
        **lease,
    }
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                run_placement(
                    f"--id=p{i}",
                    f"--initial-cluster={members}",
                    "--mode=kubernetes",
                    *extra,
                    env=env,
                )
            )
            for i in range(size if started is None else started)
        ]


def node_id(process: PlacementProcess) -> str:
    return next(str(a).split("=", 1)[1] for a in process.process.args if str(a).startswith("--id="))  # type: ignore[union-attr]


def is_leader(process: PlacementProcess) -> bool:
    if process.process.poll() is not None:
        return False
    match = re.search(r"^dapr_placement_leader_status (\S+)$", process.metrics(), re.MULTILINE)
    return match is not None and float(match.group(1)) == 1.0


async def leaders(processes: list[PlacementProcess]) -> list[PlacementProcess]:
    return [p for p in processes if await asyncio.to_thread(is_leader, p)]


async def one_leader(processes: list[PlacementProcess], timeout: float = 20) -> PlacementProcess:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        found = await leaders(processes)
        if len(found) == 1:
            return found[0]
        assert len(found) < 2, f"two leaders: {[node_id(p) for p in found]}"
        await asyncio.sleep(0.1)
    raise AssertionError("no single leader in time")


def lease_holder(api: Any, namespace: str) -> str:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE_NAME, namespace)
    return (lease.spec.holder_identity if lease.spec else None) or ""


async def refused_by(address: str) -> grpc.aio.AioRpcError:
    async with channel(address) as ch:
        # Read without writing: a write racing the refusal can turn the status into INTERNAL.
        call = ch.stream_stream("/dapr.proto.placement.v1.Placement/ReportDaprStatus")()
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await call.read()
        return caught.value


class Daprd:
    """A sidecar that, like daprd, goes round the placement addresses until one serves it."""

    def __init__(self, name: str, entities: list[str]) -> None:
        self.name = name
        self.entities = entities
        self.sidecar: Sidecar | None = None
        self.address = ""
        self._channel: grpc.aio.Channel | None = None

    async def connect(self, addresses: list[str], timeout: float = 20) -> Sidecar:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for address in addresses:
                await self.aclose()
                self._channel = channel(address)
                sidecar = await Sidecar(self._channel, self.name, entities=self.entities).connect()
                with contextlib.suppress(TimeoutError):
                    await sidecar.wait_for(lambda s: s.orders or s.ended is not None, 3)
                if sidecar.orders and sidecar.ended is None:
                    self.sidecar, self.address = sidecar, address
                    return sidecar
                await sidecar.aclose()
                if loop.time() > deadline:
                    raise AssertionError(f"{self.name} found no leader in {addresses}")
                await asyncio.sleep(0.1)

    async def aclose(self) -> None:
        if self.sidecar is not None:
            await self.sidecar.aclose()
            self.sidecar = None
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


async def converged(sidecars: list[Sidecar], expected: dict[str, list[str]]) -> None:
    for sidecar in sidecars:
        await sidecar.wait_for(
            lambda s: s.load_map() == expected and s.operations()[-1][0] == "unlock", 15
        )


async def failover(
    signum: int, kube_api: Any, namespace: str, kubeconfig: str, lease: dict[str, str]
) -> float:
    """Three peers, two sidecars on the leader; ``signum`` to the leader; returns failover time."""
    with peers(3, namespace, kubeconfig, lease) as processes:
        leader = await one_leader(processes)
        followers = [p for p in processes if p is not leader]
        assert await asyncio.to_thread(lease_holder, kube_api, namespace) == node_id(leader)
        for follower in followers:
            refused = await refused_by(follower.address)
            assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION
            assert refused.details() == (
                f"node id={node_id(follower)} is not a leader. Only the leader can serve requests"
            )
            assert follower.get("/healthz")[0] == 200

        addresses = [p.address for p in processes]
        daprds = [Daprd("10.0.0.1:50002", ["T"]), Daprd("10.0.0.2:50002", ["T", "U"])]
        try:
            before = [await d.connect(addresses) for d in daprds]
            assert all(d.address == leader.address for d in daprds)
            expected = {"T": ["10.0.0.1:50002", "10.0.0.2:50002"], "U": ["10.0.0.2:50002"]}
            await converged(before, expected)

            started = time.monotonic()
            leader.process.send_signal(signum)
            for sidecar in before:
                await sidecar.wait_ended(10)
            after = [await d.connect([p.address for p in followers], 20) for d in daprds]
            elapsed = time.monotonic() - started
            await asyncio.to_thread(leader.process.wait, 15)
            successor = await one_leader(followers, 5)
            assert all(d.address == successor.address for d in daprds)
            await converged(after, expected)
            # The new leader rebuilt the table from the re-reports: versions start again at 1.
            assert min(s.orders[0].version for s in after) == 1
            assert await asyncio.to_thread(lease_holder, kube_api, namespace) == node_id(successor)
            assert len(await leaders(followers)) == 1
            return elapsed
        finally:
            for d in daprds:
                await d.aclose()


@pytest.mark.k8s
async def test_sigkill_leader_fails_over_after_the_lease_expires(
    kube_api: Any, kube_namespace: str, placement_kubeconfig: str
) -> None:
    elapsed = await failover(signal.SIGKILL, kube_api, kube_namespace, placement_kubeconfig, FAST)
    # A killed leader never releases: its Lease must expire (3s) first.
    print(f"SIGKILL failover (3s lease): {elapsed:.2f}s")
    assert 2.0 < elapsed < 15, elapsed


@pytest.mark.k8s
async def test_sigterm_leader_releases_the_lease_for_a_fast_failover(
    kube_api: Any, kube_namespace: str, placement_kubeconfig: str
) -> None:
    # Same as above but with a 15s Lease, so a failover in well under 15s shows the release.
    slow = {
        "DAPRPLANE_PLACEMENT_LEASE_DURATION": "15s",
        "DAPRPLANE_PLACEMENT_LEASE_RENEW_DEADLINE": "10s",
        "DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD": "500ms",
    }
    with peers(2, kube_namespace, placement_kubeconfig, slow, started=1) as (only,):
        await one_leader([only])
        code, out = only.stop()
        assert code == 0, out
    # A stopped leader leaves the Lease without a holder.
    assert await asyncio.to_thread(lease_holder, kube_api, kube_namespace) == "", out
    elapsed = await failover(signal.SIGTERM, kube_api, kube_namespace, placement_kubeconfig, slow)
    print(f"SIGTERM failover (15s lease): {elapsed:.2f}s")
    assert elapsed < 8, elapsed


@pytest.mark.k8s
async def test_leader_that_cannot_renew_steps_down_and_leads_again(
    kube_api: Any, kube_namespace: str, placement_kubeconfig: str
) -> None:
    with peers(2, kube_namespace, placement_kubeconfig, FAST, started=1) as (only,):
        await one_leader([only])
        async with channel(only.address) as ch:
            a = await Sidecar(ch, "a", entities=["T"]).connect()
            await a.wait_unlocked(1)
            # Renewals now fail with Forbidden; within the 2s renew deadline the node steps down.
            rbac = client.RbacAuthorizationV1Api(kube_api)
            await asyncio.to_thread(rbac.delete_namespaced_role_binding, ACCOUNT, kube_namespace)
            ended = await a.wait_ended(timeout=10)
            assert ended.code is grpc.StatusCode.UNAVAILABLE
            assert ended.details == "node id=p0 lost leadership"
            await a.aclose()
        assert only.process.poll() is None
        assert not await asyncio.to_thread(is_leader, only)
        refused = await refused_by(only.address)
        assert refused.code() is grpc.StatusCode.FAILED_PRECONDITION

        # Still its own name on the Lease: once allowed again it leads at once.
        await asyncio.to_thread(bind_role, kube_api, kube_namespace)
        await one_leader([only], 10)
        code, out = only.stop()
    assert code == 0
    assert "Failed to renew lease" in out or "Failed to renew lease" in only.process.stderr.read()  # type: ignore[union-attr]


@pytest.mark.k8s
async def test_lease_written_by_another_holder_demotes_the_leader(
    kube_cluster: KubeCluster, kube_api: Any, kube_namespace: str
) -> None:
    """In process: an outside write naming another holder ends leadership at the next renewal."""
    placement_rbac(kube_api, kube_namespace, bind=False)
    timings = LeaseTimings(lease_duration=3, renew_deadline=2, retry_period=0.2)
    a = LeaseLeadership(
        "a", kube_namespace, timings=timings, api_factory=kube_cluster.aio_api_client
    )
    b = LeaseLeadership(
        "b", kube_namespace, timings=timings, api_factory=kube_cluster.aio_api_client
    )
    lost: list[str] = []
    a.on_lost(lambda: lost.append("a"))
    b.on_lost(lambda: lost.append("b"))
    try:
        await a.start()
        await asyncio.wait_for(a.wait_for_leadership(), 5)
        await b.start()
        await asyncio.sleep(1)
        assert a.is_leader and not b.is_leader

        coordination = client.CoordinationV1Api(kube_api)
        lease = await asyncio.to_thread(
            coordination.read_namespaced_lease, LEASE_NAME, kube_namespace
        )
        assert lease.spec is not None
        lease.spec.holder_identity = "someone-else"
        await asyncio.to_thread(
            coordination.replace_namespaced_lease, LEASE_NAME, kube_namespace, lease
        )
        await asyncio.wait_for(a.wait_for_loss(), 2)
        assert lost == ["a"]
        # Nobody renews it: a peer takes it once it has looked unchanged for a lease duration.
        began = time.monotonic()
        while not (a.is_leader or b.is_leader):
            assert time.monotonic() - began < 8, "nobody took the abandoned Lease"
            await asyncio.sleep(0.05)
        assert time.monotonic() - began > 2
        winner, other = (a, b) if a.is_leader else (b, a)
        assert not other.is_leader
        assert await asyncio.to_thread(lease_holder, kube_api, kube_namespace) == winner.identity

        await winner.aclose()  # releases
        assert await asyncio.to_thread(lease_holder, kube_api, kube_namespace) in (
            "",
            other.identity,
        )
        await asyncio.wait_for(other.wait_for_leadership(), 3)
    finally:
        await a.aclose()
        await b.aclose()


def test_timings_from_environment() -> None:
    assert LeaseTimings.from_environ({}) == LeaseTimings(15, 10, 2)
    assert LeaseTimings.from_environ(
        {
            "DAPRPLANE_PLACEMENT_LEASE_DURATION": "3s",
            "DAPRPLANE_PLACEMENT_LEASE_RENEW_DEADLINE": "2",
            "DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD": "500ms",
        }
    ) == LeaseTimings(3, 2, 0.5)
    with pytest.raises(ValueError, match="greater than the renew deadline"):
        LeaseTimings.from_environ({"DAPRPLANE_PLACEMENT_LEASE_DURATION": "5s"})
    with pytest.raises(ValueError, match="DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD"):
        LeaseTimings.from_environ({"DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD": "soon"})


def _options(mode: str, peers: int, tls: bool) -> PlacementOptions:
    flags = SimpleNamespace(
        id="p0",
        initial_cluster=[f"p{i}=127.0.0.1:{8201 + i}" for i in range(peers)],
        port=50005,
        listen_address="",
        tls_enabled=tls,
        metadata_enabled=False,
        replication_factor=100,
        keepalive_time=timedelta(seconds=2),
        keepalive_timeout=timedelta(seconds=3),
        disseminate_timeout=timedelta(seconds=8),
        disseminate_coalesce_window=timedelta(0),
        trust_domain="cluster.local",
        trust_anchors_file="/x",
        sentry_address="s:443",
        mode=mode,
    )
    return PlacementOptions.from_flags(flags, environ={"NAMESPACE": "dapr-system"})


def test_kubernetes_mode_elects_on_the_lease_with_several_peers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for tls in (False, True):
        # A single peer runs raft alone in either mode: it leads at once on its raft port.
        assert isinstance(_leadership(_options("kubernetes", 1, tls)), RaftLeadership)
    for peers_, tls in ((2, False), (3, True)):
        leadership = _leadership(_options("kubernetes", peers_, tls))
        assert isinstance(leadership, LeaseLeadership)
        assert (leadership.identity, leadership.namespace, leadership.name) == (
            "p0",
            "dapr-system",
            LEASE_NAME,
        )
    for peers_, tls in ((1, True), (3, False), (3, True)):
        assert isinstance(_leadership(_options("standalone", peers_, tls)), RaftLeadership)
    monkeypatch.setenv("DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD", "9s")
    with pytest.raises(FatalError, match="renew deadline must be greater"):
        _leadership(_options("kubernetes", 3, True))
