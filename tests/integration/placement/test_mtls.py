"""``--tls-enabled`` against a real sentry: placement's SVID from Sentry, sidecars with theirs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import grpc
import pytest

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.authz import allow_ids
from daprplane.core.security.dialer import SpiffeChannel
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient
from tests.integration.placement.server_fixture import PlacementProcess, run_placement
from tests.integration.placement.sidecars import Sidecar
from tests.integration.sentry.conftest import SentryProcess, run_sentry

TRUST_DOMAIN = "example.org"
CONTROL_PLANE_NS = "dapr-system"
PLACEMENT_ID = f"spiffe://{TRUST_DOMAIN}/ns/{CONTROL_PLANE_NS}/dapr-placement"


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentryProcess]:
    with run_sentry(
        tmp_path_factory.mktemp("sentry") / "credentials",
        f"--trust-domain={TRUST_DOMAIN}",
        env={"NAMESPACE": CONTROL_PLANE_NS},
    ) as process:
        yield process


@pytest.fixture(scope="module")
def placement(sentry: SentryProcess) -> Iterator[PlacementProcess]:
    with run_placement(
        "--tls-enabled",
        f"--trust-domain={TRUST_DOMAIN}",
        f"--trust-anchors-file={Path(sentry.credentials) / 'ca.crt'}",
        f"--sentry-address={sentry.address}",
        env={"NAMESPACE": CONTROL_PLANE_NS},
    ) as process:
        yield process


async def _svid(sentry: SentryProcess, app_id: str, namespace: str) -> SvidSource:
    client = SentryClient(
        address=sentry.address,
        anchors=StaticTrustAnchors.from_pem(sentry.trust_anchors),
        app_id=app_id,
        namespace=namespace,
        control_plane_trust_domain=TRUST_DOMAIN,
        control_plane_namespace=CONTROL_PLANE_NS,
        environ={},
    )
    source = SvidSource(client.sign)
    await source.start()
    return source


@pytest.fixture
async def app_a_channel(
    sentry: SentryProcess, placement: PlacementProcess
) -> AsyncIterator[grpc.aio.Channel]:
    svid = await _svid(sentry, "a", "default")
    async with SpiffeChannel(
        placement.address,
        anchors=StaticTrustAnchors.from_pem(sentry.trust_anchors),
        authorize=allow_ids(PLACEMENT_ID),  # what daprd checks of placement
        svid=svid,
    ) as ch:
        yield ch
    await svid.aclose()


async def test_sidecar_with_its_own_app_id_is_served(app_a_channel: grpc.aio.Channel) -> None:
    a = await Sidecar(app_a_channel, "10.0.0.1:50002", "a", entities=["T"]).connect()
    await a.wait_for(lambda s: s.operations()[-1:] and s.operations()[-1][0] == "unlock")
    assert a.load_map() == {"T": ["10.0.0.1:50002"]}
    await a.close()
    await a.aclose()


async def test_another_app_id_or_namespace_is_denied(app_a_channel: grpc.aio.Channel) -> None:
    b = await Sidecar(app_a_channel, "10.0.0.1:50002", "b", entities=["T"]).connect()
    ended = await b.wait_ended()
    assert (ended.code, ended.details) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "provided app ID b doesn't match the one in the SPIFFE ID (a)",
    )
    other = await Sidecar(app_a_channel, "n", "a", namespace="prod").connect()
    ended = await other.wait_ended()
    assert (ended.code, ended.details) == (
        grpc.StatusCode.PERMISSION_DENIED,
        "provided client namespace prod doesn't match the one in the SPIFFE ID (default)",
    )


async def test_later_message_with_a_foreign_app_id_is_denied(
    app_a_channel: grpc.aio.Channel,
) -> None:
    a = await Sidecar(app_a_channel, "10.0.0.9:50002", "a").connect()
    await a.wait_order("unlock", a.orders[0].version if a.orders else 0)
    await a.send(
        placement_pb2.Host(name="x", id="b", namespace="default", operation=placement_pb2.REPORT)
    )
    ended = await a.wait_ended()
    assert ended.code is grpc.StatusCode.PERMISSION_DENIED
    await a.aclose()


async def test_client_without_certificate_is_refused(
    sentry: SentryProcess, placement: PlacementProcess
) -> None:
    async with SpiffeChannel(
        placement.address,
        anchors=StaticTrustAnchors.from_pem(sentry.trust_anchors),
        authorize=allow_ids(PLACEMENT_ID),
    ) as ch:
        s = await Sidecar(ch, "n", "a").connect()
        ended = await s.wait_ended()
        assert ended.code is grpc.StatusCode.UNAVAILABLE
        await s.aclose()


def test_healthy_only_with_an_svid(placement: PlacementProcess) -> None:
    assert placement.get("/healthz")[0] == 200
