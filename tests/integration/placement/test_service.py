"""``daprplane-placement`` as a real process: started by absolute path with an empty environment."""

from __future__ import annotations

import asyncio
import json
import re

import grpc
import pytest

from tests.integration.launchers import free_port, run
from tests.integration.placement.server_fixture import PlacementProcess, channel, run_placement
from tests.integration.placement.sidecars import Ended, Sidecar, until

A, B = "10.0.0.1:50002", "10.0.0.2:50002"


def _samples(text: str) -> dict[str, float]:
    return {
        name: float(value)
        for name, value in re.findall(r"^(dapr_placement_\S+) (\S+)$", text, re.MULTILINE)
    }


@pytest.fixture
def placement() -> PlacementProcess:  # type: ignore[misc]
    with run_placement("--metadata-enabled", "--disseminate-timeout=1s") as process:
        yield process


async def test_example_state_metrics_timeout_and_graceful_stop(placement: PlacementProcess) -> None:
    status, content_type, body = placement.get("/placement/state")
    assert (status, content_type, body) == (200, "application/json", "{}")
    exposition = placement.metrics()
    for name in ("leader_status", "raft_leader_status", "runtimes_total", "actor_runtimes_total"):
        assert f"# TYPE dapr_placement_{name} gauge" in exposition
    assert _samples(exposition)["dapr_placement_leader_status"] == 1.0

    async with channel(placement.address) as ch:
        a = await Sidecar(ch, A, "a", entities=["T"]).connect()
        await a.wait_unlocked(1)
        b = await Sidecar(ch, B, "b", entities=["T"]).connect()
        await b.wait_unlocked(2)
        await a.wait_unlocked(2)
        assert a.load_map() == b.load_map() == {"T": [A, B]}
        c = await Sidecar(ch, "10.0.0.3:50002", "c").connect()
        await c.wait_unlocked(2)

        samples = _samples(placement.metrics())
        assert samples['dapr_placement_runtimes_total{host_namespace="default"}'] == 3
        assert samples['dapr_placement_actor_runtimes_total{host_namespace="default"}'] == 2
        state = json.loads(placement.get("/placement/state")[2])
        assert state == {
            "tables": {
                "default": {
                    "hosts": [
                        {
                            "name": A,
                            "entities": ["T"],
                            "id": "a",
                            "api_level": 20,
                            "namespace": "default",
                            "operation": 1,
                        },
                        {
                            "name": B,
                            "entities": ["T"],
                            "id": "b",
                            "api_level": 20,
                            "namespace": "default",
                            "operation": 1,
                        },
                    ],
                    "version": 2,
                }
            }
        }

        await b.close()
        await a.wait_unlocked(3)
        assert a.load_map() == {"T": [A]}

        silent = await Sidecar(ch, B, "b", entities=["T"], auto_ack=False).connect()
        ended = await silent.wait_ended(5)
        assert ended.code is grpc.StatusCode.DEADLINE_EXCEEDED
        assert ended.details == "dissemination timeout after 1s for version 4"
        await a.wait_unlocked(5)

        code, out = await asyncio.to_thread(placement.stop)
        assert code == 0, out
        for s in (a, c):
            ended = await s.wait_ended(5)
            # Python's gRPC client sometimes reports its own INTERNAL "Internal error from Core"
            # instead of the server's status when the connection goes away with the process;
            # either way the stream ended at the stop, not before.
            assert ended.code is grpc.StatusCode.UNAVAILABLE or ended == Ended(
                grpc.StatusCode.INTERNAL, "Internal error from Core"
            ), ended
            await s.aclose()
        await silent.aclose()
    assert "placement shut down gracefully" in out
    assert (
        "Received status report connection from new namespace=default id=a host=10.0.0.1:50002"
        in out
    )


async def test_state_shapes_and_metrics_when_namespace_empties(placement: PlacementProcess) -> None:
    async with channel(placement.address) as ch:
        x = await Sidecar(ch, "x", namespace="actorless").connect()
        await x.wait_unlocked(0)
        assert json.loads(placement.get("/placement/state")[2]) == {"tables": {"actorless": {}}}
        await x.close()
        await until(lambda: placement.get("/placement/state")[2] == "{}")
        samples = _samples(placement.metrics())
        assert samples['dapr_placement_runtimes_total{host_namespace="actorless"}'] == 0
        await x.aclose()


def test_metadata_endpoint_off_by_default() -> None:
    with run_placement() as process:
        assert process.get("/placement/state")[0] == 404
        assert process.stop()[0] == 0


def test_metadata_enabled_from_environment() -> None:
    with run_placement(env={"DAPR_PLACEMENT_METADATA_ENABLED": "Yes"}) as process:
        assert process.get("/placement/state")[:2] == (200, "application/json")
        process.stop()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--keepalive-time=500ms"],
            "invalid value for keepalive-time: value should be between 1s and 10s, got 500ms",
        ),
        (
            ["--keepalive-timeout=11s"],
            "invalid value for keepalive-timeout: value should be between 1s and 10s, got 11s",
        ),
        (
            ["--id=p1"],
            "address for node p1 not found in raft peers [{dapr-placement-0 127.0.0.1:8201}]",
        ),
    ],
)
def test_fatal_flag_values_exit_1_with_one_line(args: list[str], message: str) -> None:
    result = run(
        "daprplane-placement",
        f"--port={free_port()}",
        f"--healthz-port={free_port()}",
        f"--metrics-port={free_port()}",
        *args,
        timeout=60,
    )
    assert result.returncode == 1
    assert message in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_unknown_flag_exits_2() -> None:
    assert run("daprplane-placement", "--no-such-flag").returncode == 2
