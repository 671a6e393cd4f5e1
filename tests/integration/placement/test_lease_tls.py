"""Several ``--tls-enabled`` peers in kubernetes mode (as Helm's HA install runs them) elect on the
Lease, and mTLS sidecars follow the leader through a failover."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import grpc
import pytest

from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient
from tests.integration.placement.server_fixture import PlacementProcess
from tests.integration.placement.sidecars import Sidecar
from tests.integration.placement.test_lease import (  # noqa: F401 - fixture
    FAST,
    lease_holder,
    node_id,
    one_leader,
    peers,
    placement_kubeconfig,
)
from tests.integration.sentry.conftest import SentryProcess, run_sentry

pytestmark = pytest.mark.k8s

TRUST_DOMAIN = "example.org"


def tls_peers(
    size: int, namespace: str, kubeconfig: str, sentry: SentryProcess
) -> contextlib.AbstractContextManager[list[PlacementProcess]]:
    """The Lease tests' peers, with mTLS and an identity from ``sentry``."""
    return peers(
        size,
        namespace,
        kubeconfig,
        FAST,
        "--tls-enabled",
        f"--trust-domain={TRUST_DOMAIN}",
        f"--trust-anchors-file={Path(sentry.credentials) / 'ca.crt'}",
        f"--sentry-address={sentry.address}",
    )


async def test_tls_peers_in_kubernetes_mode_elect_on_the_lease_and_fail_over(
    tmp_path: Path,
    kube_api: Any,
    kube_namespace: str,
    placement_kubeconfig: str,  # noqa: F811
) -> None:
    with run_sentry(
        tmp_path / "credentials",
        f"--trust-domain={TRUST_DOMAIN}",
        env={"NAMESPACE": kube_namespace},
    ) as sentry:
        anchors = StaticTrustAnchors.from_pem(sentry.trust_anchors)
        client = SentryClient(
            address=sentry.address,
            anchors=anchors,
            app_id="a",
            namespace="default",
            control_plane_trust_domain=TRUST_DOMAIN,
            control_plane_namespace=kube_namespace,
            environ={},
        )
        svid = SvidSource(client.sign)
        await svid.start()
        placement_id = f"spiffe://{TRUST_DOMAIN}/ns/{kube_namespace}/dapr-placement"

        @contextlib.asynccontextmanager
        async def sidecar(process: PlacementProcess):  # type: ignore[no-untyped-def]
            async with SpiffeChannel(
                process.address, anchors=anchors, authorize=allow_ids(placement_id), svid=svid
            ) as ch:
                s = await Sidecar(ch, "10.0.0.1:50002", "a", entities=["T"]).connect()
                try:
                    yield s
                finally:
                    await s.aclose()

        try:
            with tls_peers(2, kube_namespace, placement_kubeconfig, sentry) as processes:
                leader = await one_leader(processes)
                (follower,) = [p for p in processes if p is not leader]
                async with sidecar(follower) as refused:
                    ended = await refused.wait_ended()
                    assert ended.code in (
                        grpc.StatusCode.FAILED_PRECONDITION,
                        grpc.StatusCode.INTERNAL,  # the first write racing the refusal
                    )
                async with sidecar(leader) as a:
                    await a.wait_unlocked(1)
                    assert a.load_map() == {"T": ["10.0.0.1:50002"]}
                    leader.process.send_signal(signal.SIGKILL)
                    await a.wait_ended(10)
                assert await one_leader([follower], 15) is follower
                holder = await asyncio.to_thread(lease_holder, kube_api, kube_namespace)
                assert holder == node_id(follower)
                async with sidecar(follower) as again:
                    await again.wait_unlocked(1, timeout=15)
                    assert again.load_map() == {"T": ["10.0.0.1:50002"]}
        finally:
            await svid.aclose()
