"""The SignCertificate load generator of ``bench/bench_sentry.py``: a small Go program
(``_sentry_load_go/``) that behaves like daprd sidecars, built once into the cache.

It is Go so that the client costs little CPU: sentry and the load share the machine's cores, and
a Python client (gRPC's Python layer plus a CSR per call) would take most of them. Each simulated
sidecar holds one TLS connection, checks sentry's chain and SPIFFE ID as go-spiffe does, and sends
a CSR of its own fresh key (Ed25519 as daprd, or ECDSA P-256); keys are made before the clock
starts. The module pins the versions Dapr 1.18.3 builds with, so a machine that built Dapr's
binaries (tests/dapr) has every module already.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests import gobuild

_TOOLS = gobuild.GoTools(
    directory=Path(__file__).resolve().parent / "_sentry_load_go",
    cache_name="bench",
    log_tag="sentry-load",
    purpose="the sentry load generator",
    instead="install Go",
)
_NAME = "sentry-load"
T = TypeVar("T")


def load_generator() -> Path:
    """The built load generator, building it first when the module files changed."""
    flags = ["-trimpath", "-ldflags=-s -w"]
    # The key covers go.mod, go.sum and the flags; the source is added here.
    source = hashlib.sha256((_TOOLS.directory / "main.go").read_bytes()).hexdigest()[:10]
    dest = _TOOLS.cache_root() / f"sentry-load-{_TOOLS.key_hash(flags)}-{source}"
    _TOOLS.build_once(
        dest,
        lambda: gobuild.executable(dest / _NAME),
        lambda: _TOOLS.build(
            dest, flags, ["."], [_NAME], what=_NAME, note="", version_text="",
            go_names={_NAME: "sentryload"},
        ),
        _NAME,
    )  # fmt: skip
    return dest / _NAME


@dataclass(frozen=True)
class LoadRun:
    requests: int
    seconds: float
    latencies: list[float]  # seconds, one per call
    errors: int
    first_error: str
    client_cpu: float

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def run_load(
    generator: Path,
    address: str,
    anchors: Path,
    *,
    clients: int,
    requests: int,
    key: str,
    readings: Callable[[], T],
) -> tuple[LoadRun, T, T]:
    """One measured run: ``requests`` calls from ``clients`` sidecars with ``key`` CSRs.
    ``readings()`` is taken once the connections are open and again after the last response."""
    command = [
        str(generator),
        f"-addr={address}",
        f"-anchors={anchors}",
        f"-clients={clients}",
        f"-requests={requests}",
        f"-key={key}",
    ]
    with subprocess.Popen(
        command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            process.kill()
            _, error = process.communicate()
            raise RuntimeError(f"load generator failed: {error.decode(errors='replace')}")
        before = readings()
        process.stdin.write(b"go\n")
        process.stdin.flush()
        output = process.stdout.readline()
        after = readings()
        _, error = process.communicate(timeout=60)
    if process.returncode != 0 or not output:
        raise RuntimeError(f"load generator failed: {error.decode(errors='replace')}")
    result = json.loads(output)
    run = LoadRun(
        requests=requests,
        seconds=result["seconds"],
        latencies=[us / 1e6 for us in result["latencies_us"]],
        errors=result["errors"],
        first_error=result.get("first_error", ""),
        client_cpu=result["client_cpu"],
    )
    return run, before, after
