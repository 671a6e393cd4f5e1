"""Placement dissemination benchmark: N connected sidecars, one more joins, how long is a round?

    python bench/bench_placement.py                          # 100, 1,000 and 3,000 sidecars
    python bench/bench_placement.py --sizes 100,1000 --rounds 10
    python bench/bench_placement.py --write-docs             # refreshes docs/benchmarks.md

(a) ``daprplane-placement`` runs as a subprocess (empty environment, loopback, default keepalive,
a long ``--disseminate-timeout`` so that a slow round is measured instead of cut short). N
simulated sidecars connect from ``--workers`` other processes, each an asyncio ``grpc.aio``
client holding its share of the streams. Every sidecar reports one actor type, the same for all
(a typical deployment: one app scaled out), so every UPDATE carries one ``load_map`` of N hosts;
with T types per host it would grow as O(N·T²).

The simulated sidecars are light: they answer every ``lock``, ``update`` and ``unlock`` with
daprd's ack ``{operation, version, namespace, id}`` but read only the order's operation and
version (the table bytes are skipped, not decoded), so that the clients, which share the two
cores with the server, cost as little as possible. The joiner decodes its last UPDATE in full
and checks that it lists all N + 1 hosts.

Once all N are connected and the table has settled (every stream unlocked the latest version),
each repetition:

- *join*: one more sidecar REPORTs; the round ends when the last of the N + 1 streams receives
  that version's ``unlock`` (the server is then waiting only for the final acks). The joiner's
  own view (its ``unlock``) is reported too;
- *leave*: the joiner half-closes its stream; the delete round that follows is timed the same way.

Server memory is VmRSS from ``/proc/<pid>/status`` before the first stream and after N streams
settled: (after - before) / N is the memory per stream. Server CPU (utime + stime) over the join
rounds, divided by the 3·(N + 1) acks of a round, is the CPU per stream-ack. The ratios compare
each size with the smallest one measured in the same run.

Each size runs on a fresh server and fresh clients and is abandoned with a clear message if it
takes longer than ``--size-timeout``. ``main(argv)`` is the entry point for the nox session.

``--memory`` measures something else: server memory against the size of one report. Five small
hosts (one actor type each) settle, then one sidecar reports T actor types (``--types``,
default 100, 1,000 and 10,000), and the RSS of ``daprplane-placement`` and of Dapr's own
``placement`` (built by ``tests/dapr/binaries.py``; ``--dapr-placement`` names another binary,
``none`` skips it) are compared side by side, each on a fresh server. A server whose RSS passes
``--rss-cap`` is stopped and reported as such (Dapr's grows without bound with T).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from _report import add_report_arguments, machine_line, write_block

METHOD = "/dapr.proto.placement.v1.Placement/ReportDaprStatus"
ACTOR_TYPE = "BenchActor"
NAMESPACE = "default"
TARGET_ROUND_SIZE = 1000
TARGET_ROUND_SECONDS = 1.0
TARGET_STREAM_KIB = 100.0
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


class SizeAborted(Exception):
    """A size ran out of time or its clients failed; the message says where."""


# -- the simulated sidecars (run in worker processes) -----------------------------------------


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos
        shift += 7


def parse_order(data: bytes) -> tuple[str, int, bytes]:
    """``(operation, version, raw)`` of a serialized PlacementOrder; the tables are skipped.

    A sidecar only needs the operation and version to ack; decoding an N-host table on each of
    N streams would make the clients, not the server, the bottleneck of this benchmark."""
    operation, version, pos, end = "", 0, 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if wire_type == 2:
            length, pos = _varint(data, pos)
            if number == 2:
                operation = data[pos : pos + length].decode()
            pos += length
        elif wire_type == 0:
            value, pos = _varint(data, pos)
            if number == 3:
                version = value
        else:  # PlacementOrder has no other wire types
            raise ValueError(f"unexpected wire type {wire_type} for field {number}")
    return operation, version, data


def _identity(data: bytes) -> bytes:
    return data


@dataclass
class _Counts:
    """Per version: how many of this worker's streams got its unlock, and when the last did."""

    unlocked: dict[int, int] = field(default_factory=dict)
    last_unlock: dict[int, float] = field(default_factory=dict)
    max_version: int = 0
    retries: int = 0
    why: dict[str, int] = field(default_factory=dict)
    ended: list[str] = field(default_factory=list)


class _Stream:
    """One light sidecar: REPORT, then ack every order like daprd; like daprd, a stream that
    fails is opened again after 500 ms (at most ``RETRIES`` times, counted in ``retries``)."""

    RETRIES = 10

    def __init__(self, channel, name: str, app_id: str, counts: _Counts, keep_last: bool = False):  # type: ignore[no-untyped-def]
        from daprplane._proto.placement.v1 import placement_pb2 as pb

        self.pb = pb
        self.channel = channel
        self.name = name
        self.app_id = app_id
        self.counts = counts
        self.keep_last = keep_last
        self.last_update: bytes | None = None
        self.unlocked: dict[int, float] = {}
        self.acks = {"lock": pb.LOCK, "update": pb.UPDATE, "unlock": pb.UNLOCK}
        self.report = pb.Host(
            name=name,
            id=app_id,
            api_level=20,
            namespace=NAMESPACE,
            entities=[ACTOR_TYPE],
            operation=pb.REPORT,
        ).SerializeToString()
        self.call: Any = None
        self.attempts = 0
        self.closing = False
        self.reader: asyncio.Task[None] | None = None
        self.unlock_event = asyncio.Event()

    async def _open(self) -> None:
        while True:
            self.call = self.channel.stream_stream(
                METHOD, request_serializer=_identity, response_deserializer=parse_order
            )()
            try:
                await self.call.write(self.report)
                return
            except Exception:
                await self._failed(f"{(await self.call.code()).name} before the REPORT")

    async def _failed(self, why: str) -> None:
        self.attempts += 1
        self.counts.retries += 1
        self.counts.why[why] = self.counts.why.get(why, 0) + 1
        if self.attempts > self.RETRIES:
            raise RuntimeError(f"{self.name}: failed {self.RETRIES} times, last: {why}")
        await asyncio.sleep(0.5)

    async def start(self) -> None:
        await self._open()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import grpc

        counts = self.counts
        while True:
            try:
                async for operation, version, raw in self.call:
                    if version > counts.max_version:
                        counts.max_version = version
                    if operation == "update" and self.keep_last:
                        self.last_update = raw
                    ack = self.pb.Host(
                        operation=self.acks[operation],
                        version=version,
                        namespace=NAMESPACE,
                        id=self.app_id,
                    ).SerializeToString()
                    if operation == "unlock":
                        now = time.monotonic()
                        self.unlocked[version] = now
                        counts.unlocked[version] = counts.unlocked.get(version, 0) + 1
                        counts.last_unlock[version] = max(counts.last_unlock.get(version, 0.0), now)
                        self.unlock_event.set()
                    await self.call.write(ack)
                why = f"{(await self.call.code()).name} after the REPORT"
            except grpc.aio.AioRpcError as error:
                why = f"{error.code().name} after the REPORT"
            except Exception as error:
                why = f"{type(error).__name__} after the REPORT"
            if self.closing:
                return
            try:
                await self._failed(why)
                await self._open()
            except Exception as error:
                counts.ended.append(str(error)[:300])
                return

    async def wait_unlock(self, deadline: float) -> tuple[int, float]:
        while not self.unlocked:
            self.unlock_event.clear()
            await asyncio.wait_for(self.unlock_event.wait(), max(0.01, deadline - time.monotonic()))
        version = max(self.unlocked)
        return version, self.unlocked[version]

    async def half_close(self) -> None:
        self.closing = True
        with contextlib.suppress(Exception):
            await self.call.done_writing()
        if self.reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.reader, 30)

    def cancel(self) -> None:
        self.closing = True
        if self.call is not None:
            self.call.cancel()


async def _worker_main(conn: Connection, index: int) -> None:
    import grpc

    loop = asyncio.get_running_loop()
    counts = _Counts()
    channels: list[grpc.aio.Channel] = []
    streams: list[_Stream] = []
    joiner: _Stream | None = None
    joins = 0
    options = [("grpc.use_local_subchannel_pool", 1)]  # one TCP connection per channel

    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        try:
            if command == "connect":
                address, count, per_channel = args
                for _ in range(count):
                    i = len(streams)
                    if i % per_channel == 0:
                        channels.append(grpc.aio.insecure_channel(address, options=options))
                    name = f"10.{index}.{i // 250}.{i % 250 + 1}:50002"
                    stream = _Stream(channels[-1], name, f"app-{index}-{i}", counts)
                    await stream.start()
                    streams.append(stream)
                    if i % 50 == 49:
                        await asyncio.sleep(0)  # let the readers ack between batches
                reply: object = len(streams)
            elif command == "status":
                version = counts.max_version
                reply = (
                    version,
                    counts.unlocked.get(version, 0),
                    len(streams),
                    counts.ended[:3],
                    counts.retries,
                    counts.why,
                )
            elif command == "join":
                (address, timeout) = args
                joins += 1
                channel = grpc.aio.insecure_channel(address, options=options)
                channels.append(channel)
                joiner = _Stream(
                    channel, f"10.250.0.{joins}:50002", f"joiner-{joins}", counts, True
                )
                started = time.monotonic()
                await joiner.start()
                version, unlocked = await joiner.wait_unlock(started + timeout)
                reply = (started, unlocked, version)
            elif command == "leave":
                assert joiner is not None
                started = time.monotonic()
                await joiner.half_close()
                joiner = None
                reply = started
            elif command == "check_table":
                from daprplane._proto.placement.v1 import placement_pb2 as pb

                assert joiner is not None and joiner.last_update is not None
                order = pb.PlacementOrder.FromString(joiner.last_update)
                table = order.tables.entries[ACTOR_TYPE]
                reply = (len(order.tables.entries), len(table.load_map), len(joiner.last_update))
            elif command == "wait_unlock":
                version, expected, timeout = args
                deadline = time.monotonic() + timeout
                while counts.unlocked.get(version, 0) < expected:
                    if time.monotonic() > deadline or counts.ended:
                        break
                    await asyncio.sleep(0.005)
                reply = (counts.unlocked.get(version, 0), counts.last_unlock.get(version))
            elif command == "stop":
                for stream in streams:
                    stream.cancel()
                for channel in channels:
                    await channel.close(None)
                conn.send(None)
                return
            else:
                raise ValueError(command)
        except Exception as error:
            reply = RuntimeError(f"worker {index} {command}: {type(error).__name__}: {error}")
        conn.send(reply)


def _worker(conn: Connection, index: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_worker_main(conn, index))


# -- the server and the run ---------------------------------------------------------------------


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launcher() -> str:
    beside = Path(sys.executable).parent / "daprplane-placement"
    found = str(beside) if beside.exists() else shutil.which("daprplane-placement")
    if not found:
        raise SystemExit("daprplane-placement not found next to this Python or on PATH")
    return found


def rss_kib(pid: int, key: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {key} for pid {pid}")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Server:
    def __init__(self, disseminate_timeout: int, profile: Path | None = None) -> None:
        self.port, self.healthz = free_port(), free_port()
        self.log = tempfile.TemporaryFile(mode="w+")  # noqa: SIM115 - closed by stop()
        wrapper = [sys.executable, "-m", "cProfile", "-o", str(profile)] if profile else []
        self.process = subprocess.Popen(
            [
                *wrapper,
                launcher(),
                f"--port={self.port}",
                "--listen-address=127.0.0.1",
                f"--healthz-port={self.healthz}",
                "--healthz-listen-address=127.0.0.1",
                f"--metrics-port={free_port()}",
                "--metrics-listen-address=127.0.0.1",
                f"--disseminate-timeout={disseminate_timeout}s",
                # Its raft port: the default, 8201, may be held by another placement.
                f"--initial-cluster=dapr-placement-0=127.0.0.1:{free_port()}",
            ],
            env={},
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd="/",
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.healthz}/healthz", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise SizeAborted(f"placement did not become healthy:\n{self.tail()}") from None
                time.sleep(0.1)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def tail(self, lines: int = 15) -> str:
        self.log.seek(0)
        return "\n".join(self.log.read().splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()


class Workers:
    def __init__(self, count: int) -> None:
        context = multiprocessing.get_context("spawn")  # no gRPC state forked into children
        self.conns: list[Connection] = []
        self.processes = []
        for index in range(count):
            parent, child = context.Pipe()
            process = context.Process(target=_worker, args=(child, index), daemon=True)
            process.start()
            self.conns.append(parent)
            self.processes.append(process)

    def ask(self, index: int, *command: object, timeout: float) -> Any:
        conn = self.conns[index]
        conn.send(command)
        if not conn.poll(timeout):
            raise SizeAborted(f"worker {index} did not answer {command[0]!r} in {timeout:.0f} s")
        reply = conn.recv()
        if isinstance(reply, Exception):
            raise SizeAborted(str(reply))
        return reply

    def ask_all(self, *command: object, timeout: float) -> list[Any]:
        for conn in self.conns:
            conn.send(command)
        replies = []
        deadline = time.monotonic() + timeout
        for index, conn in enumerate(self.conns):
            if not conn.poll(max(0.0, deadline - time.monotonic())):
                raise SizeAborted(
                    f"worker {index} did not answer {command[0]!r} in {timeout:.0f} s"
                )
            reply = conn.recv()
            if isinstance(reply, Exception):
                raise SizeAborted(str(reply))
            replies.append(reply)
        return replies

    def stop(self) -> None:
        for conn, process in zip(self.conns, self.processes, strict=True):
            with contextlib.suppress(Exception):
                conn.send(("stop",))
                conn.poll(10)
            process.join(10)
            if process.is_alive():
                process.kill()
                process.join(5)


@dataclass
class Result:
    size: int
    streams_per_channel: int
    join: list[float] = field(default_factory=list)
    join_joiner: list[float] = field(default_factory=list)
    leave: list[float] = field(default_factory=list)
    settle: float = 0.0
    rss_before_kib: int = 0
    rss_after_kib: int = 0
    hwm_kib: int = 0
    cpu_per_round: float = 0.0
    update_bytes: int = 0
    retries: int = 0
    why: dict[str, int] = field(default_factory=dict)
    aborted: str = ""

    @property
    def kib_per_stream(self) -> float:
        return (self.rss_after_kib - self.rss_before_kib) / self.size

    @property
    def cpu_per_ack(self) -> float:
        return self.cpu_per_round / (3 * (self.size + 1))


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run_size(size: int, args: argparse.Namespace) -> Result:
    result = Result(size, args.streams_per_channel)
    deadline = time.monotonic() + args.size_timeout

    def left(phase: str) -> float:
        remaining: float = deadline - time.monotonic()
        if remaining <= 0:
            raise SizeAborted(f"over the {args.size_timeout:.0f} s budget while {phase}")
        return remaining

    profile = None
    if args.profile_server:
        profile = args.profile_server.with_name(f"{args.profile_server.name}.{size}")
    server = Server(args.disseminate_timeout, profile)
    workers = Workers(args.workers)
    phase = "starting"
    try:
        pid = server.process.pid
        time.sleep(0.5)
        result.rss_before_kib = rss_kib(pid)
        shares = [size // args.workers + (i < size % args.workers) for i in range(args.workers)]
        phase = "connecting"
        started = time.monotonic()
        connected = [0] * args.workers
        batch = max(1, (args.connect_batch or size) // args.workers + 1)
        while sum(connected) < size:
            # A batch at a time, settled before the next (a rolling scale-out): all N at once
            # overruns the server's backlog of not-yet-accepted calls (see the report).
            for index, share in enumerate(shares):
                step = min(share - connected[index], batch)
                if step:
                    workers.conns[index].send(
                        ("connect", server.address, step, args.streams_per_channel)
                    )
            for index, conn in enumerate(workers.conns):
                step = min(shares[index] - connected[index], batch)
                if not step:
                    continue
                if not conn.poll(left(phase)):
                    raise SizeAborted(f"over the budget while connecting {size} streams")
                reply = conn.recv()
                if isinstance(reply, Exception):
                    raise SizeAborted(str(reply))
                connected[index] = reply
            phase = f"settling {sum(connected)} streams"
            stable_since, last = None, None
            while True:
                left(phase)
                status = workers.ask_all("status", timeout=left(phase))
                errors = [e for s in status for e in s[3]]
                if errors:
                    raise SizeAborted(f"streams ended while settling: {errors[:2]}")
                result.retries = sum(s[4] for s in status)
                result.why = {}
                for s in status:
                    for why, n in s[5].items():
                        result.why[why] = result.why.get(why, 0) + n
                version = max(s[0] for s in status)
                settled = all(s[0] == version for s in status) and sum(s[1] for s in status) == sum(
                    connected
                )
                now = time.monotonic()
                if settled and last == version:
                    stable_since = stable_since or now
                    if now - stable_since >= 0.3:
                        break
                else:
                    stable_since = None
                last = version if settled else None
                time.sleep(0.05)
            phase = "connecting"
        result.settle = time.monotonic() - started
        time.sleep(0.3)
        result.rss_after_kib = rss_kib(pid)

        def wait_all(version: int, expected: int) -> float:
            shares_now = [shares[0] + expected - size, *shares[1:]]
            ends: list[float] = []
            for index, want in enumerate(shares_now):
                got, last_time = workers.ask(
                    index, "wait_unlock", version, want, left(phase), timeout=left(phase) + 5
                )
                if got < want:
                    raise SizeAborted(
                        f"only {got} of {want} streams of worker {index} unlocked v{version}"
                    )
                ends.append(last_time)
            return max(ends)

        cpu_join = 0.0
        for _ in range(args.rounds):
            phase = "timing a join round"
            cpu0 = cpu_seconds(pid)
            t0, t_joiner, version = workers.ask(
                0, "join", server.address, left(phase), timeout=left(phase) + 5
            )
            end = wait_all(version, size + 1)
            cpu_join += cpu_seconds(pid) - cpu0
            result.join.append(end - t0)
            result.join_joiner.append(t_joiner - t0)
            if not result.update_bytes:
                checked = workers.ask(0, "check_table", timeout=30)
                types, hosts, result.update_bytes = checked
                if (types, hosts) != (1, size + 1):
                    raise SizeAborted(
                        f"UPDATE had {types} types / {hosts} hosts, not 1 / {size + 1}"
                    )
            phase = "timing a leave round"
            t1 = workers.ask(0, "leave", timeout=left(phase))
            end = wait_all(version + 1, size)
            result.leave.append(end - t1)
        result.cpu_per_round = cpu_join / args.rounds
        result.hwm_kib = rss_kib(pid, "VmHWM")
    except SizeAborted as error:
        elapsed = args.size_timeout - (deadline - time.monotonic())
        result.aborted = f"{error} (after {elapsed:.0f} s, {phase})"
        print(f"server log tail:\n{server.tail(400)}", file=sys.stderr)
    finally:
        workers.stop()
        if server.process.poll() is not None and not result.aborted:
            result.aborted = f"server exited {server.process.returncode}:\n{server.tail()}"
        server.stop()
    return result


def fmt_ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms" if seconds >= 0.1 else f"{seconds * 1000:,.1f} ms"


def render(results: list[Result], args: argparse.Namespace, versions: str) -> str:
    import grpc

    base = next((r for r in results if not r.aborted and r.join), None)
    lines = [
        "`bench/bench_placement.py` starts `daprplane-placement` as a subprocess (empty "
        "environment, loopback, default keepalive) and connects N simulated sidecars from other "
        "processes (asyncio `grpc.aio` clients that ack `lock`, `update` and `unlock` like daprd "
        "but skip decoding the table). Every sidecar reports the same single actor type, as in a "
        "typical deployment of one scaled-out app; the UPDATE then carries one `load_map` of "
        "N + 1 hosts and goes to every stream, so bytes per round grow as N² (with T types per "
        "host, as N·T² per stream). Once the table settled, one more sidecar joins: the *join "
        "round* lasts from its REPORT until the last of the N + 1 streams received that "
        "version's `unlock`; then it leaves (half-close) and the delete round is timed the same "
        "way. RSS per stream is the server's VmRSS growth from before the first stream to N "
        "settled streams, divided by N; CPU is the server's utime + stime over the join rounds. "
        "Clients and server share the same cores, so round times include client work; the "
        "ratio column compares each size with the smallest in the same run. Targets: 1,000 "
        "sidecars < 1 s per round and < 100 KiB per stream.",
        "",
        f"Machine: {machine_line(versions, f'grpcio {grpc.__version__}')}.",
        f"{args.workers} client processes, "
        f"{args.streams_per_channel} stream(s) per TCP connection, "
        f"1 shared actor type, {args.rounds} join + {args.rounds} leave rounds per size "
        f"(p99 of {args.rounds} is the slowest).",
        "",
        "| sidecars | join round p50 | join p99 | joiner's unlock p50 | leave round p50 "
        "| UPDATE size | server RSS per stream | server CPU per round | per stream-ack | vs "
        f"{base.size if base else '-'} (round / CPU per ack) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.aborted or not r.join:
            reason = r.aborted.splitlines()[0] if r.aborted else "no rounds"
            lines.append(f"| {r.size:,} | aborted: {reason} | | | | | | | | |")
            continue
        join50 = statistics.median(r.join)
        ratio = "-"
        if base is not None and base is not r:
            ratio = (
                f"{join50 / statistics.median(base.join):,.1f}x / "
                f"{r.cpu_per_ack / base.cpu_per_ack:,.2f}x"
            )
        lines.append(
            f"| {r.size:,} | {fmt_ms(join50)} | {fmt_ms(percentile(r.join, 0.99))} "
            f"| {fmt_ms(statistics.median(r.join_joiner))} | {fmt_ms(statistics.median(r.leave))} "
            f"| {r.update_bytes / 1024:,.0f} KiB | {r.kib_per_stream:,.1f} KiB "
            f"| {fmt_ms(r.cpu_per_round)} | {r.cpu_per_ack * 1e6:,.0f} µs | {ratio} |"
        )
    done = [r for r in results if not r.aborted and r.join]
    if done:
        lines += [
            "",
            (
                f"Connecting {args.connect_batch} sidecars at a time, each batch settled before "
                "the next: "
                if args.connect_batch
                else "Connecting all sidecars at once (a cold start), until the table settled: "
            )
            + "; ".join(
                f"{r.size:,} in {r.settle:,.1f} s ({r.retries} streams failed and were reopened"
                + (f": {', '.join(f'{n} {w}' for w, n in r.why.items())}" if r.why else "")
                + ")"
                for r in done
            )
            + ". Server peak RSS (VmHWM): "
            + "; ".join(f"{r.size:,}: {r.hwm_kib / 1024:,.0f} MiB" for r in done)
            + ".",
        ]
    verdicts = []
    for r in results:
        if r.size == TARGET_ROUND_SIZE and not r.aborted and r.join:
            p50 = statistics.median(r.join)
            verdicts.append(
                f"{TARGET_ROUND_SIZE:,} sidecars: round p50 {fmt_ms(p50)} "
                f"({'met' if p50 < TARGET_ROUND_SECONDS else 'MISSED'}, target < 1 s); "
                f"{r.kib_per_stream:,.1f} KiB per stream "
                f"({'met' if r.kib_per_stream < TARGET_STREAM_KIB else 'MISSED'}, "
                "target < 100 KiB)."
            )
    lines += ["", *verdicts] if verdicts else []
    return "\n".join(lines)


def targets_met(results: list[Result]) -> bool:
    for r in results:
        if r.size == TARGET_ROUND_SIZE:
            if r.aborted or not r.join:
                return False
            if statistics.median(r.join) >= TARGET_ROUND_SECONDS:
                return False
            if r.kib_per_stream >= TARGET_STREAM_KIB:
                return False
    return True


# -- memory against the actor types of one report (--memory) ----------------------------------

SMALL_HOSTS = 5
MEMORY_TYPES = "100,1000,10000"
TARGET_MEMORY_TYPES = 1000
TARGET_MEMORY_RATIO = 1.5


def bench_type(i: int) -> str:
    """A 20-character actor type name, about the length of a real one."""
    return f"BenchActorType{i:06d}"


class _MemoryStream:
    """A sidecar that REPORTs once, acks every order like daprd and never reconnects."""

    def __init__(self, channel, name: str, entities: list[str]) -> None:  # type: ignore[no-untyped-def]
        from daprplane._proto.placement.v1 import placement_pb2 as pb

        self.pb, self.name = pb, name
        self.call = channel.stream_stream(
            METHOD, request_serializer=_identity, response_deserializer=parse_order
        )()
        self.report = pb.Host(
            name=name,
            id=name,
            api_level=20,
            namespace=NAMESPACE,
            entities=entities,
            operation=pb.REPORT,
        ).SerializeToString()
        self.acks = {"lock": pb.LOCK, "update": pb.UPDATE, "unlock": pb.UNLOCK}
        self.unlocked: set[int] = set()
        self.update_bytes = 0
        self.ended = ""
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.call.write(self.report)
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        import grpc

        try:
            async for operation, version, raw in self.call:
                if operation == "update":
                    self.update_bytes = len(raw)
                elif operation == "unlock":
                    self.unlocked.add(version)
                ack = self.pb.Host(
                    operation=self.acks[operation],
                    version=version,
                    namespace=NAMESPACE,
                    id=self.name,
                )
                await self.call.write(ack.SerializeToString())
            self.ended = f"{(await self.call.code()).name}: {await self.call.details()}"
        except grpc.aio.AioRpcError as error:
            self.ended = f"{error.code().name}: {error.details()}"
        except Exception as error:
            self.ended = f"{type(error).__name__}: {error}"


async def _memory_worker_main(conn: Connection, address: str) -> None:
    import grpc

    loop = asyncio.get_running_loop()
    # Big enough for the UPDATE of 1,000 types (tens of MiB); larger ones end that stream.
    options = [
        ("grpc.use_local_subchannel_pool", 1),
        ("grpc.max_receive_message_length", 256 * 1024 * 1024),
    ]
    channels: list[Any] = []
    streams: list[_MemoryStream] = []

    async def settled(deadline: float, above: int, big: _MemoryStream | None) -> tuple[str, int]:
        while time.monotonic() < deadline:
            if big is not None and big.ended:
                return "ended", 0
            common = set.intersection(*(s.unlocked for s in streams))
            done = [v for v in common if v > above]
            if done:
                return "settled", max(done)
            await asyncio.sleep(0.01)
        return "timeout", 0

    while True:
        command, *args = await loop.run_in_executor(None, conn.recv)
        try:
            if command == "connect":
                name, entities, timeout, above = args
                channel = grpc.aio.insecure_channel(address, options=options)
                channels.append(channel)
                stream = _MemoryStream(channel, name, entities)
                await stream.start()
                streams.append(stream)
                state, version = await settled(time.monotonic() + timeout, above, stream)
                reply: object = (state, version, stream.ended, stream.update_bytes)
            elif command == "stop":
                for stream in streams:
                    stream.call.cancel()
                for channel in channels:
                    await channel.close(None)
                conn.send(None)
                return
            else:
                raise ValueError(command)
        except Exception as error:
            reply = RuntimeError(f"memory worker {command}: {type(error).__name__}: {error}")
        conn.send(reply)


def _memory_worker(conn: Connection, address: str) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    asyncio.run(_memory_worker_main(conn, address))


@dataclass
class MemoryResult:
    server: str
    types: int
    idle_kib: int = 0
    small_kib: int = 0
    after_kib: int = 0
    hwm_kib: int = 0
    update_bytes: int = 0
    outcome: str = ""
    detail: str = ""


def _start_memory_server(kind: str, executable: str, log: Any, cap_mib: int) -> tuple[Any, str]:
    port, healthz = free_port(), free_port()
    common = [
        f"--port={port}",
        "--listen-address=127.0.0.1",
        f"--healthz-port={healthz}",
        f"--metrics-port={free_port()}",
        f"--initial-cluster=dapr-placement-0=127.0.0.1:{free_port()}",
        "--disseminate-timeout=600s",
    ]
    if kind == "daprplane":
        common += ["--healthz-listen-address=127.0.0.1", "--metrics-listen-address=127.0.0.1"]

    def limit_address_space() -> None:
        # A second guard beside the RSS watch: the process cannot take the machine down.
        cap = cap_mib * 4 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    process = subprocess.Popen(
        [executable, *common],
        env={},
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd="/",
        preexec_fn=limit_address_space,  # the parent has no threads yet
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{healthz}/healthz", timeout=2):
                break
        except (urllib.error.URLError, OSError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise SizeAborted(f"{kind} placement did not become healthy") from None
            time.sleep(0.1)
    return process, f"127.0.0.1:{port}"


def run_memory(kind: str, executable: str, types: int, args: argparse.Namespace) -> MemoryResult:
    result = MemoryResult(kind, types)
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    process, address = _start_memory_server(kind, executable, log, args.rss_cap)
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    worker = context.Process(target=_memory_worker, args=(child, address), daemon=True)
    worker.start()
    pid = process.pid
    try:
        time.sleep(1.0)  # Dapr's raft elects itself in the first second
        result.idle_kib = rss_kib(pid)
        version = 0
        for i in range(SMALL_HOSTS):
            parent.send(("connect", f"10.0.0.{i + 1}:50002", ["SmallActor"], 60.0, version))
            reply = _memory_reply(parent, process, result, args.rss_cap, 90)
            if reply[0] != "settled":
                raise SizeAborted(f"small host {i} did not settle: {reply}")
            version = reply[1]
        time.sleep(0.5)
        result.small_kib = rss_kib(pid)
        entities = [bench_type(i) for i in range(types)]
        parent.send(("connect", "10.0.1.1:50002", entities, args.size_timeout, version))
        state, _version, ended, update_bytes = _memory_reply(
            parent, process, result, args.rss_cap, args.size_timeout + 30
        )
        result.update_bytes = update_bytes
        if state == "settled":
            result.outcome = "settled"
        elif state == "ended":
            result.outcome = f"rejected ({ended.split(':', 1)[0]})"
            result.detail = ended
        else:
            result.outcome = f"not settled in {args.size_timeout:.0f} s"
        time.sleep(1.0)
        result.after_kib = rss_kib(pid)
        result.hwm_kib = rss_kib(pid, "VmHWM")
    except SizeAborted as error:
        result.outcome = str(error)
        if not result.hwm_kib:
            with contextlib.suppress(RuntimeError, OSError):  # gone, or a zombie
                result.hwm_kib = rss_kib(pid, "VmHWM")
    finally:
        with contextlib.suppress(Exception):
            parent.send(("stop",))
            parent.poll(10)
        worker.join(10)
        if worker.is_alive():
            worker.kill()
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        log.close()
    return result


def _memory_reply(
    conn: Connection, process: Any, result: MemoryResult, cap_mib: int, timeout: float
) -> Any:
    """The worker's reply, watching the server's RSS meanwhile: past ``cap_mib`` it is killed
    (its peak, kept in ``result``, is what the table reports)."""
    deadline = time.monotonic() + timeout
    cap_kib = cap_mib * 1024
    while not conn.poll(0.02):
        if process.poll() is not None:
            raise SizeAborted(f"server exited {process.returncode}")
        rss = rss_kib(process.pid)
        if rss > cap_kib:
            result.hwm_kib = rss_kib(process.pid, "VmHWM")
            process.kill()
            raise SizeAborted(f"stopped at the {cap_mib:,} MiB RSS cap")
        if time.monotonic() > deadline:
            raise SizeAborted(f"no answer in {timeout:.0f} s")
    reply = conn.recv()
    if isinstance(reply, Exception):
        raise SizeAborted(str(reply))
    return reply


def dapr_placement(choice: str | None) -> tuple[str | None, str]:
    if choice == "none":
        return None, "--dapr-placement=none"
    if choice:
        return choice, ""
    try:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.dapr.binaries import binary

        return str(binary("placement")), ""
    except Exception as error:  # no Go, no network: report daprplane alone, and say why
        return None, f"{type(error).__name__}: {error}"


def _mib(kib: int) -> str:
    return f"{kib / 1024:,.0f} MiB"


def render_memory(results: list[MemoryResult], dapr_missing: str, versions: str) -> str:
    by_key = {(r.server, r.types): r for r in results}
    all_types = sorted({r.types for r in results})
    lines = [
        "`bench/bench_placement.py --memory` starts one placement server per row (ours, "
        "`daprplane-placement`, and Dapr 1.18.3's own `placement` binary, each fresh, empty "
        "environment, loopback). Five small hosts with one actor type each connect and settle; "
        f"then one sidecar reports T actor types (20-character names, `{bench_type(0)}`...). "
        "Every simulated sidecar acks like daprd but skips decoding the table, and accepts "
        "messages up to 256 MiB (daprd stops at 4 MiB). *Idle* is the server's VmRSS before the "
        "first stream, *settled* after every stream unlocked the table with the big host, *peak* "
        "its VmHWM. Each entry of the UPDATE repeats the reporting host with all its T names, so "
        "the UPDATE grows as T²: a server that stores the table as messages grows the same way. "
        "Target: at 1,000 types daprplane settled ≤ 1.5x Dapr's; bounded where Dapr's is not.",
        "",
        f"Machine: {machine_line(versions)}."
        + (f" Dapr's placement not measured ({dapr_missing})." if dapr_missing else ""),
        "",
        "| actor types | server | outcome | UPDATE size | idle RSS | settled RSS | peak RSS "
        "| settled vs Dapr |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    verdicts: list[str] = []
    notes: list[str] = []
    for types in all_types:
        for server in ("daprplane", "dapr"):
            r = by_key.get((server, types))
            if r is None:
                continue
            ratio = "-"
            other = by_key.get(("dapr", types))
            if server == "daprplane" and other and other.outcome == r.outcome == "settled":
                value = r.after_kib / other.after_kib
                ratio = f"{value:.2f}x"
                if types == TARGET_MEMORY_TYPES:
                    met = "met" if value <= TARGET_MEMORY_RATIO else "MISSED"
                    verdicts.append(
                        f"{types:,} types: daprplane settles at {value:.2f}x Dapr's RSS "
                        f"({met}, target ≤ {TARGET_MEMORY_RATIO}x)."
                    )
            size = f"{r.update_bytes / 1024 / 1024:,.1f} MiB" if r.update_bytes else "-"
            after = _mib(r.after_kib) if r.after_kib else "-"
            if r.detail and not any(r.detail in line for line in notes):
                notes.append(f"{server} at {types:,} types: `{r.detail}`.")
            lines.append(
                f"| {types:,} | {server} | {r.outcome} | {size} | {_mib(r.idle_kib)} | {after} "
                f"| {_mib(r.hwm_kib)} | {ratio} |"
            )
    for extra in (notes, verdicts):
        lines += ["", *extra] if extra else []
    return "\n".join(lines)


def main_memory(args: argparse.Namespace) -> int:
    from importlib.metadata import version

    types_list = [int(t.replace("_", "")) for t in args.types.split(",") if t]
    dapr, missing = dapr_placement(args.dapr_placement)
    plan = [("daprplane", launcher())] + ([("dapr", dapr)] if dapr else [])
    results = []
    for types in types_list:
        for kind, executable in plan:
            print(f"{kind}: {types} actor types ...", file=sys.stderr, flush=True)
            result = run_memory(kind, executable, types, args)
            print(
                f"  {result.outcome}; settled {_mib(result.after_kib)}, "
                f"peak {_mib(result.hwm_kib)}",
                file=sys.stderr,
                flush=True,
            )
            results.append(result)
    text = render_memory(results, missing, f"daprplane {version('daprplane')}")
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    if args.write_docs:
        write_block(
            args.write_docs,
            "## Placement memory against actor types",
            "bench_placement_memory",
            "bench_placement.py --memory",
            text,
        )
    if args.check:
        for r in results:
            other = next((o for o in results if o.server == "dapr" and o.types == r.types), None)
            if (
                r.server == "daprplane"
                and r.types == TARGET_MEMORY_TYPES
                and other
                and (r.outcome != "settled" or r.after_kib > TARGET_MEMORY_RATIO * other.after_kib)
            ):
                return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,3000", help="comma-separated sidecar counts")
    parser.add_argument("--rounds", type=int, default=20, help="join (and leave) rounds per size")
    parser.add_argument("--workers", type=int, default=2, help="client processes")
    parser.add_argument(
        "--streams-per-channel",
        type=int,
        default=1,
        help="streams sharing one TCP connection (1: one connection per sidecar, like daprd)",
    )
    parser.add_argument(
        "--connect-batch",
        type=int,
        default=0,
        help="sidecars connected before each settle (0: all at once, like a cold start)",
    )
    parser.add_argument(
        "--profile-server",
        type=Path,
        metavar="PATH",
        help="run the server under cProfile, writing PATH.<size> (slows it down)",
    )
    parser.add_argument("--size-timeout", type=float, default=600, help="seconds per size")
    parser.add_argument(
        "--memory",
        action="store_true",
        help="measure server memory against the actor types of one report, daprplane vs Dapr",
    )
    parser.add_argument(
        "--types", default=MEMORY_TYPES, help="--memory: comma-separated actor type counts"
    )
    parser.add_argument(
        "--dapr-placement", help="--memory: Dapr's placement binary (default: built); none to skip"
    )
    parser.add_argument(
        "--rss-cap",
        type=int,
        default=4096,
        help="--memory: MiB of RSS at which a server is stopped",
    )
    parser.add_argument("--disseminate-timeout", type=int, default=600, help="server seconds")
    add_report_arguments(parser, "the table")
    args = parser.parse_args(argv)
    if args.memory:
        return main_memory(args)
    sizes = [int(s.replace("_", "")) for s in args.sizes.split(",") if s]
    limit = raise_fd_limit()
    need = max(sizes) * (2 if args.streams_per_channel == 1 else 1) + 200
    if limit < need:
        print(
            f"warning: RLIMIT_NOFILE {limit} may be too low for {max(sizes)} sidecars",
            file=sys.stderr,
        )

    from importlib.metadata import version

    versions = f"daprplane {version('daprplane')}"
    results = []
    for size in sizes:
        print(f"{size} sidecars ...", file=sys.stderr, flush=True)
        result = run_size(size, args)
        if result.aborted:
            print(f"  aborted: {result.aborted}", file=sys.stderr, flush=True)
        else:
            p50 = fmt_ms(statistics.median(result.join))
            print(
                f"  settled in {result.settle:.1f} s; join p50 {p50}"
                f", {result.kib_per_stream:.1f} KiB/stream",
                file=sys.stderr,
                flush=True,
            )
        results.append(result)
    text = render(results, args, versions)
    print(text)
    if args.output:
        args.output.write_text(text + "\n", encoding="utf-8")
    if args.write_docs:
        write_block(
            args.write_docs,
            "## Placement dissemination",
            "bench_placement",
            "bench_placement.py",
            text,
        )
    return 1 if args.check and not targets_met(results) else 0


if __name__ == "__main__":
    sys.exit(main())
