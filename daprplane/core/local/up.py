"""``daprplane up``: a control plane on this machine, in one process tree, until Ctrl-C.

Standalone mode starts sentry (its CA kept in the state directory) and placement with mTLS
through it; with ``--kubeconfig`` all four components run against that cluster (see
:mod:`.cluster_up`). Each component must report healthy before the next starts; then ``up``
prints what a sidecar needs and watches. Ctrl-C (or SIGTERM) stops everything and exits 0; a
component that fails to start or dies stops the rest and exits 1 with the end of its log.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import io
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from daprplane.core.kube.client import KubeApiError
from daprplane.core.local import console
from daprplane.core.local import record as records
from daprplane.core.local.cluster_bootstrap import ClusterError
from daprplane.core.local.cluster_up import ClusterRun
from daprplane.core.local.plan import Settings, standalone
from daprplane.core.local.supervisor import ChildExited, NotReady, Supervisor

READY_TIMEOUT = 60.0


class UpError(Exception):
    """Something that keeps ``up`` from starting, said in one line."""


@contextlib.contextmanager
def exclusive(settings: Settings) -> Iterator[None]:
    """One ``up`` per state directory: a second would share the CA files and the record."""
    settings.state.root.mkdir(mode=0o700, parents=True, exist_ok=True)
    with settings.state.lock.open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UpError(
                f"another daprplane up is running with state directory {settings.state.root}"
            ) from None
        yield


def check_ports_free(settings: Settings) -> None:
    for name, port in settings.ports().items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind((settings.listen_address, port))
            except OSError as error:
                if error.errno == errno.EADDRINUSE:
                    raise UpError(
                        f"port {port} for {name} is in use on {settings.listen_address} (another "
                        f"Dapr or daprplane control plane?): choose one with --{name}-port"
                    ) from None
                raise UpError(
                    f"cannot listen on {settings.listen_address}:{port}: {error}"
                ) from None


def _start_standalone(supervisor: Supervisor, settings: Settings) -> None:
    ca_existed = settings.state.trust_anchors.exists()
    plan = standalone(settings)
    for component in plan:
        log = settings.state.log_of(component.name)
        console.say(component.name, f"starting (log: {log})")
        child = supervisor.start(component, log)
        seconds = supervisor.wait_ready(child, settings.listen_address, READY_TIMEOUT)
        console.say(component.name, f"ready in {seconds:.1f}s on {component.address}", fg="green")
        if component.name == "sentry":
            what = "kept" if ca_existed else "created"
            console.say("", f"CA {what}: {settings.state.certs}")
    console.standalone_summary(settings, plan)


def _record(supervisor: Supervisor, settings: Settings, anchors: Path) -> records.UpRecord:
    return records.UpRecord(
        pid=os.getpid(),
        started_at=time.time(),
        mode=settings.mode,
        listen_address=settings.listen_address,
        trust_domain=settings.trust_domain,
        namespace=settings.namespace,
        trust_anchors=str(anchors),
        components=tuple(
            records.RunningComponent(
                name=child.name,
                pid=child.popen.pid,
                address=child.component.address,
                healthz_port=child.component.healthz_port,
                metrics_port=child.component.metrics_port,
                log=str(child.log),
                extras=dict(child.component.extras),
            )
            for child in supervisor.children
        ),
    )


def run(settings: Settings) -> int:
    """Start, watch, stop; the exit code of ``daprplane up``."""
    # Progress must show as it happens, also when the output goes to a file or a pipe.
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):
            stream.reconfigure(line_buffering=True)
    supervisor = Supervisor()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        supervisor.stop_requested.set()

    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, request_stop)
    try:
        with exclusive(settings):
            check_ports_free(settings)
            settings.state.prepare()
            click.echo(
                f"daprplane up: {settings.mode} control plane, state in {settings.state.root}"
            )
            return _run_locked(supervisor, settings)
    except UpError as error:
        console.error(str(error))
        return 1


def _run_locked(supervisor: Supervisor, settings: Settings) -> int:
    cluster = ClusterRun(settings) if settings.kubeconfig else None
    code = 0
    try:
        if cluster is not None:
            cluster.start(supervisor)
        else:
            _start_standalone(supervisor, settings)
    except ChildExited as exited:
        console.report_failure(
            exited.child, f"exited with code {exited.child.exit_code()} at start"
        )
        code = 1
    except NotReady as problem:
        if not supervisor.stop_requested.is_set():
            console.report_failure(supervisor.children[-1], str(problem))
            code = 1
    except (ClusterError, KubeApiError, OSError) as error:
        console.error(
            f"{type(error).__name__}: {error}" if isinstance(error, OSError) else str(error)
        )
        code = 1
    if code == 0 and not supervisor.stop_requested.is_set():
        anchors = settings.state.cluster / "ca.crt" if cluster else settings.state.trust_anchors
        records.write(settings.state.record, _record(supervisor, settings, anchors))
        died = supervisor.watch()
        if died is not None:
            console.report_failure(died, f"exited unexpectedly with code {died.exit_code()}")
            code = 1
    click.echo("\nstopping")
    try:
        supervisor.stop_all(console.stopped)
        for cleanup_problem in cluster.stop() if cluster else []:
            console.error(cleanup_problem)
    finally:
        records.remove(settings.state.record)
    return code
