"""Sentry benchmark: daprplane's sentry side by side with Dapr's, signing for daprd-like clients.

    python bench/bench_sentry.py                  # prints a markdown table
    python bench/bench_sentry.py --write-docs     # also refreshes docs/benchmarks.md
    python bench/bench_sentry.py --check          # exit 1 if a target is missed

Both sentries run standalone (generated Ed25519 CA, insecure validator), started by absolute
path with an empty environment. The load comes from ``_sentry_load``: a Go program in which each
simulated sidecar holds one TLS connection (chain and SPIFFE ID checked as daprd checks them) and
sends a CSR of its own fresh key, Ed25519 as daprd does or ECDSA P-256. For each concurrency (1,
16 and 64 sidecars) and key type, runs alternate between the two sentries, round after round, so
that other work on this shared machine slows both alike; the tables give medians over rounds.
CPU per certificate is the utime + stime the sentry's processes (the main one and any workers)
used between the first and the last call of a run, over the calls; RSS is summed over the same
processes after the last round. ``main(argv)`` is the entry point for the nox session.
"""

from __future__ import annotations

import argparse
import datetime
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _processes import Process, SentryServer, free_port
from _report import add_report_arguments, machine_line, write_block
from _sentry_load import LoadRun, load_generator, run_load

CONCURRENCY = (1, 16, 64)
KEYS = ("ed25519", "p256")
#: Targets, as ours / Dapr's: throughput at 16 and 64 clients at least Dapr's, CPU per
#: certificate at most 1.2x, p99 no worse.
TARGET_CPU_RATIO = 1.2


# -- processes -------------------------------------------------------------------------------


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (sentry's worker processes)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants, live ones only."""
    total = 0
    for member in _tree(pid):
        try:
            fields = Path(f"/proc/{member}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    total = 0
    for member in _tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


class Sentry:
    """One sentry (ours or Dapr's) in its own temporary directory, serving 127.0.0.1:port."""

    def __init__(self, name: str, executable: str | None, workers: str = "") -> None:
        self.name = name
        self.directory = Path(tempfile.mkdtemp(prefix=f"bench-sentry-{name}-"))
        self.port = free_port()
        self.process: Process
        if executable is None:
            server = SentryServer(
                self.directory,
                self.port,
                "--healthz-listen-address=127.0.0.1",
                "--metrics-listen-address=127.0.0.1",
                env={"DAPRPLANE_SENTRY_WORKERS": workers} if workers else {},
                extra="sentry",
            )
            self.process, self.healthz = server, server.healthz
        else:
            credentials = self.directory / "credentials"
            credentials.mkdir()
            (self.directory / "config.yaml").write_text("")
            healthz = free_port()
            self.healthz = f"http://127.0.0.1:{healthz}/healthz"
            self.process = Process(
                name,
                [
                    executable,
                    f"--config={self.directory / 'config.yaml'}",
                    f"--issuer-credentials={credentials}",
                    f"--port={self.port}",
                    "--listen-address=127.0.0.1",
                    f"--healthz-port={healthz}",
                    f"--metrics-port={free_port()}",
                ],
                {},
                self.directory / "sentry.log",
            )
        self.process.wait_healthy(self.healthz, timeout=30)
        # A sentry that generated its CA sees its own write and reloads about 2 s later (Dapr's
        # restarts its servers then): let that pass before measuring.
        deadline = time.monotonic() + 15
        while (
            time.monotonic() < deadline and b"reloading" not in self.process.log_path.read_bytes()
        ):
            time.sleep(0.2)
        time.sleep(0.5)
        self.process.wait_healthy(self.healthz, timeout=30)

    @property
    def pid(self) -> int:
        return self.process.popen.pid

    @property
    def anchors(self) -> Path:
        return self.directory / "credentials" / "ca.crt"

    def stop(self) -> None:
        self.process.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- measuring -------------------------------------------------------------------------------


@dataclass
class Cell:
    """Every run of one sentry at one concurrency and key type."""

    runs: list[LoadRun] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # sentry CPU seconds per run

    def median(self, values: list[float]) -> float:
        return statistics.median(values)

    @property
    def per_second(self) -> float:
        return self.median([r.per_second for r in self.runs])

    @property
    def cpu_per_certificate(self) -> float:
        return self.median([c / r.requests for c, r in zip(self.cpu, self.runs, strict=True)])

    def latency(self, fraction: float) -> float:
        return self.median([r.percentile(fraction) for r in self.runs])

    @property
    def spread(self) -> str:
        rates = [r.per_second for r in self.runs]
        return f"{min(rates):,.0f}-{max(rates):,.0f}"


def measure(
    sentry: Sentry, generator: Path, clients: int, requests: int, key: str, cell: Cell
) -> None:
    run, before, after = run_load(
        generator,
        f"127.0.0.1:{sentry.port}",
        sentry.anchors,
        clients=clients,
        requests=requests,
        key=key,
        readings=lambda: cpu_seconds(sentry.pid),
    )
    if run.errors:
        raise RuntimeError(f"{sentry.name}: {run.errors} failed calls: {run.first_error}")
    cell.runs.append(run)
    cell.cpu.append(after - before)


# -- report ----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def markdown_table(
    cells: dict[tuple[str, int, str], Cell], names: Sequence[str], rss: dict[str, float]
) -> str:
    dapr = "dapr" in names
    head = "| clients | key | sentry | certificates/s (range) | p50 ms | p99 ms | CPU µs/cert |"
    rows = [head, "|---:|---|---|---:|---:|---:|---:|"]
    for clients in CONCURRENCY:
        for key in KEYS:
            for name in names:
                cell = cells[(name, clients, key)]
                label = "daprplane" if name == "ours" else "Dapr 1.18.3"
                rows.append(
                    f"| {clients} | {key} | {label} | {cell.per_second:,.0f} ({cell.spread}) "
                    f"| {_ms(cell.latency(0.5))} | {_ms(cell.latency(0.99))} "
                    f"| {cell.cpu_per_certificate * 1e6:,.0f} |"
                )
            if dapr:
                ours, theirs = cells[("ours", clients, key)], cells[("dapr", clients, key)]
                rows.append(
                    f"| {clients} | {key} | ours / Dapr's "
                    f"| {ours.per_second / theirs.per_second:.2f} "
                    f"| {ours.latency(0.5) / theirs.latency(0.5):.2f} "
                    f"| {ours.latency(0.99) / theirs.latency(0.99):.2f} "
                    f"| {ours.cpu_per_certificate / theirs.cpu_per_certificate:.2f} |"
                )
    memory = ", ".join(
        f"{'daprplane' if n == 'ours' else 'Dapr'} {rss[n]:.0f} MiB" for n in names if n in rss
    )
    return "\n".join(rows) + f"\n\nRSS after the runs (all processes): {memory}."


def missed_targets(cells: dict[tuple[str, int, str], Cell]) -> list[str]:
    missed = []
    for clients in CONCURRENCY:
        for key in KEYS:
            ours, dapr = cells[("ours", clients, key)], cells.get(("dapr", clients, key))
            if dapr is None:
                continue
            where = f"{clients} clients, {key}"
            if clients >= 16 and ours.per_second < dapr.per_second:
                missed.append(f"throughput {where}")
            if ours.cpu_per_certificate > TARGET_CPU_RATIO * dapr.cpu_per_certificate:
                missed.append(f"CPU per certificate {where}")
            if ours.latency(0.99) > dapr.latency(0.99):
                missed.append(f"p99 {where}")
    return missed


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=4000, help="calls per run (16, 64)")
    parser.add_argument("--requests-single", type=int, default=1500, help="calls per run (1)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds; medians")
    parser.add_argument("--dapr-sentry", help="Dapr's sentry binary (default: built); none")
    parser.add_argument(
        "--workers", default="", help="daprplane's DAPRPLANE_SENTRY_WORKERS (default: unset)"
    )
    add_report_arguments(parser, "the table (sentry section)")
    return parser.parse_args(argv)


def dapr_sentry(args: argparse.Namespace) -> tuple[str | None, str]:
    if args.dapr_sentry == "none":
        return None, "--dapr-sentry=none"
    if args.dapr_sentry:
        return args.dapr_sentry, ""
    try:
        from tests.dapr.binaries import binary

        return str(binary("sentry")), ""
    except Exception as error:  # no Go, no network: report daprplane alone, and say why
        return None, f"{type(error).__name__}: {error}"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    dapr_binary, why = dapr_sentry(args)
    generator = load_generator()
    executables: dict[str, str | None] = {"ours": None}
    if dapr_binary:
        executables["dapr"] = dapr_binary
    names = list(executables)
    sentries: dict[str, Sentry] = {}
    cells: dict[tuple[str, int, str], Cell] = {}
    rss: dict[str, float] = {}
    try:
        for name, executable in executables.items():
            sentries[name] = Sentry(name, executable, args.workers if name == "ours" else "")
        for sentry in sentries.values():  # warm-up: imports, caches, first handshakes
            measure(sentry, generator, 16, 500, "ed25519", Cell())
        for round_number in range(args.rounds):
            for clients in CONCURRENCY:
                requests = args.requests_single if clients == 1 else args.requests
                for key in KEYS:
                    # Alternate which one goes first, so neither always follows the other.
                    order = names if round_number % 2 == 0 else names[::-1]
                    for name in order:
                        cell = cells.setdefault((name, clients, key), Cell())
                        measure(sentries[name], generator, clients, requests, key, cell)
        for name, sentry in sentries.items():
            rss[name] = rss_mib(sentry.pid)
    finally:
        for sentry in sentries.values():
            sentry.stop()
    table = markdown_table(cells, names, rss)
    today = datetime.date.today().isoformat()
    heading = (
        f"Medians of {args.rounds} alternating rounds, {args.requests:,} calls per run "
        f"({args.requests_single:,} with one client), {today}; {machine_line()}."
    )
    print(f"Sentry. {heading}\n\n{table}")
    if not dapr_binary:
        print(f"\nDapr's sentry was not measured: {why}")
    if args.output is not None:
        args.output.write_text(table + "\n", encoding="utf-8")
    if args.write_docs is not None:
        note = (
            "Targets: at 16 and 64 clients at least Dapr's throughput; CPU per certificate at "
            f"most {TARGET_CPU_RATIO}x Dapr's; p99 no worse. The load generator, both sentries "
            "(in turn) and whatever else runs on the machine share its cores."
        )
        write_block(
            args.write_docs, "## Sentry", "bench_sentry", "bench_sentry.py",
            f"{heading}\n\n{table}\n\n{note}",
        )  # fmt: skip
    missed = missed_targets(cells)
    if missed:
        print("\ntargets missed: " + "; ".join(missed), file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
