"""Helpers for the further actor interop tests: namespaced hosts, a restartable placement,
every namespace's table, and the ``daprplane placement locate`` tool run as a subprocess.

They build on the fixtures of ``conftest.py`` (processes with logs, the control plane, daprd's
readiness check) and add what those keep fixed: the namespace a daprd runs in (with process and
log names that stay apart when two namespaces use the same app IDs), and the placement process
(so that a test can stop it and start it again on the same ports).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.interop.conftest import (
    ACTOR_TYPE,
    CONTROL_PLANE_NAMESPACE,
    STARTUP_TIMEOUT,
    TRUST_DOMAIN,
    ActorHost,
    ControlPlane,
    LoggedProcess,
    PlacementTable,
    Processes,
    SelfHostedDaprd,
    _daprd_ready,
    _start_app,
    get_json,
    wait_for_healthz,
    wait_until,
)
from tests.interop.test_actors_selfhosted import invoke_all

LOCATE_TIMEOUT = 60.0

# daprd's info line once it has applied a placement table (all three phases done).
_DISSEMINATED = re.compile(r"Dissemination complete for version (\d+)")


# -- actor hosts in a chosen namespace ----------------------------------------------------------


@dataclass
class NamespacedHost(ActorHost):
    """An actor host that knows its namespace and logs under a name unique across namespaces."""

    namespace: str

    @property
    def label(self) -> str:
        return f"{self.namespace}/{self.app_id}"

    def log_offset(self) -> int:
        """How many characters daprd has logged so far: later lines start after it."""
        return len(self.daprd.log_text())

    def applied_versions_since(self, offset: int) -> list[int]:
        """Table versions daprd logged as disseminated after ``offset``, in log order."""
        return [int(v) for v in _DISSEMINATED.findall(self.daprd.log_text()[offset:])]

    def wait_applied_since(self, offset: int, version: int, timeout: float) -> None:
        """Wait for daprd to log, after ``offset``, that it applied ``version``."""
        wait_until(
            lambda: version in self.applied_versions_since(offset),
            timeout=timeout,
            what=lambda: (
                f"daprd {self.label} to log 'Dissemination complete for version {version}' "
                f"(logged since: {self.applied_versions_since(offset)})"
            ),
            watch=[self.daprd, self.app],
        )

    def wait_connected(self, watch: Iterable[LoggedProcess] = ()) -> None:
        """Wait for daprd to report itself healthy, its actor runtime connected to placement."""
        wait_until(
            lambda: _daprd_ready(self),
            timeout=STARTUP_TIMEOUT,
            what=lambda: (
                f"daprd {self.label} to be healthy with its actor runtime connected to "
                f"placement (metadata now: {self.metadata()})"
            ),
            watch=[self.daprd, self.app, *watch],
        )


def start_namespaced_host(
    processes: Processes,
    control_plane: ControlPlane,
    daprd_binary: Path,
    resources: Path,
    app_id: str,
    namespace: str,
) -> NamespacedHost:
    """An actor app plus its daprd in ``namespace`` (daprd's ``NAMESPACE``, which its SVID from
    sentry follows), once daprd reports its actor runtime connected to placement."""
    process_name = f"{namespace}-{app_id}"
    app, app_port = _start_app(processes, app_id, process_name)
    launch = SelfHostedDaprd.for_app(
        daprd_binary, control_plane, resources, app_id, app_port, namespace
    )
    daprd = processes.start(f"{process_name}-daprd", launch.argv, launch.env)
    http_port, internal_port = launch.http_port, launch.internal_port
    host = NamespacedHost(
        app_id, app, app_port, daprd, http_port, internal_port, namespace=namespace
    )
    host.wait_connected(watch=[control_plane.placement, control_plane.sentry])
    return host


# -- placement: every table, and a restart --------------------------------------------------------


def placement_tables(control_plane: ControlPlane) -> dict[str, PlacementTable] | None:
    """Every namespace's table from ``/placement/state``; None while placement does not answer."""
    state = get_json(f"http://127.0.0.1:{control_plane.placement_healthz_port}/placement/state")
    if state is None:
        return None
    return {
        namespace: PlacementTable(int(table.get("version", 0)), tuple(table.get("hosts", ())))
        for namespace, table in state.get("tables", {}).items()
    }


def wait_for_tables(
    control_plane: ControlPlane,
    hosts: Iterable[NamespacedHost],
    timeout: float = STARTUP_TIMEOUT,
) -> dict[str, PlacementTable]:
    """Wait until placement holds one table per namespace of ``hosts``, each with exactly that
    namespace's hosts (by announced address), and no other table with hosts in it."""
    expected: dict[str, set[str]] = {}
    for host in hosts:
        expected.setdefault(host.namespace, set()).add(host.placement_host_name)

    def ready() -> dict[str, PlacementTable] | None:
        tables = placement_tables(control_plane) or {}
        populated = {namespace: t.host_names() for namespace, t in tables.items() if t.hosts}
        return tables if populated == expected else None

    return wait_until(
        ready,
        timeout=timeout,
        what=lambda: (
            f"placement's tables to hold exactly {expected} "
            f"(now: {placement_tables(control_plane)})"
        ),
        watch=(control_plane.sentry, control_plane.placement),
    )


def stop_placement(control_plane: ControlPlane) -> list[str]:
    """Stop placement with SIGTERM (it must exit 0); its command line, to start it again."""
    placement = control_plane.placement
    exit_code = placement.stop()
    assert exit_code == 0, f"placement exited with {exit_code} on SIGTERM:\n{placement.tail()}"
    return [str(argument) for argument in placement.popen.args]  # type: ignore[union-attr]


def start_placement_again(
    processes: Processes, control_plane: ControlPlane, argv: list[str]
) -> LoggedProcess:
    """Start placement with the very command line it had (so on the same ports), under a log of
    its own; ``control_plane`` refers to the new process from then on, once it is healthy."""
    assert not control_plane.placement.running, "placement is still running"
    starts = sum(process.name.startswith("placement") for process in processes.started)
    placement = processes.start(
        f"placement-{starts + 1}", argv, {"NAMESPACE": CONTROL_PLANE_NAMESPACE}
    )
    control_plane.placement = placement
    wait_for_healthz(
        control_plane.placement_healthz_port,
        what="the restarted placement",
        watch=[placement, control_plane.sentry],
    )
    return placement


# -- which process answers for an actor ---------------------------------------------------------


async def answering_hosts(
    session: aiohttp.ClientSession,
    via: ActorHost,
    actor_ids: Iterable[str],
    hosts: Iterable[NamespacedHost],
) -> dict[str, NamespacedHost]:
    """The host whose app process answered ``whoami`` for each actor, told apart by process ID
    (app IDs may repeat across namespaces)."""
    by_pid = {host.app.popen.pid: host for host in hosts}
    answers = await invoke_all(session, via, actor_ids, "whoami")
    owners = {}
    for actor_id, answer in answers.items():
        assert (answer["type"], answer["id"]) == (ACTOR_TYPE, actor_id), answer
        host = by_pid.get(answer["pid"])
        assert host is not None, f"{actor_id} answered from a process of no known host: {answer}"
        assert answer["app"] == host.app_id, (answer, host.label)
        owners[actor_id] = host
    return owners


def app_ids_of(owners: Mapping[str, ActorHost]) -> dict[str, str]:
    return {actor_id: host.app_id for actor_id, host in owners.items()}


# -- daprplane placement locate ----------------------------------------------------------------


@dataclass(frozen=True)
class LocateRun:
    """One run of the locate tool: its command line, exit code and output."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def describe(self) -> str:
        return (
            f"`{' '.join(self.argv)}` exited {self.returncode}\n"
            f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}"
        )

    def answer(self) -> dict[str, Any]:
        assert self.returncode == 0, self.describe()
        return json.loads(self.stdout)  # type: ignore[no-any-return]


def daprplane_launcher() -> Path:
    launcher = Path(sys.executable).parent / "daprplane"
    assert launcher.exists(), f"daprplane is not installed next to {sys.executable}"
    return launcher


def run_locate(
    control_plane: ControlPlane,
    actor_id: str,
    *,
    namespace: str,
    actor_type: str = ACTOR_TYPE,
    app_id: str = "daprplane-locate",
) -> LocateRun:
    """``daprplane placement locate --json`` over mTLS: an SVID from our sentry for ``app_id``
    in ``namespace``, placement's SPIFFE ID checked against the control plane's."""
    argv = (
        str(daprplane_launcher()),
        "placement",
        "locate",
        f"--address={control_plane.placement_address}",
        f"--namespace={namespace}",
        f"--type={actor_type}",
        f"--id={actor_id}",
        f"--app-id={app_id}",
        f"--host-name={app_id}",
        "--timeout=20s",
        "--tls",
        f"--trust-anchors-file={control_plane.credentials / 'ca.crt'}",
        f"--sentry-address={control_plane.sentry_address}",
        f"--trust-domain={TRUST_DOMAIN}",
        f"--control-plane-namespace={CONTROL_PLANE_NAMESPACE}",
        "--json",
        "--verbose",
    )
    completed = subprocess.run(
        argv,
        env={},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=LOCATE_TIMEOUT,
        cwd="/",
    )
    return LocateRun(argv, completed.returncode, completed.stdout, completed.stderr)
