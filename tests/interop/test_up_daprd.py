"""A real daprd 1.18.3, started with exactly what ``daprplane up`` prints, hosts actors.

``up`` prints an ``export DAPR_TRUST_ANCHORS=...`` line and a ``daprd`` command. The test runs the
export line through a POSIX shell, takes the daprd flags as printed and adds only what belongs to
the app (its ID and port, ports on loopback, a state store for actors). daprd then gets its
identity from ``up``'s sentry and joins ``up``'s placement; ``daprplane status`` shows the table;
Ctrl-C stops ``up`` with exit 0 while the sidecar stays up.
"""

from __future__ import annotations

import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest

from tests.integration.launchers import free_port
from tests.integration.local.up_process import UpProcess, status_json
from tests.interop.conftest import (
    ACTOR_TYPE,
    STARTUP_TIMEOUT,
    ActorHost,
    Processes,
    _daprd_ready,
    _start_app,
    _write_resources,
    daprd_build_allowance,
    wait_until,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.timeout(180 + daprd_build_allowance()),
]

APP_ID = "upapp"


def _exported(export_line: str, name: str) -> str:
    """The value a POSIX shell gives ``name`` after running ``export_line``."""
    shell = subprocess.run(
        ["sh", "-c", f'{export_line}\nprintf %s "${name}"'],
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    )
    return shell.stdout


def test_daprd_runs_with_the_printed_flags(
    processes: Processes, daprd_binary: Path, tmp_path: Path
) -> None:
    up = UpProcess.start(tmp_path / "state")
    try:
        up.wait_up()
        export_line, command = up.sidecar_lines()
        assert export_line.startswith("export DAPR_TRUST_ANCHORS=")
        anchors = _exported(export_line, "DAPR_TRUST_ANCHORS")
        # Command substitution drops the final newline, as shells do.
        assert anchors == (tmp_path / "state" / "certs" / "ca.crt").read_text().rstrip("\n")
        assert command[0] == "daprd"
        printed_flags = command[1:]
        assert "--enable-mtls" in printed_flags

        app, app_port = _start_app(processes, APP_ID)
        http_port, internal_port = free_port(), free_port()
        argv = [
            str(daprd_binary),
            *[flag for flag in printed_flags if flag not in ("--app-id", "myapp")],
            f"--app-id={APP_ID}",
            f"--app-port={app_port}",
            "--app-channel-address=127.0.0.1",
            f"--dapr-http-port={http_port}",
            f"--dapr-grpc-port={free_port()}",
            "--dapr-listen-addresses=127.0.0.1",
            f"--dapr-internal-grpc-port={internal_port}",
            "--dapr-internal-grpc-listen-address=127.0.0.1",
            "--enable-metrics=false",
            f"--resources-path={_write_resources(tmp_path / 'resources')}",
        ]
        # DAPR_HOST_IP keeps the address daprd announces to placement on loopback.
        env = {"DAPR_TRUST_ANCHORS": anchors, "DAPR_HOST_IP": "127.0.0.1"}
        daprd = processes.start("upapp-daprd", argv, env)
        host = ActorHost(APP_ID, app, app_port, daprd, http_port, internal_port)
        wait_until(
            lambda: _daprd_ready(host),
            timeout=STARTUP_TIMEOUT,
            what=lambda: f"daprd to join up's placement (metadata: {host.metadata()})",
            watch=[daprd, app],
        )
        url = f"{host.dapr_url}/v1.0/actors/{ACTOR_TYPE}/one/method/increment"
        request = urllib.request.Request(url, data=b"{}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as answer:
            assert answer.status == 200

        code, report = status_json(tmp_path / "state")
        assert code == 0, report
        placement = next(c for c in report["components"] if c["name"] == "placement")
        table = placement["details"]["table[default]"]
        assert table.endswith(", 1 hosts"), table
        assert int(table.split(",")[0].removeprefix("v")) >= 1
        assert placement["details"]["sidecars"] == "1"
    finally:
        code = up.stop(signal.SIGINT)
    assert code == 0, up.output()
