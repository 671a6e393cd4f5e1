"""Start-up benchmark: time to healthy, idle memory and time to a fatal exit, per launcher,
against Dapr's own binaries.

    python bench/bench_startup.py                         # all four components, 7 rounds
    python bench/bench_startup.py --components placement,sentry --rounds 11
    python bench/bench_startup.py --write-docs            # refreshes docs/benchmarks.md
    python bench/bench_startup.py --check                 # exit 1 when a target is missed

Each launcher next to this Python (``daprplane-<component>``) and Dapr's binary of the same name
(``cmd/<component>`` of ``github.com/dapr/dapr``, built by ``tests/dapr/binaries.py``) is started
by absolute path with an explicit environment, in alternating order, ``--rounds`` times after
one warm-up round; the medians are reported with the ratio ours / Dapr's. Per start:

- **healthy**: from ``exec`` until ``GET /healthz`` first answers 200 (polled every 2 ms over
  loopback, one short connection per poll);
- **idle RSS**: ``VmRSS`` of the process one second after it became healthy;
- **fatal**: from ``exec`` until the process has exited with code 1 on a start-up error both
  implementations treat as fatal (placement: its gRPC port is taken; sentry: its JWKS token
  validator's source cannot be fetched; injector: ``SIDECAR_IMAGE`` is not set; operator: its
  kubeconfig does not exist).

Placement and sentry run standalone (sentry generates its CA in a fresh directory at every
start, as a first start does). The injector and the operator need an API server and a sentry:
they run against the test cluster of ``tests/k8s`` (kube-apiserver + etcd, built from Go
modules) and daprplane's sentry, as in ``bench_injector.py`` and ``bench_operator.py``, with
Dapr's ``ENABLE_WEBHOOKS=false`` and ``--disable-leader-election`` for both operators.

Only the built-in plugins are loaded (``DAPRPLANE_PLUGINS``), as in the container image: a test
plugin installed next to the package would otherwise be measured with it.
``--pythonpath DIR`` runs our launchers with ``DIR`` first on ``sys.path``, to measure another
checkout of the package (say, the previous commit) with the same interpreter and libraries.
``main(argv)`` is the entry point for the nox session.
"""

from __future__ import annotations

import argparse
import datetime
import os
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _processes import SentryServer, free_port, launcher
from _report import add_report_arguments, machine_line, write_block

COMPONENTS = ("placement", "sentry", "injector", "operator")
BUILT_IN_PLUGINS = "placement,sentry,injector,operator,injector-registry-mirror"
TARGET_HEALTHY_RATIO = 5.0
TARGET_RSS_RATIO = 1.3
TARGET_FATAL_MS = 200.0
IDLE_SECONDS = 1.0
POLL_SECONDS = 0.002
NAMESPACE = "dapr-system"
TRUST_DOMAIN = "cluster.local"


# -- measuring one process ---------------------------------------------------------------------


def _healthz_status(port: int) -> int | None:
    """The status of ``GET /healthz`` on loopback, or None while nothing answers."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            line = sock.makefile("rb").readline()
    except OSError:
        return None
    parts = line.split()
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def _rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass(frozen=True)
class Start:
    """How to start one implementation: argv and environment; ``healthz`` is the port to poll."""

    argv: list[str]
    env: dict[str, str]
    healthz: int = 0


def time_to_healthy(start: Start, log: Path, timeout: float = 60) -> tuple[float, float]:
    """Seconds from exec to the first 200 from ``/healthz``, and the idle RSS in MiB."""
    with log.open("wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(start.argv, env=start.env, cwd="/", stdout=out, stderr=out)
    try:
        while _healthz_status(start.healthz) != 200:
            if process.poll() is not None or time.perf_counter() - began > timeout:
                raise SystemExit(f"{start.argv[0]} did not become healthy:\n{log.read_text()}")
            time.sleep(POLL_SECONDS)
        healthy = time.perf_counter() - began
        time.sleep(IDLE_SECONDS)
        return healthy, _rss_mib(process.pid)
    finally:
        _stop(process)


def time_to_fatal(start: Start, log: Path, timeout: float = 30) -> float:
    """Seconds from exec to exit; the exit code must be 1 (a fatal start-up error)."""
    with log.open("wb") as out:
        began = time.perf_counter()
        process = subprocess.Popen(start.argv, env=start.env, cwd="/", stdout=out, stderr=out)
        try:
            code = process.wait(timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise SystemExit(f"{start.argv[0]} did not exit:\n{log.read_text()}") from None
        elapsed = time.perf_counter() - began
    if code != 1:
        raise SystemExit(f"{start.argv[0]} exited {code}, expected 1:\n{log.read_text()}")
    return elapsed


# -- what each component needs -------------------------------------------------------------------


def _shared(healthz: int) -> list[str]:
    return [
        f"--healthz-port={healthz}",
        "--healthz-listen-address=127.0.0.1",
        f"--metrics-port={free_port()}",
    ]


@dataclass
class Environment:
    """Files, held ports and (for the injector and the operator) the cluster and sentry."""

    directory: Path
    ours_env: dict[str, str]
    cluster: Any = None
    sentry: SentryServer | None = None
    sentry_address: str = ""
    busy: list[socket.socket] = field(default_factory=list)

    def held_port(self) -> int:
        """A port that something already listens on, for the 'port in use' fatal error."""
        sock = socket.socket()
        sock.bind(("0.0.0.0", 0))
        sock.listen()
        self.busy.append(sock)
        return int(sock.getsockname()[1])

    def fresh(self, name: str) -> Path:
        path = self.directory / f"{name}-{secrets.token_hex(3)}"
        path.mkdir()
        return path

    def close(self) -> None:
        for sock in self.busy:
            sock.close()
        if self.sentry is not None:
            self.sentry.stop()
        if self.cluster is not None:
            self.cluster.stop()


def placement(env: Environment, executable: str, ours: bool) -> Start:
    healthz = free_port()
    args = [
        executable,
        f"--port={free_port()}",
        "--listen-address=127.0.0.1",
        # The single raft peer binds 8201 unless told otherwise (in both implementations).
        f"--initial-cluster=dapr-placement-0=127.0.0.1:{free_port()}",
        *_shared(healthz),
    ]
    return Start(args, env.ours_env if ours else {}, healthz)


def placement_fatal(env: Environment, executable: str, ours: bool) -> Start:
    start = placement(env, executable, ours)
    argv = [arg for arg in start.argv if not arg.startswith("--port=")]
    return Start([*argv, f"--port={env.held_port()}"], start.env)


def _sentry_args(env: Environment, executable: str, config: str) -> tuple[list[str], int]:
    directory = env.fresh("sentry")
    (directory / "credentials").mkdir()
    (directory / "config.yaml").write_text(config)
    healthz = free_port()
    return [
        executable,
        f"--config={directory / 'config.yaml'}",
        f"--issuer-credentials={directory / 'credentials'}",
        f"--port={free_port()}",
        "--listen-address=127.0.0.1",
        *_shared(healthz),
    ], healthz


def sentry(env: Environment, executable: str, ours: bool) -> Start:
    args, healthz = _sentry_args(env, executable, "")
    return Start(args, env.ours_env if ours else {}, healthz)


def sentry_fatal(env: Environment, executable: str, ours: bool) -> Start:
    closed = free_port()  # nothing listens: the first fetch is refused at once
    config = (
        "spec:\n  mtls:\n    tokenValidators:\n    - name: jwks\n      options:\n"
        f"        source: http://127.0.0.1:{closed}/jwks.json\n"
    )
    args, _ = _sentry_args(env, executable, config)
    return Start(args, env.ours_env if ours else {})


def _kube_env(env: Environment, ours: bool) -> dict[str, str]:
    base = env.ours_env if ours else {}
    return {
        **base,
        "NAMESPACE": NAMESPACE,
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
    }


def _injector_env(env: Environment, ours: bool) -> dict[str, str]:
    assert env.sentry is not None
    return {
        **_kube_env(env, ours),
        "SIDECAR_IMAGE": "ghcr.io/dapr/daprd:1.18.3",
        "SIDECAR_IMAGE_PULL_POLICY": "IfNotPresent",
        "KUBE_CLUSTER_DOMAIN": TRUST_DOMAIN,
        "DAPR_TRUST_ANCHORS_FILE": str(env.sentry.trust_anchors_file),
        "DAPR_SENTRY_ADDRESS": env.sentry_address,
        "DAPR_CONTROL_PLANE_TRUST_DOMAIN": TRUST_DOMAIN,
    }


def injector(env: Environment, executable: str, ours: bool) -> Start:
    healthz = free_port()
    args = [
        executable,
        f"--port={free_port()}",
        "--listen-address=127.0.0.1",
        f"--kubeconfig={env.cluster.kubeconfig}",
        *_shared(healthz),
    ]
    return Start(args, _injector_env(env, ours), healthz)


def injector_fatal(env: Environment, executable: str, ours: bool) -> Start:
    healthz = free_port()
    args = [executable, f"--port={free_port()}", *_shared(healthz)]
    return Start(args, _kube_env(env, ours))  # no SIDECAR_IMAGE


def operator(env: Environment, executable: str, ours: bool) -> Start:
    assert env.sentry is not None
    healthz = free_port()
    args = [
        executable,
        f"--port={free_port()}",
        f"--webhook-server-port={free_port()}",
        f"--kubeconfig={env.cluster.kubeconfig}",
        f"--trust-anchors-file={env.sentry.trust_anchors_file}",
        "--disable-leader-election",
        "--disable-service-reconciler",
        *_shared(healthz),
    ]
    if ours:  # Dapr's operator ignores its listen address flag
        args.append("--listen-address=127.0.0.1")
    return Start(args, {**_kube_env(env, ours), "ENABLE_WEBHOOKS": "false"}, healthz)


def operator_fatal(env: Environment, executable: str, ours: bool) -> Start:
    healthz = free_port()
    missing = env.directory / "no-such-kubeconfig"
    args = [executable, f"--port={free_port()}", f"--kubeconfig={missing}", *_shared(healthz)]
    return Start(args, {**_kube_env(env, ours), "ENABLE_WEBHOOKS": "false"})


Factory = Callable[[Environment, str, bool], Start]
CASES: dict[str, tuple[Factory, Factory]] = {
    "placement": (placement, placement_fatal),
    "sentry": (sentry, sentry_fatal),
    "injector": (injector, injector_fatal),
    "operator": (operator, operator_fatal),
}


def start_cluster(env: Environment) -> None:
    """The API server with Dapr's CRDs, the control-plane Configuration, the injector's webhook
    configuration, and daprplane's sentry (standalone) that gives both implementations SVIDs."""
    from tests.integration.operator.crds import install_crds
    from tests.k8s.cluster import KubeCluster, raw_request

    env.cluster = KubeCluster()
    env.cluster.start()
    env.cluster.create_namespace(NAMESPACE)
    port = free_port()
    env.sentry = SentryServer(
        env.directory / "cluster-sentry", port, f"--trust-domain={TRUST_DOMAIN}",
        env={"NAMESPACE": NAMESPACE},
    )  # fmt: skip
    env.sentry.wait_healthy(env.sentry.healthz)
    env.sentry_address = f"127.0.0.1:{port}"
    with env.cluster.api_client() as api:
        install_crds(api)
        configuration = {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Configuration",
            "metadata": {"name": "daprsystem"},
            "spec": {
                "mtls": {
                    "enabled": True,
                    "controlPlaneTrustDomain": TRUST_DOMAIN,
                    "sentryAddress": env.sentry_address,
                }
            },
        }
        path = f"/apis/dapr.io/v1alpha1/namespaces/{NAMESPACE}/configurations"
        raw_request(api, "POST", path, body=configuration)
        webhook = {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "dapr-sidecar-injector"},
            "webhooks": [
                {
                    "name": "sidecar-injector.dapr.io",
                    # Selects no namespace: nothing in this benchmark calls the webhook.
                    "namespaceSelector": {"matchLabels": {"bench": "never"}},
                    "clientConfig": {"service": {"namespace": NAMESPACE, "name": "x", "path": "/"}},
                    "sideEffects": "None",
                    "admissionReviewVersions": ["v1"],
                }
            ],
        }
        path = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
        raw_request(api, "POST", path, body=webhook)


# -- rounds and the report ---------------------------------------------------------------------


@dataclass
class Samples:
    healthy: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    fatal: list[float] = field(default_factory=list)


def run_rounds(
    env: Environment, components: Sequence[str], binaries: dict[str, str], rounds: int
) -> dict[tuple[str, str], Samples]:
    results: dict[tuple[str, str], Samples] = {}
    # Round 0 warms up (byte-code caches, page cache) and is not recorded.
    for number in range(rounds + 1):
        for component in components:
            healthy_case, fatal_case = CASES[component]
            plan = [("daprplane", launcher(f"daprplane-{component}", component), True)]
            if component in binaries:
                plan.append(("dapr", binaries[component], False))
            if number % 2:
                plan.reverse()  # neither side always runs first (page cache, CPU frequency)
            for side, executable, ours in plan:
                log = env.directory / f"{component}-{side}-{number}.log"
                healthy, rss = time_to_healthy(healthy_case(env, executable, ours), log)
                fatal = time_to_fatal(fatal_case(env, executable, ours), log)
                if number == 0:
                    continue
                samples = results.setdefault((component, side), Samples())
                samples.healthy.append(healthy)
                samples.rss.append(rss)
                samples.fatal.append(fatal)
    return results


def _ratio(ours: float, dapr: float | None) -> str:
    return f"{ours / dapr:.1f}x" if dapr else "-"


def markdown_table(results: dict[tuple[str, str], Samples], components: Sequence[str]) -> str:
    lines = [
        "| component | healthy: ours | Dapr | ratio | idle RSS: ours | Dapr | ratio "
        "| fatal exit: ours | Dapr |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for component in components:
        ours = results[(component, "daprplane")]
        dapr = results.get((component, "dapr"))
        healthy = statistics.median(ours.healthy) * 1000
        rss = statistics.median(ours.rss)
        fatal = statistics.median(ours.fatal) * 1000
        d_healthy = statistics.median(dapr.healthy) * 1000 if dapr else None
        d_rss = statistics.median(dapr.rss) if dapr else None
        d_fatal = statistics.median(dapr.fatal) * 1000 if dapr else None
        lines.append(
            f"| {component} | {healthy:.0f} ms | "
            + (f"{d_healthy:.0f} ms" if d_healthy else "-")
            + f" | {_ratio(healthy, d_healthy)} | {rss:.0f} MiB | "
            + (f"{d_rss:.0f} MiB" if d_rss else "-")
            + f" | {_ratio(rss, d_rss)} | {fatal:.0f} ms | "
            + (f"{d_fatal:.0f} ms" if d_fatal else "-")
            + " |"
        )
    return "\n".join(lines)


def missed_targets(results: dict[tuple[str, str], Samples], components: Sequence[str]) -> list[str]:
    missed = []
    for component in components:
        ours = results[(component, "daprplane")]
        dapr = results.get((component, "dapr"))
        if statistics.median(ours.fatal) * 1000 > TARGET_FATAL_MS:
            missed.append(f"{component}: fatal exit over {TARGET_FATAL_MS:.0f} ms")
        if dapr is None:
            continue
        if statistics.median(ours.healthy) > TARGET_HEALTHY_RATIO * statistics.median(dapr.healthy):
            missed.append(f"{component}: start-up over {TARGET_HEALTHY_RATIO:.0f}x Dapr's")
        if statistics.median(ours.rss) > TARGET_RSS_RATIO * statistics.median(dapr.rss):
            missed.append(f"{component}: idle RSS over {TARGET_RSS_RATIO}x Dapr's")
    return missed


def dapr_binaries(components: Sequence[str], skip: bool) -> tuple[dict[str, str], str]:
    if skip:
        return {}, "--no-dapr"
    try:
        from tests.dapr.binaries import ensure_binaries

        directory = ensure_binaries(components)
    except Exception as error:  # no Go, no module proxy: report daprplane alone, and say why
        return {}, f"{type(error).__name__}: {error}"
    return {name: str(directory / name) for name in components}, ""


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--components", default=",".join(COMPONENTS), help="comma-separated")
    parser.add_argument("--rounds", type=int, default=7, help="starts of each, alternating")
    parser.add_argument("--no-dapr", action="store_true", help="measure daprplane alone")
    parser.add_argument(
        "--pythonpath", type=Path, help="put this checkout of the package first on sys.path"
    )
    add_report_arguments(parser, "the table (start-up section)")
    args = parser.parse_args(argv)
    args.components = [name.strip() for name in args.components.split(",") if name.strip()]
    unknown = set(args.components) - set(COMPONENTS)
    if unknown:
        parser.error(f"unknown components {sorted(unknown)}; known: {', '.join(COMPONENTS)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    binaries, why = dapr_binaries(args.components, args.no_dapr)
    ours_env = {"DAPRPLANE_PLUGINS": BUILT_IN_PLUGINS}
    if args.pythonpath is not None:
        ours_env["PYTHONPATH"] = str(args.pythonpath.resolve())
    directory = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = Environment(directory, ours_env)
    try:
        if {"injector", "operator"} & set(args.components):
            start_cluster(env)
        results = run_rounds(env, args.components, binaries, args.rounds)
    finally:
        env.close()
        shutil.rmtree(directory, ignore_errors=True)
    table = markdown_table(results, args.components)
    today = datetime.date.today().isoformat()
    heading = f"Medians of {args.rounds} alternating starts, {today}; {machine_line()}."
    print(f"Start-up. {heading}\n\n{table}")
    if not binaries:
        print(f"\nDapr's binaries were not measured: {why}")
    if args.output is not None:
        args.output.write_text(table + "\n", encoding="utf-8")
    if args.write_docs is not None:
        note = (
            f"Targets: healthy within {TARGET_HEALTHY_RATIO:.0f}x Dapr's time, idle RSS within "
            f"{TARGET_RSS_RATIO}x Dapr's, and a fatal start-up error exits within "
            f"{TARGET_FATAL_MS:.0f} ms on an idle machine. Healthy: exec to the first 200 from "
            "`/healthz`; idle RSS: one second later; fatal exit: exec to exit code 1 (placement: "
            "gRPC port taken; sentry: unreachable JWKS source; injector: no `SIDECAR_IMAGE`; "
            "operator: no kubeconfig file). The benchmark, the processes measured and, for the "
            "injector and the operator, the API server, etcd and a sentry share the machine's "
            "cores."
        )
        write_block(
            args.write_docs, "## Start-up", "bench_startup", "bench_startup.py",
            f"{heading}\n\n{table}\n\n{note}",
        )  # fmt: skip
    missed = missed_targets(results, args.components)
    if missed:
        print("\ntargets missed:\n" + "\n".join(f"- {line}" for line in missed), file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    sys.exit(main())
