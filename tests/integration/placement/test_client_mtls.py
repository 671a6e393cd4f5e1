"""PlacementClient and ``placement locate --tls`` against the real placement with
``--tls-enabled``, both sides holding SVIDs from the real sentry (insecure validator)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daprplane.core.security.anchors import StaticTrustAnchors
from daprplane.core.security.rotation import SvidSource
from daprplane.core.security.sentry_client import SentryClient
from daprplane.plugins.placement.client import MtlsCredentials, Placement, PlacementClient
from tests.integration.placement.server_fixture import run_placement
from tests.integration.sentry.conftest import run_sentry

TIMEOUT = 20


@dataclass
class ControlPlane:
    placement: str
    sentry: str
    anchors_file: Path


@pytest.fixture(scope="module")
def control_plane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ControlPlane]:
    credentials = tmp_path_factory.mktemp("sentry") / "credentials"
    with (
        run_sentry(credentials, env={"NAMESPACE": "default"}) as sentry,
        run_placement(
            "--tls-enabled",
            f"--trust-anchors-file={credentials / 'ca.crt'}",
            f"--sentry-address={sentry.address}",
            env={"NAMESPACE": "default"},
        ) as placement,
    ):
        yield ControlPlane(placement.address, sentry.address, credentials / "ca.crt")


async def mtls(plane: ControlPlane, app_id: str) -> MtlsCredentials:
    anchors = StaticTrustAnchors.from_pem(plane.anchors_file.read_bytes())
    sentry = SentryClient(
        address=plane.sentry, anchors=anchors, app_id=app_id, namespace="default", environ={}
    )
    svid = SvidSource(sentry.sign)
    await svid.start()
    return MtlsCredentials(anchors, svid)


async def test_client_over_mtls_and_locate_tls(control_plane: ControlPlane) -> None:
    client = PlacementClient(
        control_plane.placement,
        app_id="counter-app",
        namespace="default",
        host_name="10.2.0.1:50002",
        actor_types=["Counter"],
        credentials=await mtls(control_plane, "counter-app"),
    )
    async with client:
        await client.wait_ready(TIMEOUT)
        assert client.locate("Counter", "c-1") == Placement("10.2.0.1:50002", "counter-app")

        command = [
            sys.executable,
            "-c",
            "from daprplane.plugins.placement.cli import locate; locate()",
            "--address",
            control_plane.placement,
            "--type",
            "Counter",
            "--id",
            "c-1",
            "--tls",
            f"--trust-anchors-file={control_plane.anchors_file}",
            f"--sentry-address={control_plane.sentry}",
            "--json",
        ]
        process = await asyncio.create_subprocess_exec(
            *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, cwd="/"
        )
        out, err = await asyncio.wait_for(process.communicate(), 60)
        assert process.returncode == 0, err.decode()
        data = json.loads(out)
        assert (data["host"], data["app_id"]) == ("10.2.0.1:50002", "counter-app")


async def test_plaintext_client_is_refused(control_plane: ControlPlane) -> None:
    client = PlacementClient(
        control_plane.placement,
        app_id="a",
        namespace="default",
        host_name="h:1",
        retry_interval=0.05,
        retry_jitter=0.0,
    )
    async with client:
        with pytest.raises(TimeoutError):
            await client.wait_ready(1.5)
    assert client.last_error is not None and "UNAVAILABLE" in client.last_error


async def test_foreign_dapr_internal_type_is_refused(control_plane: ControlPlane) -> None:
    """The server authorizes the client's claims against its SPIFFE ID (§5)."""
    client = PlacementClient(
        control_plane.placement,
        app_id="a",
        namespace="default",
        host_name="h:1",
        actor_types=["dapr.internal.default.someone-else.workflow"],
        credentials=await mtls(control_plane, "a"),
        retry_interval=0.05,
        retry_jitter=0.0,
    )
    async with client:
        with pytest.raises(TimeoutError):
            await client.wait_ready(1.5)
    assert client.last_error is not None
    assert (
        "PERMISSION_DENIED" in client.last_error
        and "is not allowed for app ID a" in client.last_error
    )
