"""``daprplane up``: a control plane on this machine, in one process tree, until Ctrl-C.

Standalone mode starts sentry (its CA kept in the state directory) and placement with mTLS
through it, waits for each to report healthy, prints what a self-hosted ``daprd`` needs, then
watches. Ctrl-C (or SIGTERM) stops everything and exits 0; a component that fails to start or
dies stops the rest and exits 1 with the end of its log.
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
from collections.abc import Iterator
from types import FrameType

import click

from daprplane.core.local import record as records
from daprplane.core.local.certs import certificate_file, describe_expiry
from daprplane.core.local.plan import ComponentProcess, Settings, sidecar_hints, standalone
from daprplane.core.local.supervisor import Child, ChildExited, NotReady, Supervisor

READY_TIMEOUT = 60.0
_NAME_WIDTH = 11


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
    for name, port in (("sentry", settings.sentry_port), ("placement", settings.placement_port)):
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


def _say(name: str, message: str, **style: object) -> None:
    click.echo(f"  {click.style(f'{name:<{_NAME_WIDTH}}', **style)}{message}")  # type: ignore[arg-type]


def _report_failure(child: Child, problem: str) -> None:
    _say(child.name, problem, fg="red", bold=True)
    tail = child.log_tail()
    if tail:
        click.echo(f"\n  last lines of {child.log}:")
        click.echo("\n".join(f"    {line}" for line in tail.splitlines()))


def _summary(settings: Settings, components: list[ComponentProcess]) -> None:
    host = settings.listen_address
    click.echo("\n" + click.style("daprplane is up", fg="green", bold=True) + " (standalone)\n")
    click.echo(f"  {'component':<{_NAME_WIDTH}}{'address':<22}{'healthz':<22}metrics")
    for component in components:
        click.echo(
            f"  {component.name:<{_NAME_WIDTH}}{component.address:<22}"
            f"{f'{host}:{component.healthz_port}':<22}{host}:{component.metrics_port}"
        )
        for label, value in component.extras.items():
            click.echo(f"  {'':<{_NAME_WIDTH}}{label}: {value}")
    root = certificate_file(settings.state.trust_anchors)
    click.echo(
        f"\n  trust anchors  {settings.state.trust_anchors}  (root expires {describe_expiry(root)})"
    )
    click.echo(f"  trust domain   {settings.trust_domain}, namespace {settings.namespace}")
    click.echo("\nRun a self-hosted sidecar against it (add your app's own flags):\n")
    for line in sidecar_hints(settings, components).shell_lines():
        click.echo(f"  {line}")
    click.echo(
        f"\nLogs in {settings.state.logs}. `daprplane status` shows health; "
        "Ctrl-C stops everything."
    )


def _start_all(supervisor: Supervisor, settings: Settings, plan: list[ComponentProcess]) -> None:
    ca_existed = settings.state.trust_anchors.exists()
    for component in plan:
        log = settings.state.log_of(component.name)
        _say(component.name, f"starting (log: {log})")
        child = supervisor.start(component, log)
        seconds = supervisor.wait_ready(child, settings.listen_address, READY_TIMEOUT)
        _say(component.name, f"ready in {seconds:.1f}s on {component.address}", fg="green")
        if component.name == "sentry":
            what = "kept" if ca_existed else "created"
            _say("", f"CA {what}: {settings.state.certs}")


def _record(supervisor: Supervisor, settings: Settings) -> records.UpRecord:
    return records.UpRecord(
        pid=os.getpid(),
        started_at=records.now(),
        mode="standalone",
        listen_address=settings.listen_address,
        trust_domain=settings.trust_domain,
        namespace=settings.namespace,
        trust_anchors=str(settings.state.trust_anchors),
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


def _stopped(child: Child, code: int | None) -> None:
    if code is None:
        _say(child.name, "killed: it did not stop in time", fg="red")
    elif code == 0:
        _say(child.name, "stopped")
    else:
        _say(child.name, f"exited with code {code}", fg="red")


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
            click.echo(f"daprplane up: standalone control plane, state in {settings.state.root}")
            code = _run_locked(supervisor, settings)
    except UpError as error:
        click.echo(click.style("error: ", fg="red", bold=True) + str(error), err=True)
        return 1
    return code


def _run_locked(supervisor: Supervisor, settings: Settings) -> int:
    plan = standalone(settings)
    code = 0
    try:
        _start_all(supervisor, settings, plan)
    except ChildExited as exited:
        _report_failure(exited.child, f"exited with code {exited.child.exit_code()} at start")
        code = 1
    except NotReady as problem:
        if not supervisor.stop_requested.is_set():
            _report_failure(supervisor.children[-1], str(problem))
            code = 1
    if code == 0 and not supervisor.stop_requested.is_set():
        records.write(settings.state.record, _record(supervisor, settings))
        _summary(settings, plan)
        died = supervisor.watch()
        if died is not None:
            _report_failure(died, f"exited unexpectedly with code {died.exit_code()}")
            code = 1
    click.echo("\nstopping")
    try:
        supervisor.stop_all(_stopped)
    finally:
        records.remove(settings.state.record)
    return code
