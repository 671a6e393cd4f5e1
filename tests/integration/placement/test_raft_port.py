"""The raft port of ``daprplane-placement`` as a real process: open even for a single peer, and a
port that cannot be bound is fatal. Where Dapr's own placement can run, it is checked to behave
the same."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from daprplane.plugins.placement.raft_wire import (
    Heartbeat,
    HeartbeatReply,
    VoteReply,
    VoteRequest,
    decode,
    encode,
)
from tests.dapr import binaries
from tests.integration.launchers import free_port, run, script
from tests.integration.placement.server_fixture import run_placement


async def _request(port: int, payload: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(payload)
        await writer.drain()
        async with asyncio.timeout(5):
            length = int.from_bytes(await reader.readexactly(4), "big")
            return await reader.readexactly(length)
    finally:
        writer.close()


async def test_a_single_peer_listens_on_its_raft_port_and_answers_raft() -> None:
    raft = free_port()
    with run_placement("--id=solo", f"--initial-cluster=solo=127.0.0.1:{raft}") as placement:
        with socket.create_connection(("127.0.0.1", raft), timeout=5):
            pass  # a TCP probe, as tooling does
        # It leads, so it neither follows a stranger nor votes for one.
        reply = await _request(raft, encode(Heartbeat(5, "stranger")))
        assert decode(reply) == HeartbeatReply(1, False)
        reply = await _request(raft, encode(VoteRequest(5, "stranger")))
        assert decode(reply) == VoteReply(1, False)
        assert "dapr_placement_leader_status 1.0" in placement.metrics()


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _fatal_messages(output: str) -> list[str]:
    lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    return [line["msg"] for line in lines if line.get("level") == "fatal"]


def _ports() -> list[str]:
    return [
        f"--port={free_port()}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
    ]


def test_a_raft_port_in_use_exits_1_with_one_line(held_port: int) -> None:
    result = run(
        "daprplane-placement",
        f"--initial-cluster=dapr-placement-0=127.0.0.1:{held_port}",
        "--log-as-json",
        *_ports(),
        timeout=60,
    )
    assert result.returncode == 1
    assert _fatal_messages(result.stdout) == [
        f"failed to create raft listener: listen tcp 127.0.0.1:{held_port}: bind: "
        "address already in use"
    ]
    assert "Traceback" not in result.stdout + result.stderr


def test_an_address_of_another_machine_exits_1() -> None:
    # 192.0.2.0/24 is reserved for documentation: never an address of this machine.
    result = run(
        "daprplane-placement",
        "--initial-cluster=dapr-placement-0=192.0.2.1:8201",
        "--log-as-json",
        *_ports(),
        timeout=60,
    )
    assert result.returncode == 1
    assert _fatal_messages(result.stdout) == [
        "failed to create raft listener: listen tcp 192.0.2.1:8201: bind: "
        "cannot assign requested address"
    ]


async def test_a_peer_address_that_is_not_host_port_does_not_stop_the_others() -> None:
    """Dapr starts with such a peer too; it is simply never reached."""
    members = f"p0=127.0.0.1:{free_port()},p1=127.0.0.1:{free_port()},p2=no-port"
    with (
        run_placement("--id=p0", f"--initial-cluster={members}") as p0,
        run_placement("--id=p1", f"--initial-cluster={members}") as p1,
    ):
        async with asyncio.timeout(20):
            while not any("dapr_placement_leader_status 1.0" in p.metrics() for p in (p0, p1)):
                await asyncio.sleep(0.2)


# -- side by side with Dapr's placement ---------------------------------------------------


@pytest.fixture(scope="module")
def dapr_placement() -> Path:
    return binaries.binary("placement")


def _dapr_fatal(dapr_placement: Path, *args: str) -> tuple[int, list[str]]:
    result = subprocess.run(
        [str(dapr_placement), *args, "--log-as-json", *_ports()],
        env={},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    return result.returncode, _fatal_messages(result.stdout + result.stderr)


@pytest.mark.interop
def test_dapr_fails_the_same_on_a_raft_port_in_use(dapr_placement: Path, held_port: int) -> None:
    flag = f"--initial-cluster=dapr-placement-0=127.0.0.1:{held_port}"
    ours = run("daprplane-placement", flag, "--log-as-json", *_ports(), timeout=60)
    code, messages = _dapr_fatal(dapr_placement, flag)
    # Dapr joins the errors of every runner that stopped: the gRPC server's stop sometimes makes
    # it onto a second line, after the cause.
    assert (code, [message.splitlines()[0] for message in messages]) == (
        1,
        _fatal_messages(ours.stdout),
    )


@pytest.mark.interop
def test_dapr_also_listens_on_a_single_peers_raft_port(dapr_placement: Path) -> None:
    for executable in (str(dapr_placement), script("daprplane-placement")):
        raft = free_port()
        process = subprocess.Popen(
            [executable, f"--initial-cluster=dapr-placement-0=127.0.0.1:{raft}", *_ports()],
            env={},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd="/",
        )
        try:
            _wait_for_listener(raft, process)
        finally:
            process.kill()
            process.wait(timeout=10)


def _wait_for_listener(port: int, process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        assert process.poll() is None, f"{process.args[0]} exited with {process.returncode}"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise AssertionError(f"nothing listens on the raft port {port}") from None
            time.sleep(0.1)
