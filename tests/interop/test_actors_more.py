"""More of unmodified daprd 1.18.3 against daprplane's placement and sentry, self-hosted, mTLS.

Beyond the basic hosting and failover of ``test_actors_selfhosted.py``:

- **placement restart**: placement stops (SIGTERM) under connected sidecars with active actors
  and starts again on the same ports; every daprd reconnects, the new placement disseminates a
  table with every host (its ``/placement/state`` and daprd's "Dissemination complete" lines
  agree), and actor calls succeed again, each actor on the host daprplane's ring names;
- **two namespaces**: sidecars with the same app IDs and the same actor type in two namespaces
  get two separate tables, each namespace's actors live only in that namespace's apps, with
  state of their own, and ``daprplane placement locate`` reads each namespace's own table;
- **``daprplane placement locate``**: the tool, connecting over mTLS like an actor-less sidecar,
  names the very sidecar (address and app ID) whose app activated an actor just invoked.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from tests.interop._actors_more import (
    NamespacedHost,
    answering_hosts,
    app_ids_of,
    placement_tables,
    run_locate,
    start_namespaced_host,
    start_placement_again,
    stop_placement,
    wait_for_tables,
)
from tests.interop.conftest import (
    ACTOR_TYPE,
    APP_NAMESPACE,
    STARTUP_TIMEOUT,
    ControlPlane,
    PlacementTable,
    Processes,
    _write_resources,
    daprd_build_allowance,
    wait_until,
)
from tests.interop.test_actors_selfhosted import check_against_ring, invoke_all

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.timeout(240 + daprd_build_allowance()),
]

APP_IDS = ("app-a", "app-b", "app-c")
ACTOR_IDS = [f"counter-{number}" for number in range(40)]
OTHER_NAMESPACE = "team-blue"
# daprd retries placement with a backoff of its own; the restarted placement must see every
# sidecar again well within this.
RECONNECT_TIMEOUT = 60.0

StartHost = Callable[[str, str], NamespacedHost]


@pytest.fixture
def start_host(
    processes: Processes, control_plane: ControlPlane, daprd_binary: Path, tmp_path: Path
) -> StartHost:
    """``start_host(app_id, namespace)``: an actor app and its daprd in that namespace, ready."""
    resources = _write_resources(tmp_path / "resources")

    def start(app_id: str, namespace: str) -> NamespacedHost:
        return start_namespaced_host(
            processes, control_plane, daprd_binary, resources, app_id, namespace
        )

    return start


def client_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))


def assert_table_of(table: PlacementTable, namespace: str, hosts: list[NamespacedHost]) -> None:
    """The table lists exactly ``hosts``, by address and app ID, each in ``namespace`` with the
    one actor type its app hosts."""
    assert table.host_names() == {host.placement_host_name for host in hosts}, table
    assert sorted(h["id"] for h in table.hosts) == sorted(host.app_id for host in hosts), table
    for announced in table.hosts:
        assert announced.get("namespace") == namespace, announced
        assert announced.get("entities") == [ACTOR_TYPE], announced


def hosted_by(owners: dict[str, NamespacedHost], host: NamespacedHost) -> set[str]:
    return {actor_id for actor_id, owner in owners.items() if owner is host}


async def test_daprd_reconnects_when_placement_restarts(
    processes: Processes, control_plane: ControlPlane, start_host: StartHost
) -> None:
    hosts = [start_host(app_id, APP_NAMESPACE) for app_id in APP_IDS]
    entry = hosts[0]
    # A fourth sidecar joins and leaves first: the table's version then runs ahead of what the
    # restarted placement (whose versions start again at 1) reaches with three hosts, so every
    # daprd has to take a table whose version is below the last one it applied.
    passing = start_host("app-d", APP_NAMESPACE)
    wait_for_tables(control_plane, [*hosts, passing])
    assert passing.daprd.stop() == 0, passing.daprd.tail()
    table = wait_for_tables(control_plane, hosts)[APP_NAMESPACE]
    assert_table_of(table, APP_NAMESPACE, hosts)
    for host in hosts:
        host.wait_applied(table.version)

    async with client_session() as session:
        counts = await invoke_all(session, entry, ACTOR_IDS, "increment")
        assert counts == {actor_id: {"count": 1} for actor_id in ACTOR_IDS}
        owners = await answering_hosts(session, entry, ACTOR_IDS, hosts)
        check_against_ring(table, app_ids_of(owners))

        # Placement goes away under connected sidecars with active actors.
        offsets = {host.label: host.log_offset() for host in hosts}
        stopped = time.monotonic()
        placement_argv = stop_placement(control_plane)
        # daprd halts every actor once its placement stream closes: each app sees each of its
        # actors deactivated, once.
        wait_until(
            lambda: not any(host.active_actor_ids() for host in hosts),
            timeout=STARTUP_TIMEOUT,
            what=lambda: (
                "every daprd to deactivate its actors once placement is gone (still active: "
                f"{ {host.label: sorted(host.active_actor_ids()) for host in hosts} })"
            ),
            watch=[process for host in hosts for process in (host.daprd, host.app)],
        )
        halted = time.monotonic()
        for host in hosts:
            deactivated = [actor_id for _, actor_id in host.introspect()["deactivations"]]
            assert sorted(deactivated) == sorted(hosted_by(owners, host)), host.label

        # The same placement comes back on the same ports; every daprd reconnects by itself.
        start_placement_again(processes, control_plane, placement_argv)
        restarted = time.monotonic()
        new_table = wait_for_tables(control_plane, hosts, timeout=RECONNECT_TIMEOUT)[APP_NAMESPACE]
        assert_table_of(new_table, APP_NAMESPACE, hosts)
        table_back = time.monotonic()
        assert new_table.version < table.version, (
            f"the restarted placement's table {new_table.version} should be below the last "
            f"one before the restart ({table.version}): its versions start again at 1"
        )
        for host in hosts:
            host.wait_applied_since(offsets[host.label], new_table.version, RECONNECT_TIMEOUT)
            host.wait_connected(watch=[control_plane.placement])
        applied = time.monotonic()
        assert placement_tables(control_plane) == {APP_NAMESPACE: new_table}, (
            "the table changed after every daprd had applied it"
        )
        versions = {host.label: host.applied_versions_since(offsets[host.label]) for host in hosts}
        assert 1 in {version for logged in versions.values() for version in logged}, (
            f"no daprd logged the restarted placement's first table, version 1: {versions}"
        )

        # Calls work again; the same hosts make the same ring, so every actor comes back
        # (afresh) on the app it had before.
        counts = await invoke_all(session, entry, ACTOR_IDS, "increment")
        assert counts == {actor_id: {"count": 1} for actor_id in ACTOR_IDS}
        new_owners = await answering_hosts(session, entry, ACTOR_IDS, hosts)
        check_against_ring(new_table, app_ids_of(new_owners))
        assert app_ids_of(new_owners) == app_ids_of(owners)
        for host in hosts:
            assert host.active_actor_ids() == hosted_by(new_owners, host), host.label

    print(
        f"placement restart: actors halted {halted - stopped:.1f}s after SIGTERM, placement "
        f"stopped and started again in {restarted - stopped:.1f}s, full table (version "
        f"{table.version} -> {new_table.version}) {table_back - restarted:.1f}s later, applied "
        f"by every daprd {applied - restarted:.1f}s after the restart; versions applied since "
        f"the restart: {versions}"
    )


async def test_two_namespaces_stay_apart(
    control_plane: ControlPlane, start_host: StartHost
) -> None:
    namespaces = (APP_NAMESPACE, OTHER_NAMESPACE)
    # The same app IDs and actor type in both namespaces: only the namespace tells them apart.
    by_namespace = {
        namespace: [start_host(app_id, namespace) for app_id in APP_IDS[:2]]
        for namespace in namespaces
    }
    every_host = [host for hosts in by_namespace.values() for host in hosts]
    tables = wait_for_tables(control_plane, every_host)
    assert set(tables) == set(namespaces), tables
    for namespace, hosts in by_namespace.items():
        assert_table_of(tables[namespace], namespace, hosts)
        for host in hosts:
            host.wait_applied(tables[namespace].version)
    assert placement_tables(control_plane) == tables, "a table changed while nothing joined"

    async with client_session() as session:
        for namespace, hosts in by_namespace.items():
            entry, other = hosts
            # Every actor activates afresh in each namespace: the other namespace's live actor
            # of the same type and ID is another actor.
            counts = await invoke_all(session, entry, ACTOR_IDS, "increment")
            assert counts == {actor_id: {"count": 1} for actor_id in ACTOR_IDS}, namespace
            owners = await answering_hosts(session, entry, ACTOR_IDS, every_host)
            strangers = {
                actor_id: owner.label
                for actor_id, owner in owners.items()
                if owner.namespace != namespace
            }
            assert not strangers, f"actors of {namespace} answered from elsewhere: {strangers}"
            assert {owner.app_id for owner in owners.values()} == {h.app_id for h in hosts}, (
                f"the actors of {namespace} are not spread over its apps"
            )
            check_against_ring(tables[namespace], app_ids_of(owners))
            # The namespace's other sidecar routes the same way.
            assert await answering_hosts(session, other, ACTOR_IDS, every_host) == owners
            for host in hosts:
                assert host.active_actor_ids() == hosted_by(owners, host), host.label

            # The locate tool, asking as an app of this namespace, reads this namespace's table.
            run = run_locate(control_plane, ACTOR_IDS[0], namespace=namespace)
            owner = owners[ACTOR_IDS[0]]
            assert (run.answer()["host"], run.answer()["app_id"]) == (
                owner.placement_host_name,
                owner.app_id,
            ), f"{owner.label} hosts {ACTOR_IDS[0]} in {namespace}: {run.describe()}"

    # Each actor ID is live once per namespace, never twice in one.
    for namespace, hosts in by_namespace.items():
        active = [actor_id for host in hosts for actor_id in host.active_actor_ids()]
        assert sorted(active) == sorted(ACTOR_IDS), namespace


async def test_locate_names_the_host_that_activated_an_actor(
    control_plane: ControlPlane, start_host: StartHost
) -> None:
    hosts = [start_host(app_id, APP_NAMESPACE) for app_id in APP_IDS]
    table = wait_for_tables(control_plane, hosts)[APP_NAMESPACE]
    for host in hosts:
        host.wait_applied(table.version)

    async with client_session() as session:
        await invoke_all(session, hosts[0], ACTOR_IDS, "increment")
        owners = await answering_hosts(session, hosts[0], ACTOR_IDS, hosts)
    # One actor per host, so that every answer has to differ.
    chosen = {host.label: min(hosted_by(owners, host)) for host in hosts}
    offsets = {host.label: host.log_offset() for host in hosts}

    started = time.monotonic()
    for label, actor_id in chosen.items():
        owner = owners[actor_id]
        assert actor_id in owner.active_actor_ids(), (label, actor_id)
        run = run_locate(control_plane, actor_id, namespace=APP_NAMESPACE)
        answer = run.answer()
        assert (answer["actor_type"], answer["actor_id"]) == (ACTOR_TYPE, actor_id), run.describe()
        assert (answer["host"], answer["app_id"]) == (owner.placement_host_name, owner.app_id), (
            f"locate named another host than the one whose app activated {actor_id} "
            f"({owner.placement_host_name}, {owner.app_id}): {run.describe()}"
        )
        assert answer["version"] == table.version, run.describe()
    elapsed = time.monotonic() - started

    # The tool reports no actor types: it never becomes one of the table's hosts, and its joins
    # cost the sidecars no dissemination round.
    assert placement_tables(control_plane) == {APP_NAMESPACE: table}
    for host in hosts:
        assert host.applied_versions_since(offsets[host.label]) == [], host.label
    print(f"locate: {len(chosen)} runs in {elapsed:.1f}s, table version {table.version} throughout")
