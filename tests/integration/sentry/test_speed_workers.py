"""Sentry's worker processes: every process serves the port, with the same CA and identity, the
metrics count every call, a CA change reaches every process, and SIGTERM stops them all."""

from __future__ import annotations

import datetime
import signal
import ssl
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.plugins.sentry.ca import generate, pem
from tests.integration.sentry.client import ca_stub, handshake
from tests.integration.sentry.conftest import SentryProcess, run_sentry
from tests.pki import csr_pem, new_key

#: Fresh connections per check: each lands on one of the processes listening on the port, so
#: with two of them all twenty land on the same one with probability 2**-19.
CONNECTIONS = 20


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _cpu_ticks(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def _wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _sign_on_fresh_connections(sentry: SentryProcess, anchors: bytes) -> list[bytes]:
    chains = []
    for i in range(CONNECTIONS):
        request = sentry_pb2.SignCertificateRequest(
            id=f"app-{i}",
            namespace="default",
            certificate_signing_request=csr_pem(new_key("ed25519" if i % 2 else "ecdsa")),
        )
        with ca_stub(sentry.port, anchors) as (stub, tunnel):
            chains.append(stub.SignCertificate(request, timeout=10).workload_certificate)
        assert tunnel.leaves, "each call went through its own verified TLS connection"
    return chains


@pytest.fixture
def two_processes(tmp_path: Path):  # type: ignore[no-untyped-def]
    with run_sentry(tmp_path / "creds", env={"DAPRPLANE_SENTRY_WORKERS": "2"}) as sentry:
        _wait_for(lambda: len(_children(sentry.process.pid)) == 1)
        yield sentry


def test_every_process_serves_and_the_metrics_count_every_call(two_processes) -> None:  # type: ignore[no-untyped-def]
    sentry = two_processes
    (worker,) = _children(sentry.process.pid)
    assert b"daprplane.plugins.sentry.worker" in Path(f"/proc/{worker}/cmdline").read_bytes()
    before = sentry.metrics()
    ticks = {pid: _cpu_ticks(pid) for pid in (sentry.process.pid, worker)}
    chains = _sign_on_fresh_connections(sentry, sentry.trust_anchors)
    issuer_pem = (sentry.credentials / "issuer.crt").read_bytes()
    for chain in chains:
        leaf, issuer = pem.decode_certificates(chain)
        assert pem.encode_chain([issuer]) == issuer_pem
        leaf.verify_directly_issued_by(issuer)
    # Both processes did work: twenty TLS handshakes and signatures cannot all go unnoticed.
    assert all(_cpu_ticks(pid) > ticks[pid] for pid in ticks)

    def counted() -> bool:
        now = sentry.metrics()
        return all(
            now[name] - before[name] == CONNECTIONS
            for name in (
                "dapr_sentry_cert_sign_request_received_total",
                "dapr_sentry_cert_sign_success_total",
            )
        )

    _wait_for(counted, timeout=5)


def test_a_new_ca_reaches_every_process(two_processes) -> None:  # type: ignore[no-untyped-def]
    sentry = two_processes
    creds = sentry.credentials
    fresh = generate("localhost", "default", datetime.timedelta(minutes=15))
    (creds / "issuer.key").write_bytes(fresh.issuer_key_pem)
    (creds / "issuer.crt").write_bytes(fresh.issuer_chain_pem)
    (creds / "ca.crt").write_bytes(fresh.trust_anchors_pem)

    def every_connection_serves_the_new_leaf() -> bool:
        for _ in range(CONNECTIONS):
            try:
                handshake(sentry.port, fresh.trust_anchors_pem).leaf.verify_directly_issued_by(
                    fresh.issuer
                )
            except (ssl.SSLError, OSError, ValueError):
                return False
        return True

    _wait_for(every_connection_serves_the_new_leaf, timeout=40)
    for chain in _sign_on_fresh_connections(sentry, fresh.trust_anchors_pem):
        _, issuer = pem.decode_certificates(chain)
        assert issuer == fresh.issuer


def test_sigterm_stops_every_process(two_processes) -> None:  # type: ignore[no-untyped-def]
    sentry = two_processes
    (worker,) = _children(sentry.process.pid)
    sentry.process.send_signal(signal.SIGTERM)
    sentry.process.communicate(timeout=30)
    assert sentry.process.returncode == 0
    _wait_for(lambda: not Path(f"/proc/{worker}").exists(), timeout=10)


def test_one_process_when_asked(tmp_path: Path) -> None:
    with run_sentry(tmp_path / "creds", env={"DAPRPLANE_SENTRY_WORKERS": "1"}) as sentry:
        time.sleep(1)
        assert _children(sentry.process.pid) == []
        _sign_on_fresh_connections(sentry, sentry.trust_anchors)
