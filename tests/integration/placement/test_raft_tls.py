"""Several ``--tls-enabled`` placement peers in standalone mode: raft over mTLS between them, mTLS
sidecars following the leader through a failover, and a raft port that takes placement peers
only. Every process is real: ``daprplane-sentry`` issues every SVID, and each peer is a
``daprplane-placement`` launcher."""

from __future__ import annotations

import asyncio
import contextlib
import re
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator

import pytest

from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient
from daprplane.core.security.spiffe import SpiffeId
from daprplane.plugins.placement.client import MtlsCredentials, Placement, PlacementClient
from daprplane.plugins.placement.raft_tls import RaftTls
from daprplane.plugins.placement.raft_transport import PeerLink
from daprplane.plugins.placement.raft_wire import Heartbeat, HeartbeatReply
from tests.dapr import binaries
from tests.integration.launchers import free_port
from tests.integration.placement.server_fixture import PlacementProcess, run_placement
from tests.integration.sentry.conftest import SentryProcess, run_sentry

TRUST_DOMAIN = "example.org"
NAMESPACE = "dapr-system"  # the control plane's
PLACEMENT_ID = SpiffeId.for_app(TRUST_DOMAIN, NAMESPACE, "dapr-placement")
SIDECAR = "10.2.0.1:50002"


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryProcess]:
    credentials = tmp_path_factory.mktemp("sentry") / "credentials"
    with run_sentry(
        credentials, f"--trust-domain={TRUST_DOMAIN}", env={"NAMESPACE": NAMESPACE}
    ) as process:
        yield process


def tls_flags(sentry: SentryProcess) -> list[str]:
    return [
        "--tls-enabled",
        f"--trust-domain={TRUST_DOMAIN}",
        f"--trust-anchors-file={sentry.credentials / 'ca.crt'}",
        f"--sentry-address={sentry.address}",
    ]


@contextlib.contextmanager
def tls_cluster(sentry: SentryProcess, size: int) -> Iterator[list[PlacementProcess]]:
    members = ",".join(f"p{i}=127.0.0.1:{free_port()}" for i in range(size))
    with contextlib.ExitStack() as stack:
        yield [
            stack.enter_context(
                run_placement(
                    f"--id=p{i}",
                    f"--initial-cluster={members}",
                    *tls_flags(sentry),
                    env={"NAMESPACE": NAMESPACE},
                )
            )
            for i in range(size)
        ]


def is_leader(process: PlacementProcess) -> bool:
    if process.process.poll() is not None:
        return False
    match = re.search(r"^dapr_placement_leader_status (\S+)$", process.metrics(), re.MULTILINE)
    return match is not None and float(match.group(1)) == 1.0


async def one_leader(processes: list[PlacementProcess], timeout: float = 20) -> PlacementProcess:
    async with asyncio.timeout(timeout):
        while True:
            leaders = [p for p in processes if await asyncio.to_thread(is_leader, p)]
            if len(leaders) == 1:
                return leaders[0]
            await asyncio.sleep(0.2)


@contextlib.asynccontextmanager
async def svid_for(
    sentry: SentryProcess, app_id: str, namespace: str
) -> AsyncIterator[tuple[StaticTrustAnchors, SvidSource]]:
    anchors = StaticTrustAnchors.from_pem(sentry.trust_anchors)
    client = SentryClient(
        address=sentry.address,
        anchors=anchors,
        app_id=app_id,
        namespace=namespace,
        control_plane_trust_domain=TRUST_DOMAIN,
        control_plane_namespace=NAMESPACE,
        environ={},
    )
    svid = SvidSource(client.sign)
    await svid.start()
    try:
        yield anchors, svid
    finally:
        await svid.aclose()


def sidecar_client(
    addresses: list[str], anchors: StaticTrustAnchors, svid: SvidSource
) -> PlacementClient:
    return PlacementClient(
        addresses,
        app_id="counter-app",
        namespace="default",
        host_name=SIDECAR,
        actor_types=["Counter"],
        credentials=MtlsCredentials(
            anchors, svid, trust_domain=TRUST_DOMAIN, control_plane_namespace=NAMESPACE
        ),
        retry_interval=0.2,
        retry_jitter=0.1,
    )


async def test_tls_peers_elect_a_leader_and_a_sidecar_follows_it_through_a_failover(
    sentry: SentryProcess,
) -> None:
    async with svid_for(sentry, "counter-app", "default") as (anchors, svid):
        with tls_cluster(sentry, 3) as processes:
            leader = await one_leader(processes)
            followers = [p for p in processes if p is not leader]

            # A follower refuses the mTLS stream as without TLS: not the leader.
            async with sidecar_client([followers[0].address], anchors, svid) as refused:
                with pytest.raises(TimeoutError):
                    await refused.wait_ready(2)
            assert refused.last_error is not None
            assert "FAILED_PRECONDITION" in refused.last_error
            assert "is not a leader. Only the leader can serve requests" in refused.last_error

            # Followers listed first: the client moves on until the leader takes it.
            addresses = [p.address for p in (*followers, leader)]
            async with sidecar_client(addresses, anchors, svid) as client:
                await client.wait_ready(20)
                assert client.address == leader.address
                assert client.locate("Counter", "c-1") == Placement(SIDECAR, "counter-app")

                leader.process.send_signal(signal.SIGKILL)
                successor = await one_leader(followers)
                async with asyncio.timeout(20):
                    while not (client.ready and client.address == successor.address):
                        await asyncio.sleep(0.1)
                assert client.connections >= 2
                assert client.locate("Counter", "c-1") == Placement(SIDECAR, "counter-app")
                assert client.version == 1  # the new leader rebuilt its table from scratch


# -- who the raft port talks to ------------------------------------------------------------


async def _raft_handshake(port: int, anchors: StaticTrustAnchors, svid: SvidSource) -> str | None:
    """None when an mTLS connection to a placement peer is made and kept; else why not."""
    tls = RaftTls(lambda: svid.current, lambda: anchors.current, PLACEMENT_ID)
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=tls.client_context(), server_hostname=""
        )
    except OSError as error:
        return str(error)
    try:
        tls.check_peer(writer)
        # A server that rejects the client's certificate after the handshake closes now.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(1):
                if not await reader.read(1):
                    return "closed by the server"
        return None
    except OSError as error:
        return str(error)
    finally:
        writer.transport.abort()


async def test_the_raft_port_speaks_mtls_to_placement_peers_only(sentry: SentryProcess) -> None:
    raft = free_port()
    with run_placement(
        "--id=solo",
        f"--initial-cluster=solo=127.0.0.1:{raft}",
        *tls_flags(sentry),
        env={"NAMESPACE": NAMESPACE},
    ):
        async with svid_for(sentry, "dapr-placement", NAMESPACE) as (anchors, peer_svid):
            assert await _raft_handshake(raft, anchors, peer_svid) is None
            # A placement identity gets raft answers (a single peer leads and follows nobody).
            link = PeerLink(
                "stranger",
                f"127.0.0.1:{raft}",
                tls=RaftTls(lambda: peer_svid.current, lambda: anchors.current, PLACEMENT_ID),
            )
            try:
                assert await link.call(Heartbeat(5, "p9"), 5) == HeartbeatReply(1, False)
            finally:
                await link.aclose()

        # A sidecar's SVID verifies to the same anchors, but is not a placement peer's.
        async with svid_for(sentry, "counter-app", "default") as (anchors, sidecar_svid):
            assert await _raft_handshake(raft, anchors, sidecar_svid) is not None

        # Plain TCP gets no raft answer from a TLS port.
        plain = PeerLink("stranger", f"127.0.0.1:{raft}")
        try:
            assert await plain.call(Heartbeat(5, "p9"), 5) is None
        finally:
            await plain.aclose()


@pytest.mark.interop
async def test_dapr_runs_raft_over_mtls_for_placement_peers_only_too(
    sentry: SentryProcess,
) -> None:
    """Dapr's placement, on the same sentry: its raft port admits and refuses the same SVIDs."""
    placement = binaries.binary("placement")
    raft = free_port()
    process = subprocess.Popen(
        [
            str(placement),
            "--id=solo",
            f"--initial-cluster=solo=127.0.0.1:{raft}",
            *tls_flags(sentry),
            f"--port={free_port()}",
            f"--healthz-port={free_port()}",
            f"--metrics-port={free_port()}",
        ],
        env={"NAMESPACE": NAMESPACE},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd="/",
    )
    try:
        async with svid_for(sentry, "dapr-placement", NAMESPACE) as (anchors, peer_svid):
            async with asyncio.timeout(30):
                while await _raft_handshake(raft, anchors, peer_svid) is not None:
                    assert process.poll() is None, f"Dapr's placement exited {process.returncode}"
                    await asyncio.sleep(0.2)
        async with svid_for(sentry, "counter-app", "default") as (anchors, sidecar_svid):
            assert await _raft_handshake(raft, anchors, sidecar_svid) is not None
    finally:
        process.kill()
        process.wait(timeout=10)
