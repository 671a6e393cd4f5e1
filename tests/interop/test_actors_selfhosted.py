"""Unmodified daprd 1.18.3 sidecars host actors through daprplane's placement and sentry.

Self-hosted mode, mTLS everywhere: our sentry (standalone, its own CA) issues every identity, our
placement (``--tls-enabled``) gets its SVID from it, and three real ``daprd`` processes, each in
front of its own actor app, get theirs and join placement. Through one sidecar's HTTP API the test
then calls 100 actors and checks that

- every call succeeds, an actor always answers from the same app, and every app hosts some;
- daprd's choice of host is exactly what daprplane's ring (through the Python placement client's
  table code) computes from placement's own table, with each ring implementation;
- when one daprd stops (SIGTERM), placement disseminates a new table version, the leaving daprd
  deactivates its actors, they come back on the remaining apps, and no other actor moves;
- everything shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from typing import Any

import aiohttp
import pytest

from daprplane import ring
from daprplane._proto.placement.v1 import placement_pb2
from daprplane.plugins.placement.client.tables import build_tables, ring_module_for
from tests.interop.conftest import (
    ACTOR_TYPE,
    APP_NAMESPACE,
    REPLICATION_FACTOR,
    ActorHost,
    ControlPlane,
    PlacementTable,
    Processes,
    StartActorHost,
    daprd_build_allowance,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.timeout(240 + daprd_build_allowance()),
]

APP_IDS = ("app-a", "app-b", "app-c")
ACTOR_IDS = [f"counter-{number}" for number in range(100)]
# Enough concurrent calls to exercise daprd's forwarding between sidecars, few enough for 2 cores.
CONCURRENCY = 16


# -- calling actors through daprd ------------------------------------------------------------


async def invoke(
    session: aiohttp.ClientSession, via: ActorHost, actor_id: str, method: str
) -> dict[str, Any]:
    url = f"{via.dapr_url}/v1.0/actors/{ACTOR_TYPE}/{actor_id}/method/{method}"
    async with session.post(url, json={}) as response:
        body = await response.text()
    assert response.status == 200, (
        f"{method} on {ACTOR_TYPE}/{actor_id} through daprd {via.app_id} answered "
        f"HTTP {response.status}: {body}"
    )
    return json.loads(body)  # type: ignore[no-any-return]


async def invoke_all(
    session: aiohttp.ClientSession, via: ActorHost, actor_ids: Iterable[str], method: str
) -> dict[str, dict[str, Any]]:
    """``method`` on every actor through one sidecar, a bounded number at a time."""
    limit = asyncio.Semaphore(CONCURRENCY)

    async def one(actor_id: str) -> tuple[str, dict[str, Any]]:
        async with limit:
            return actor_id, await invoke(session, via, actor_id, method)

    return dict(await asyncio.gather(*(one(actor_id) for actor_id in actor_ids)))


async def owners_via(
    session: aiohttp.ClientSession,
    via: ActorHost,
    actor_ids: Iterable[str],
    hosts: Iterable[ActorHost],
) -> dict[str, str]:
    """Which app answered ``whoami`` for each actor; the answering process must be that app's."""
    pids = {host.app_id: host.app.popen.pid for host in hosts}
    answers = await invoke_all(session, via, actor_ids, "whoami")
    for actor_id, answer in answers.items():
        assert (answer["type"], answer["id"]) == (ACTOR_TYPE, actor_id), answer
        assert answer["pid"] == pids.get(answer["app"]), (answer, pids)
    return {actor_id: answer["app"] for actor_id, answer in answers.items()}


# -- what daprplane's ring says -----------------------------------------------------------------


def ring_implementations() -> list[str]:
    return ["python", "rust"] if ring.rust_available() else ["python"]


def expected_owners(
    table: PlacementTable, actor_ids: Iterable[str], implementation: str
) -> dict[str, str]:
    """The app daprd should pick for each actor, by the placement client's own table code,
    rebuilt from placement's ``/placement/state`` the way an UPDATE carries it."""
    tables = placement_pb2.PlacementTables(
        version=str(table.version), replication_factor=REPLICATION_FACTOR
    )
    for host in table.hosts:
        entry = placement_pb2.Host(
            name=host["name"],
            id=host["id"],
            namespace=host.get("namespace", ""),
            entities=host.get("entities", []),
        )
        for entity in entry.entities:
            tables.entries[entity].load_map[entry.name].CopyFrom(entry)
    actor_tables = build_tables(tables, table.version, ring_impl=ring_module_for(implementation))
    owners = {}
    for actor_id in actor_ids:
        placement = actor_tables.locate(ACTOR_TYPE, actor_id)
        owners[actor_id] = placement.app_id
    return owners


def check_against_ring(table: PlacementTable, observed: dict[str, str]) -> None:
    for implementation in ring_implementations():
        expected = expected_owners(table, observed, implementation)
        disagreements = {
            actor_id: (expected[actor_id], app)
            for actor_id, app in observed.items()
            if expected[actor_id] != app
        }
        assert not disagreements, (
            f"daprd placed {len(disagreements)} of {len(observed)} actors elsewhere than "
            f"daprplane's {implementation} ring for table version {table.version} "
            f"(actor: (ring, daprd)): {disagreements}"
        )


def hosted_by(owners: dict[str, str], app_id: str) -> set[str]:
    return {actor_id for actor_id, app in owners.items() if app == app_id}


# -- the test ---------------------------------------------------------------------------------


async def test_daprd_hosts_actors_through_daprplane(
    processes: Processes, control_plane: ControlPlane, start_actor_host: StartActorHost
) -> None:
    started = time.monotonic()
    hosts = [start_actor_host(app_id) for app_id in APP_IDS]
    entry, staying, leaving = hosts

    # Placement's table: every daprd, by the address it announced, with the type its app hosts.
    table = control_plane.wait_for_table(set(APP_IDS))
    assert table.host_names() == {host.placement_host_name for host in hosts}, table
    for announced in table.hosts:
        assert announced.get("entities") == [ACTOR_TYPE], announced
        assert announced.get("namespace") == APP_NAMESPACE, announced
    for host in hosts:
        host.wait_applied(table.version)
    assert control_plane.placement_table() == table, "the table changed while nothing joined"

    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        # Every actor activates on its first call, wherever placement put it.
        counts = await invoke_all(session, entry, ACTOR_IDS, "increment")
        assert counts == {actor_id: {"count": 1} for actor_id in ACTOR_IDS}

        owners = await owners_via(session, entry, ACTOR_IDS, hosts)
        assert await owners_via(session, entry, ACTOR_IDS, hosts) == owners, "an actor changed host"
        assert set(owners.values()) == set(APP_IDS), (
            f"actors are not spread over every app: "
            f"{ {app: len(hosted_by(owners, app)) for app in APP_IDS} }"
        )
        # The apps agree: each holds exactly the actors that answered from it, once activated.
        for host in hosts:
            view = host.introspect()
            assert host.active_actor_ids() == hosted_by(owners, host.app_id)
            assert sorted(actor_id for _, actor_id in view["activations"]) == sorted(
                hosted_by(owners, host.app_id)
            ), f"{host.app_id} activated some actor twice: {view['activations']}"
        check_against_ring(table, owners)
        # Another sidecar routes the same way.
        assert await owners_via(session, staying, ACTOR_IDS[:25], hosts) == {
            actor_id: owners[actor_id] for actor_id in ACTOR_IDS[:25]
        }

        # One sidecar leaves: its actors are deactivated, placement disseminates a new table.
        leaving_actors = hosted_by(owners, leaving.app_id)
        assert leaving.daprd.stop() == 0, leaving.daprd.tail()
        assert leaving.active_actor_ids() == set(), "the leaving daprd left actors active"
        deactivated = {actor_id for _, actor_id in leaving.introspect()["deactivations"]}
        assert deactivated == leaving_actors

        remaining = (entry, staying)
        new_table = control_plane.wait_for_table(
            {host.app_id for host in remaining}, newer_than=table.version
        )
        assert new_table.host_names() == {host.placement_host_name for host in remaining}
        for host in remaining:
            host.wait_applied(new_table.version)

        counts = await invoke_all(session, entry, ACTOR_IDS, "increment")
        new_owners = await owners_via(session, entry, ACTOR_IDS, hosts)
        assert set(new_owners.values()) == {host.app_id for host in remaining}
        for actor_id in ACTOR_IDS:
            if actor_id in leaving_actors:
                # Reactivated elsewhere: its in-memory count starts again.
                assert counts[actor_id] == {"count": 1}, (actor_id, counts[actor_id])
            else:
                # Consistent hashing: an actor whose host stayed does not move, keeps its state.
                assert new_owners[actor_id] == owners[actor_id], actor_id
                assert counts[actor_id] == {"count": 2}, (actor_id, counts[actor_id])
        for host in remaining:
            assert host.active_actor_ids() == hosted_by(new_owners, host.app_id)
        check_against_ring(new_table, new_owners)

    # Clean shutdown, sidecars first, the control plane last.
    for process in reversed(processes.started):
        if process.running:
            assert process.stop() == 0, f"{process.name} exited uncleanly:\n{process.tail()}"
    for host in hosts:
        assert "Daprd shutdown gracefully" in host.daprd.log_text(), host.daprd.tail()

    elapsed = time.monotonic() - started
    print(f"interop actors test: {elapsed:.1f}s from the first sidecar to shutdown")
