"""PlacementClient and ``placement locate`` against the real ``daprplane-placement`` process."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from daprplane.plugins.placement.client import Placement, PlacementClient
from daprplane.ring import implementation
from tests.integration.launchers import free_port
from tests.integration.placement.server_fixture import run_placement

BIN = Path(sys.executable).parent
TIMEOUT = 20


@pytest.fixture(scope="module")
def placement() -> Iterator[str]:
    with run_placement("--disseminate-timeout=3s") as process:
        yield process.address


def sidecar(
    address: str | list[str], index: int, types: list[str], namespace: str, ring: str = "auto"
) -> PlacementClient:
    return PlacementClient(
        address,
        app_id=f"app-{index}",
        namespace=namespace,
        host_name=f"10.1.0.{index}:50002",
        actor_types=types,
        ring_implementation=ring,
        retry_interval=0.1,
        retry_jitter=0.05,
    )


async def until(condition: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(TIMEOUT):
        while not condition():
            await asyncio.sleep(0.02)


def hosts_of(client: PlacementClient, actor_type: str) -> set[str]:
    tables = client.tables
    if tables is None or not client.ready or actor_type not in tables.types:
        return set()
    return set(tables.types[actor_type].hosts)


@contextlib.asynccontextmanager
async def running(*clients: PlacementClient) -> AsyncIterator[None]:
    for c in clients:
        await c.start()
    try:
        yield
    finally:
        for c in clients:
            await c.aclose()


async def test_sidecars_converge_and_locate_alike(placement: str) -> None:
    ns = "converge"
    actors = [
        sidecar(placement, i, ["T", "U"] if i < 2 else ["T"], ns, ring)
        for i, ring in enumerate(["rust", "python", "rust"])
    ]
    watcher = sidecar(placement, 9, [], ns)
    everyone = [*actors, watcher]
    names = {f"10.1.0.{i}:50002" for i in range(3)}
    async with running(*everyone):
        await until(lambda: all(hosts_of(c, "T") == names for c in everyone), "three hosts")
        versions = {c.version for c in everyone}
        assert len(versions) == 1 and versions.pop() >= 1
        assert all(hosts_of(c, "U") == names - {"10.1.0.2:50002"} for c in everyone)
        ring = implementation("python").Ring(sorted(names), replication_factor=100)
        ids = [f"actor-{i}" for i in range(300)]
        expected = [
            Placement(o, f"app-{o.split('.')[3].split(':')[0]}") for o in ring.lookup_many(ids)
        ]
        for c in everyone:
            assert [c.locate("T", a) for a in ids] == expected

        # One sidecar leaves: only its actors move.
        before = {a: watcher.locate("T", a) for a in ids}
        await actors[2].aclose()
        await until(
            lambda: all(hosts_of(c, "T") == names - {"10.1.0.2:50002"} for c in everyone[:2]),
            "two hosts",
        )
        await until(lambda: hosts_of(watcher, "T") == names - {"10.1.0.2:50002"}, "watcher")
        for a in ids:
            now = watcher.locate("T", a)
            assert now == before[a] or before[a].host == "10.1.0.2:50002"


async def test_update_actor_types_reaches_the_table(placement: str) -> None:
    ns = "retype"
    a, watcher = sidecar(placement, 1, ["T"], ns), sidecar(placement, 2, [], ns)
    async with running(a, watcher):
        await until(lambda: hosts_of(watcher, "T") == {"10.1.0.1:50002"}, "T")
        version = watcher.version
        await a.update_actor_types(["T", "V"])
        await until(lambda: hosts_of(watcher, "V") == {"10.1.0.1:50002"}, "V")
        assert watcher.version > version
        assert a.locate("V", "x") == Placement("10.1.0.1:50002", "app-1")


async def test_dead_first_address_is_skipped(placement: str) -> None:
    dead = f"127.0.0.1:{free_port()}"
    c = sidecar([dead, placement], 1, ["T"], "failover")
    async with running(c):
        await c.wait_ready(TIMEOUT)
        assert c.address == placement
        assert c.last_error is not None and c.last_error.startswith(dead)


async def _locate(*args: str, script: bool = False) -> tuple[int, str, str]:
    if script:
        command = [str(BIN / "daprplane"), "placement", "locate", *args]
    else:
        command = [
            sys.executable,
            "-c",
            "from daprplane.plugins.placement.cli import locate; locate()",
            *args,
        ]
    process = await asyncio.create_subprocess_exec(
        *command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={}, cwd="/"
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def _wired() -> bool:
    help_text = subprocess.run(
        [str(BIN / "daprplane"), "placement", "--help"],
        capture_output=True,
        text=True,
        env={},
        cwd="/",
        timeout=60,
    ).stdout
    return "locate" in help_text


@pytest.mark.parametrize("script", [False, True], ids=["module", "console-script"])
async def test_locate_command(placement: str, script: bool) -> None:
    if script:
        assert _wired(), "`daprplane placement --help` does not list `locate`"
    ns = f"locate-{int(script)}"
    hosts = [sidecar(placement, i, ["Counter"], ns) for i in range(3)]
    async with running(*hosts):
        await until(lambda: all(len(hosts_of(h, "Counter")) == 3 for h in hosts), "hosts")
        owner = hosts[0].locate("Counter", "c-42")
        code, out, err = await _locate(
            "--address",
            placement,
            "--namespace",
            ns,
            "--type",
            "Counter",
            "--id",
            "c-42",
            "--json",
            script=script,
        )
        assert code == 0, err
        data = json.loads(out)
        assert (data["host"], data["app_id"]) == (owner.host, owner.app_id)
        assert data["version"] == hosts[0].version

        code, out, err = await _locate(
            "--address",
            placement,
            "--namespace",
            ns,
            "--type",
            "Nope",
            "--id",
            "1",
            script=script,
        )
        assert code == 1 and out == ""
        assert (
            err.strip().splitlines()[-1].startswith("error: did not find address for actor Nope||1")
        )

        code, out, _ = await _locate(
            "--address",
            f"127.0.0.1:{free_port()},{placement}",
            "--namespace",
            ns,
            "--type",
            "Counter",
            "--id",
            "c-42",
            script=script,
        )
        assert code == 0
        assert out == f"host={owner.host} app_id={owner.app_id} version={data['version']}\n"


async def test_locate_times_out_with_a_clear_error() -> None:
    dead = f"127.0.0.1:{free_port()}"
    code, out, err = await _locate("--address", dead, "--type", "T", "--id", "x", "--timeout", "1s")
    assert code == 1 and out == ""
    line = err.strip().splitlines()[-1]
    assert line.startswith(
        f"error: timed out after 1s waiting for the placement table of "
        f"namespace 'default' from {dead} (last error: {dead}: UNAVAILABLE"
    )
