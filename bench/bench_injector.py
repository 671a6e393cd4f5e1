"""Injector benchmark: admission reviews per second and latency over HTTPS on loopback.

    python bench/bench_injector.py                  # prints a markdown table
    python bench/bench_injector.py --write-docs     # also refreshes docs/benchmarks.md
    python bench/bench_injector.py --check          # exit 1 if a target is missed

The real ``daprplane-injector`` launcher is started by absolute path with an empty environment
(plus its own variables), against the test suite's kube-apiserver (``tests/k8s``, built once)
and a real sentry for its RSA serving certificate. The AdmissionReview of the contract's worked
example (§4.6) is posted by concurrent clients over keep-alive HTTPS connections, a fixed number
of times (bounded by count, not time); each call's latency is taken on the client, and every
answer is checked to carry the patch. Two loads: as fast as ``--clients`` clients go
(throughput, p50, p99) and paced at ``--rate`` reviews per second (p99 against the target).

The baseline, measured in the same run with the same client, TLS settings and body: a bare
aiohttp HTTPS server in its own process that reads the body and answers a fixed
AdmissionReview. The ratio says how much of the budget the injector's own work takes.
``main(argv)`` is the entry point for the nox session.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime
import json
import shutil
import socket
import ssl
import sys
import tempfile
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _processes import Process, SentryServer, free_port, launcher
from _report import add_report_arguments, machine_line, write_block

ROOT = Path(__file__).resolve().parent.parent
TARGET_PER_SECOND = 1500.0
TARGET_P99 = 0.020  # seconds, at the paced rate
PACED_RATE = 500.0
NAMESPACE = "dapr-system"
SERVER_NAME = f"dapr-sidecar-injector.{NAMESPACE}.svc"


def _repo_on_path() -> None:
    """Makes ``tests`` importable: the kube-apiserver fixture and the §4.6 example pod."""
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def review_body(uid: str = "bench") -> bytes:
    _repo_on_path()
    from tests.unit.injector.examples import nodeapp_pod

    review = {
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": uid,
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "default",
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "groups": ["system:serviceaccounts", "system:authenticated"],
            },
            "object": {"apiVersion": "v1", "kind": "Pod", **nodeapp_pod()},
        },
    }
    return json.dumps(review).encode()


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    latencies: list[float]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds

    def percentile(self, fraction: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


# -- processes -------------------------------------------------------------------------------


ECHO_SERVER = textwrap.dedent(
    """
    import json, ssl, sys
    from aiohttp import web

    port, certfile, answer = int(sys.argv[1]), sys.argv[2], sys.argv[3].encode()

    async def mutate(request):
        await request.read()
        return web.Response(body=answer, content_type="application/json")

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    context.load_cert_chain(certfile)
    app = web.Application()
    app.router.add_post("/mutate", mutate)
    app.router.add_get("/healthz", lambda request: web.Response())
    web.run_app(app, host="127.0.0.1", port=port, ssl_context=context, print=None,
                access_log=None)
    """
)


def echo_certificate(directory: Path) -> tuple[Path, bytes]:
    """An RSA-2048 CA and a leaf for ``SERVER_NAME`` (what sentry issues the injector)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench-ca")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(SERVER_NAME)]), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    path = directory / "echo.pem"
    path.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, ca.public_bytes(serialization.Encoding.PEM)


@dataclass
class Server:
    port: int
    anchors: bytes


class Setup:
    """The API server, sentry, the webhook configuration, the injector, and the echo server."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="bench-injector-"))
        self.processes: list[Process] = []
        self.cluster: Any = None

    def start_injector(self) -> Server:
        _repo_on_path()
        from tests.k8s.cluster import KubeCluster

        self.cluster = KubeCluster()
        self.cluster.start()
        self.cluster.create_namespace(NAMESPACE)
        with self.cluster.api_client() as api:
            from kubernetes import client

            client.AdmissionregistrationV1Api(api).create_mutating_webhook_configuration(
                {
                    "apiVersion": "admissionregistration.k8s.io/v1",
                    "kind": "MutatingWebhookConfiguration",
                    "metadata": {"name": "dapr-sidecar-injector"},
                    "webhooks": [
                        {
                            "name": "sidecar-injector.dapr.io",
                            # Selects no namespace: only this benchmark calls the webhook.
                            "namespaceSelector": {"matchLabels": {"bench": "never"}},
                            "clientConfig": {
                                "service": {"namespace": NAMESPACE, "name": "x", "path": "/"}
                            },
                            "sideEffects": "None",
                            "admissionReviewVersions": ["v1"],
                        }
                    ],
                }
            )
        sentry_port = free_port()
        sentry = SentryServer(
            self.directory / "sentry",
            sentry_port,
            "--trust-domain=cluster.local",
            env={"NAMESPACE": NAMESPACE},
        )
        self.processes.append(sentry)
        sentry.wait_healthy(sentry.healthz)
        port, healthz = free_port(), free_port()
        injector = Process(
            "injector",
            [
                launcher("daprplane-injector"),
                f"--port={port}",
                "--listen-address=127.0.0.1",
                f"--healthz-port={healthz}",
                f"--metrics-port={free_port()}",
                f"--kubeconfig={self.cluster.kubeconfig}",
                "--log-level=warn",
            ],
            {
                "NAMESPACE": NAMESPACE,
                "SIDECAR_IMAGE": "ghcr.io/dapr/daprd:1.18.3",
                "SIDECAR_IMAGE_PULL_POLICY": "IfNotPresent",
                "KUBE_CLUSTER_DOMAIN": "cluster.local",
                "DAPR_TRUST_ANCHORS_FILE": str(sentry.trust_anchors_file),
                "DAPR_SENTRY_ADDRESS": f"127.0.0.1:{sentry_port}",
                "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
            },
            self.directory / "injector.log",
        )
        self.processes.append(injector)
        injector.wait_healthy(f"http://127.0.0.1:{healthz}/healthz")
        return Server(port, sentry.trust_anchors_file.read_bytes())

    def start_echo(self, answer: bytes) -> Server:
        certfile, anchors = echo_certificate(self.directory)
        script = self.directory / "echo.py"
        script.write_text(ECHO_SERVER)
        port = free_port()
        echo = Process(
            "echo",
            [sys.executable, str(script), str(port), str(certfile), answer.decode()],
            {},
            self.directory / "echo.log",
        )
        self.processes.append(echo)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or echo.popen.poll() is not None:
                    raise SystemExit(
                        f"echo server did not start:\n{echo.log_path.read_text()}"
                    ) from None
                time.sleep(0.1)
        return Server(port, anchors)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        if self.cluster is not None:
            self.cluster.stop()
        shutil.rmtree(self.directory, ignore_errors=True)


# -- load ------------------------------------------------------------------------------------


async def _load(
    server: Server, count: int, clients: int, rate: float | None, expect_patch: bool
) -> LoadResult:
    import aiohttp

    context = ssl.create_default_context(cadata=server.anchors.decode())
    connector = aiohttp.TCPConnector(limit=clients, ssl=context)
    body = review_body()
    url = f"https://127.0.0.1:{server.port}/mutate"
    headers = {"Content-Type": "application/json"}
    latencies: list[float] = []
    sent = 0

    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> None:
            clock = time.perf_counter
            begin = clock()
            async with session.post(
                url, data=body, headers=headers, server_hostname=SERVER_NAME
            ) as response:
                data = await response.read()
            latencies.append(clock() - begin)
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}: {data[:200]!r}")
            if expect_patch and b'"patch"' not in data:
                raise RuntimeError(f"no patch in the answer: {data[:200]!r}")

        # Open every connection (TLS handshakes) before the clock starts.
        await asyncio.gather(*(one() for _ in range(clients)))
        latencies.clear()

        async def client(start_at: float) -> None:
            nonlocal sent
            while sent < count:
                index = sent
                sent += 1
                if rate is not None:
                    delay = start_at + index / rate - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                await one()

        start = time.perf_counter()
        await asyncio.gather(*(client(start) for _ in range(clients)))
        elapsed = time.perf_counter() - start
    return LoadResult(len(latencies), elapsed, latencies)


def load(
    server: Server, count: int, clients: int, rate: float | None = None, expect_patch: bool = True
) -> LoadResult:
    return asyncio.run(_load(server, count, clients, rate, expect_patch))


# -- report ----------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def markdown_table(
    injector: LoadResult, paced: LoadResult, echo: LoadResult, clients: int, rate: float
) -> str:
    met = "met" if injector.per_second >= TARGET_PER_SECOND else "MISSED"
    p99_met = "met" if paced.percentile(0.99) < TARGET_P99 else "MISSED"
    return "\n".join(
        [
            "| measurement | reviews | reviews/s | p50 | p99 | target |",
            "|---|---:|---:|---:|---:|---|",
            f"| injector, §4.6 pod, {clients} clients, HTTPS keep-alive "
            f"| {injector.requests:,} | {injector.per_second:,.0f} "
            f"| {_ms(injector.percentile(0.5))} | {_ms(injector.percentile(0.99))} "
            f"| >= {TARGET_PER_SECOND:,.0f}/s {met} |",
            f"| injector, paced at {rate:,.0f}/s "
            f"| {paced.requests:,} | {paced.per_second:,.0f} "
            f"| {_ms(paced.percentile(0.5))} | {_ms(paced.percentile(0.99))} "
            f"| p99 < {TARGET_P99 * 1000:.0f} ms {p99_met} |",
            f"| baseline: bare aiohttp HTTPS echo, same client and body "
            f"| {echo.requests:,} | {echo.per_second:,.0f} "
            f"| {_ms(echo.percentile(0.5))} | {_ms(echo.percentile(0.99))} | - |",
            f"| injector / baseline | | {injector.per_second / echo.per_second:.0%} | | | - |",
        ]
    )


def versions() -> tuple[str, ...]:
    import aiohttp
    import cryptography

    return (
        f"aiohttp {aiohttp.__version__}",
        f"OpenSSL {ssl.OPENSSL_VERSION.split()[1]}",
        (f"cryptography {cryptography.__version__}"),
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=10_000, help="reviews per run")
    parser.add_argument("--paced-requests", type=int, default=5_000, help="reviews, paced run")
    parser.add_argument("--repeat", type=int, default=3, help="runs; the best is kept")
    parser.add_argument("--warmup", type=int, default=1_000, help="reviews before measuring")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--rate", type=float, default=PACED_RATE, help="paced reviews/s")
    add_report_arguments(parser, "the table (injector section)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    setup = Setup()
    injector_runs, echo_runs = [], []
    try:
        injector = setup.start_injector()
        load(injector, args.warmup, args.clients)
        # The echo server answers what the injector answers, so both responses weigh the same.
        answer = json.dumps(
            {
                "kind": "AdmissionReview",
                "apiVersion": "admission.k8s.io/v1",
                "response": {
                    "uid": "bench",
                    "allowed": True,
                    "patch": base64.b64encode(b"[]" * 1200).decode(),
                    "patchType": "JSONPatch",
                },
            }
        ).encode()
        echo = setup.start_echo(answer)
        load(echo, args.warmup, args.clients)
        # Alternate the two so that other work on the machine slows both; keep the best of each.
        for _ in range(args.repeat):
            echo_runs.append(load(echo, args.requests, args.clients))
            injector_runs.append(load(injector, args.requests, args.clients))
        paced = load(injector, args.paced_requests, args.clients, rate=args.rate)
    finally:
        setup.stop()
    best = max(injector_runs, key=lambda r: r.per_second)
    baseline = max(echo_runs, key=lambda r: r.per_second)
    table = markdown_table(best, paced, baseline, args.clients, args.rate)
    today = datetime.date.today().isoformat()
    heading = f"Best of {args.repeat} runs, {today}; {machine_line(*versions())}."
    print(f"Injector. {heading}\n")
    print(table)
    print("all runs (reviews/s):", ", ".join(f"{r.per_second:,.0f}" for r in injector_runs))
    print("baseline runs (reviews/s):", ", ".join(f"{r.per_second:,.0f}" for r in echo_runs))
    if args.output is not None:
        args.output.write_text(table + "\n", encoding="utf-8")
    if args.write_docs is not None:
        note = (
            "Client and servers share the machine's cores: the client (one Python process, "
            "aiohttp) takes a large part of them, which is why the baseline is measured with "
            "the same client."
        )
        generated = f"{heading}\n\n{table}\n\n{note}"
        write_block(
            args.write_docs, "## Injector", "bench_injector", "bench_injector.py", generated
        )
    missed = best.per_second < TARGET_PER_SECOND or paced.percentile(0.99) >= TARGET_P99
    if missed:
        print("\na target was missed", file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
