"""Joins that arrive during a round, and joins that abort, over real streams to real servers.

Each test runs against ``daprplane-placement`` (a launcher subprocess, empty environment) and,
where both must behave alike, against Dapr's own ``placement`` binary as a black box (skipped
when it has not been built: ``python -m tests.dapr.binaries placement``). The servers get a long
``--disseminate-timeout``, so a round that completes in the tests' waits completed on its own
merits, never because a timeout cut a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from tests.dapr import binaries
from tests.integration.launchers import free_port, script, wait_for_status
from tests.integration.placement.sidecars import Sidecar

#: Far longer than any wait below: nothing in these tests may be rescued by a round's timeout.
DISSEMINATE_TIMEOUT = "120s"
WAIT = 20.0


def dapr_placement_binary() -> Path | None:
    """Dapr's ``placement`` if it is built (tests never start the 7-minute build)."""
    override = os.environ.get(binaries.BINARIES_ENV)
    candidates = [Path(override) / "placement"] if override else []
    with contextlib.suppress(Exception):
        candidates.append(binaries.cache_root() / binaries.cache_key() / "placement")
    return next((path for path in candidates if os.access(path, os.X_OK)), None)


@dataclass
class PlacementServer:
    kind: str
    process: subprocess.Popen[bytes]
    address: str
    log: Path

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    async def wait_logged(self, text: str, timeout: float = WAIT) -> None:
        """Until the server logged ``text`` (e.g. that it received a stream's first report)."""
        deadline = time.monotonic() + timeout
        while text not in self.output():
            if time.monotonic() > deadline or self.process.poll() is not None:
                raise AssertionError(f"{self.kind} never logged {text!r}:\n{self.output()[-3000:]}")
            await asyncio.sleep(0.005)


@contextlib.contextmanager
def placement_server(
    kind: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> Iterator[PlacementServer]:
    """``daprplane`` (our launcher) or ``dapr`` (Dapr's binary) on free loopback ports, healthy."""
    port, healthz, raft = free_port(), free_port(), free_port()
    common = [
        f"--port={port}",
        "--listen-address=127.0.0.1",
        f"--healthz-port={healthz}",
        f"--metrics-port={free_port()}",
        f"--initial-cluster=dapr-placement-0=127.0.0.1:{raft}",
        f"--disseminate-timeout={DISSEMINATE_TIMEOUT}",
        *args,
    ]
    if kind == "daprplane":
        executable = script("daprplane-placement")
        common += ["--healthz-listen-address=127.0.0.1", "--metrics-listen-address=127.0.0.1"]
    else:
        found = dapr_placement_binary()
        if found is None:
            pytest.skip("Dapr's placement is not built (python -m tests.dapr.binaries placement)")
        executable = str(found)
    log = tmp_path / f"{kind}-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [executable, *common], env=env or {}, stdout=out, stderr=subprocess.STDOUT, cwd="/"
        )
    server = PlacementServer(kind, process, f"127.0.0.1:{port}", log)
    try:
        try:
            wait_for_status(f"http://127.0.0.1:{healthz}/healthz", 200, timeout=60)
        except AssertionError:
            raise AssertionError(f"{kind} placement not healthy:\n{server.output()}") from None
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


async def connect_leader(server: PlacementServer, channel: grpc.aio.Channel) -> Sidecar:
    """The first actor sidecar, once it unlocked version 1 (Dapr's raft may still be electing
    itself when /healthz answers: its first streams are then refused and reopened here)."""
    deadline = time.monotonic() + WAIT
    while True:
        first = await Sidecar(channel, "a:50002", "a", entities=["T"]).connect()
        with contextlib.suppress(asyncio.TimeoutError):
            await first.wait_for(lambda s: s.has("unlock", 1) or s.ended is not None, 5)
        if first.has("unlock", 1):
            return first
        await first.aclose()
        assert time.monotonic() < deadline, f"{server.kind} never accepted a stream"
        await asyncio.sleep(0.2)


def rounds_after(sidecar: Sidecar, version: int) -> list[tuple[str, int]]:
    return [(op, v) for op, v in sidecar.operations() if v > version]


def unlocked_table(sidecar: Sidecar, after: int) -> dict[str, list[str]] | None:
    """The table of the latest version above ``after`` that the sidecar has unlocked."""
    for order in reversed(sidecar.orders):
        if order.operation == "update" and order.version > after:
            if not sidecar.has("unlock", order.version):
                return None
            return {t: sorted(table.load_map) for t, table in order.tables.entries.items()}
    return None


SERVERS = ["daprplane", "dapr"]


@pytest.mark.parametrize("kind", SERVERS)
async def test_joins_during_a_round_share_one_next_round(kind: str, tmp_path: Path) -> None:
    with placement_server(kind, tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            warmup = await connect_leader(server, ch)
            await warmup.close()
            # The round that stays open: ``holder`` acks LOCK and then sits on the UPDATE.
            holder = await Sidecar(ch, "h:50002", "h", entities=["T"], auto_ack=False).connect()
            await holder.wait_for(lambda s: any(o.operation == "lock" for o in s.orders))
            held = holder.orders[0].version
            await holder.ack("lock", held)
            await holder.wait_order("update", held)

            channels = [grpc.aio.insecure_channel(server.address) for _ in range(5)]
            joiners = [
                Sidecar(c, f"n{i}:50002", f"n{i}", entities=["T", f"U{i}"] if i % 2 else [])
                for i, c in enumerate(channels)
            ]
            await asyncio.gather(*(j.connect() for j in joiners))
            for j in joiners:
                await server.wait_logged(f"id={j.app_id} host={j.name}")
            assert all(j.orders == [] for j in joiners)  # queued: nothing sent yet

            await holder.resume_acks()
            everyone = [holder, *joiners]
            for s in everyone:
                await s.wait_unlocked(held + 1, timeout=WAIT)
            # A probe proves nothing else ran in between: its join is the very next round.
            probe = await Sidecar(ch, "p:50002", "p", entities=["P"]).connect()
            await probe.wait_unlocked(held + 2, timeout=WAIT)
            for s in everyone:
                await s.wait_unlocked(held + 2, timeout=WAIT)
                assert rounds_after(s, held) == [
                    ("lock", held + 1),
                    ("update", held + 1),
                    ("unlock", held + 1),
                    ("lock", held + 2),
                    ("update", held + 2),
                    ("unlock", held + 2),
                ], (s.name, s.operations())
                assert s.ended is None
            update = next(o for o in joiners[1].orders if o.operation == "update")
            assert sorted(update.tables.entries["T"].load_map) == [
                "h:50002",
                "n1:50002",
                "n3:50002",
            ]
            for s in [*everyone, probe, warmup]:
                await s.aclose()
            for c in channels:
                await c.close()


class OpenedSidecar(Sidecar):
    """A sidecar whose RPC is open (the server already waits for its first message) before it
    sends its report, so that reports can reach the server all at the same moment."""

    def open(self) -> None:
        self._call = self.stub.ReportDaprStatus()

    async def send_report(self) -> None:
        assert self._call is not None
        await self._call.write(self.report_host())
        self._reader = asyncio.create_task(self._read())


async def test_joins_arriving_as_a_round_ends_share_one_next_round(tmp_path: Path) -> None:
    """The round's last ack and five first reports reach the server together.

    Dapr gives the first report read after the ack a round of its own and the others the next
    (see compat.md); daprplane waits a moment for what arrives together.
    """
    with placement_server("daprplane", tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            warmup = await connect_leader(server, ch)
            await warmup.close()
            holder = await Sidecar(ch, "h:50002", "h", entities=["T"], auto_ack=False).connect()
            await holder.wait_for(lambda s: any(o.operation == "lock" for o in s.orders))
            held = holder.orders[0].version
            await holder.ack("lock", held)
            await holder.wait_order("update", held)
            await holder.ack("update", held)
            await holder.wait_order("unlock", held)

            channels = [grpc.aio.insecure_channel(server.address) for _ in range(5)]
            for c in channels:
                await c.channel_ready()
            joiners = [
                OpenedSidecar(c, f"n{i}:50002", f"n{i}", entities=["T"])
                for i, c in enumerate(channels)
            ]
            for j in joiners:
                j.open()
            await asyncio.sleep(0.3)  # lets the server's handlers start waiting for the reports
            await asyncio.gather(holder.resume_acks(), *(j.send_report() for j in joiners))

            for j in joiners:
                await j.wait_for(lambda s: s.has("unlock", held + 1), timeout=WAIT)
            probe = await Sidecar(ch, "p:50002", "p", entities=["P"]).connect()
            await probe.wait_unlocked(held + 2, timeout=WAIT)
            for s in [holder, *joiners]:
                await s.wait_unlocked(held + 2, timeout=WAIT)
                assert [v for _, v in rounds_after(s, held)] == [held + 1] * 3 + [held + 2] * 3
                assert s.ended is None
            assert unlocked_table(joiners[0], held) is not None
            for s in [holder, *joiners, probe, warmup]:
                await s.aclose()
            for c in channels:
                await c.close()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_queued_join_that_aborts_does_not_stall_the_round_after(
    kind: str, tmp_path: Path
) -> None:
    """The joiner is queued behind an open round, and cancels once placement has its report."""
    with placement_server(kind, tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            warmup = await connect_leader(server, ch)
            await warmup.close()
            healthy = await Sidecar(ch, "h:50002", "h", entities=["T"], auto_ack=False).connect()
            await healthy.wait_for(lambda s: any(o.operation == "lock" for o in s.orders))
            held = healthy.orders[0].version
            await healthy.ack("lock", held)
            await healthy.wait_order("update", held)
            async with grpc.aio.insecure_channel(server.address) as other:
                aborting = await Sidecar(other, "b:50002", "b", entities=["T"]).connect()
                await server.wait_logged("id=b host=b:50002")
                aborting.vanish()
                await healthy.resume_acks()
                # A later round, completed, whose table no longer has the aborted sidecar.
                await healthy.wait_for(
                    lambda s: unlocked_table(s, held) == {"T": ["h:50002"]}, timeout=WAIT
                )
                assert healthy.ended is None
                await aborting.aclose()
            await healthy.aclose()


@pytest.mark.parametrize("kind", SERVERS)
async def test_a_join_that_aborts_right_after_its_report_does_not_stall_others(
    kind: str, tmp_path: Path
) -> None:
    with placement_server(kind, tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            healthy = await connect_leader(server, ch)
            for attempt in range(3):
                before = max(v for _, v in healthy.operations())
                async with grpc.aio.insecure_channel(server.address) as other:
                    name = f"b{attempt}:50002"
                    aborting = await Sidecar(
                        other, name, f"b{attempt}", entities=["T"], auto_ack=False
                    ).connect()
                    await server.wait_logged(f"id=b{attempt} host={name}")
                    aborting.vanish()
                    await healthy.wait_for(
                        lambda s, v=before: unlocked_table(s, v) == {"T": ["a:50002"]},
                        timeout=WAIT,
                    )
                    await aborting.aclose()
            assert healthy.ended is None
            await healthy.aclose()


async def test_an_actorless_stream_that_leaves_mid_round_completes_the_phase(
    tmp_path: Path,
) -> None:
    """Dapr waits for the round's timeout here (the stream is not in its store): see compat.md."""
    with placement_server("daprplane", tmp_path) as server:
        async with grpc.aio.insecure_channel(server.address) as ch:
            a = await connect_leader(server, ch)
            silent = await Sidecar(ch, "s:50002", "s", auto_ack=False).connect()
            await silent.wait_unlocked(1)  # the one-shot push to an actor-less join
            c = await Sidecar(ch, "c:50002", "c", entities=["T"]).connect()
            await silent.wait_order("lock", 2)
            await a.wait_for(lambda s: s.has("lock", 2))
            silent.vanish()
            await a.wait_unlocked(2, timeout=WAIT)
            await c.wait_unlocked(2, timeout=WAIT)
            assert a.load_map() == c.load_map() == {"T": ["a:50002", "c:50002"]}
            assert a.ended is None and c.ended is None
            for s in (a, c, silent):
                await s.aclose()
