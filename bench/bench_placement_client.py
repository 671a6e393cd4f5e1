"""Placement client and simulator benchmarks: the Rust ring against the pure-Python twin.

    python bench/bench_placement_client.py                 # prints both tables
    python bench/bench_placement_client.py --write-docs    # refreshes docs/benchmarks.md

(b) Ring rebuild for one UPDATE of 1,000 hosts x 10 actor types (RF 100), as the client does it:
    decode the serialized PlacementOrder, build the rings, ack. Two shapes: every type on its own
    host set (10 rings, 1,000,000 vnodes), and every type on the same hosts (the client shares
    one ring between types with the same hosts).
(c) ``placement simulate`` of 10,000,000 actors over 1,000 hosts. The Rust ring runs the full
    size. The Python ring would take minutes, so it runs two samples (1M and 2M actors) and its
    10M time is extrapolated from them with a straight line (fixed cost + cost per actor); the
    tables say so. Both rings must agree on the samples.

Best of ``--repeat`` runs, alternating implementations; ratios, not absolute times, are what
carries over to other machines. ``main(argv)`` is the entry point for the nox session.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

from _report import DOCS, machine_line, write_block

BLOCKS = {
    "client": ("## Placement client", "bench_placement_client"),
    "simulate": ("## Placement simulation", "bench_placement_simulate"),
}


def best_of(
    repeat: int, impls: Sequence[ModuleType], run: Callable[[ModuleType], object]
) -> dict[str, float]:
    best = {impl.IMPLEMENTATION: float("inf") for impl in impls}
    for _ in range(repeat):
        for impl in impls:
            gc.collect()
            start = time.perf_counter()
            run(impl)
            best[impl.IMPLEMENTATION] = min(best[impl.IMPLEMENTATION], time.perf_counter() - start)
    return best


def fmt(seconds: float) -> str:
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.1f} s"


# -- (b) ring rebuild for an UPDATE ---------------------------------------------------------


def update_order(hosts: int, types: int, rf: int, shared: bool) -> bytes:
    """A serialized UPDATE: ``hosts`` sidecars each reporting ``types`` actor types. With
    ``shared`` False, type k leaves out host k, so every type has its own host set."""
    from daprplane._proto.placement.v1 import placement_pb2 as pb
    from daprplane.plugins.placement.scenarios import host_names

    names = host_names(hosts)
    type_names = [f"ActorType{k}" for k in range(types)]
    reports = {
        name: pb.Host(
            name=name,
            id=f"app-{i}",
            api_level=20,
            namespace="default",
            entities=sorted(type_names),
            operation=pb.REPORT,
        )
        for i, name in enumerate(names)
    }
    entries = {}
    for k, actor_type in enumerate(type_names):
        members = names if shared else [n for i, n in enumerate(names) if i != k]
        entries[actor_type] = pb.PlacementTable(load_map={n: reports[n] for n in members})
    order = pb.PlacementOrder(
        operation="update",
        version=1,
        tables=pb.PlacementTables(version="1", replication_factor=rf, entries=entries),
    )
    return order.SerializeToString()


def apply_update(impl: ModuleType, payload: bytes) -> int:
    from daprplane._proto.placement.v1 import placement_pb2 as pb
    from daprplane.plugins.placement.client import ClientProtocol

    protocol = ClientProtocol(app_id="bench", namespace="default", host_name="h", ring_impl=impl)
    order = pb.PlacementOrder.FromString(payload)
    protocol.receive(order)
    assert protocol.tables is not None
    return len(list(protocol.tables.rings()))


def bench_client(impls: Sequence[ModuleType], hosts: int, types: int, rf: int, repeat: int) -> str:
    from daprplane._proto.placement.v1 import placement_pb2 as pb

    rows = []
    for shared in (False, True):
        payload = update_order(hosts, types, rf, shared)
        rings = apply_update(impls[0], payload)
        decode = min(
            _timed(lambda p=payload: pb.PlacementOrder.FromString(p)) for _ in range(repeat)
        )
        times = best_of(repeat, impls, lambda impl, p=payload: apply_update(impl, p))
        shape = (
            f"{types} types, each on its own host set ({rings} rings)"
            if not shared
            else f"{types} types on the same hosts ({rings} shared ring)"
        )
        rows.append((shape, len(payload), decode, times))
    lines = [
        f"UPDATE of {hosts:,} hosts x {types} actor types, replication factor {rf}; best of "
        f"{repeat} runs; {machine_line()}.",
        "",
        "| UPDATE | size | decode | Rust | Python | Python / Rust |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for shape, size, decode, times in rows:
        rust, python = times.get("rust"), times["python"]
        lines.append(
            f"| {shape} | {size / 2**20:.2f} MiB | {fmt(decode)} "
            f"| {fmt(rust) if rust else '-'} | {fmt(python)} "
            f"| {f'{python / rust:.1f}x' if rust else '-'} |"
        )
    lines.append("")
    lines.append(
        "Rust and Python columns: decode + build every ring + ack, as the client "
        "handles the UPDATE; decode is the protobuf parse alone."
    )
    return "\n".join(lines)


def _timed(run: Callable[[], object]) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


# -- (c) simulate -----------------------------------------------------------------------------


def bench_simulate(
    impls: Sequence[ModuleType],
    hosts: int,
    actors: int,
    samples: Sequence[int],
    scenarios: Sequence[str],
    repeat: int,
) -> str:
    from daprplane.plugins.placement.scenarios import host_names, parse_scenario
    from daprplane.plugins.placement.simulate import simulate

    names = host_names(hosts)
    by_name = {impl.IMPLEMENTATION: impl for impl in impls}
    python = by_name["python"]
    rust = by_name.get("rust")
    lines = [
        f"{actors:,} actors (`actor-<i>`) over {hosts:,} hosts, replication factor 100, "
        f"chunks of 1,000,000; best of {repeat} runs; {machine_line()}.",
        "",
        "| scenario | Rust, measured | Python, measured | Python, 10M extrapolated "
        "| Python / Rust |",
        "|---|---:|---:|---:|---:|",
    ]
    notes = []
    for text in scenarios:
        plan = parse_scenario(text)

        def run(impl: ModuleType, count: int, plan=plan) -> object:  # type: ignore[no-untyped-def]
            return simulate(impl, names, plan, actors=count)

        # Both rings must give the same answer before their times mean anything.
        if rust is not None:
            a, b = run(rust, samples[0]), run(python, samples[0])
            if (a.moved, a.after.per_host) != (b.moved, b.after.per_host):
                raise SystemExit(f"{text}: the rings disagree; fix that before benchmarking")
        sample_times = [
            best_of(repeat, [python], lambda impl, n=n: run(impl, n))["python"] for n in samples
        ]
        (n1, t1), (n2, t2) = zip(samples, sample_times, strict=True)
        per_actor = (t2 - t1) / (n2 - n1)
        fixed = max(0.0, t1 - per_actor * n1)
        python_full = fixed + per_actor * actors
        measured = ", ".join(
            f"{n / 1e6:g}M: {fmt(t)}" for n, t in zip(samples, sample_times, strict=True)
        )
        if rust is not None:
            rust_full = best_of(repeat, [rust], lambda impl: run(impl, actors))["rust"]
            result = run(rust, actors)
            notes.append(
                f"- `{text}` at {actors:,} actors: after-table max/mean "
                f"{result.after.max_over_mean:.3f}, stddev {result.after.stddev:,.0f}; moved "
                f"{result.moved_fraction:.2%}"
                + (f" (ideal {result.expected_fraction:.2%})" if result.expected_fraction else "")
            )
            ratio = f"{python_full / rust_full:.1f}x"
        else:
            rust_full, ratio = None, "-"
        lines.append(
            f"| `{text}` | {fmt(rust_full) if rust_full else '-'} | {measured} "
            f"| {fmt(python_full)} | {ratio} |"
        )
    lines.append("")
    lines.append(
        f"The Python column at {actors:,} is **extrapolated**, not measured: a straight line "
        f"through the two measured samples ({' and '.join(f'{n:,}' for n in samples)} actors)."
    )
    if notes:
        lines += ["", "What the Rust run reported:", "", *notes]
    return "\n".join(lines)


# -- plumbing ---------------------------------------------------------------------------------


def write_docs(path: Path, key: str, generated: str) -> None:
    """Replaces the generated block of one section, keeping the prose around it."""
    heading, tag = BLOCKS[key]
    write_block(path, heading, tag, "bench_placement_client.py", generated)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--types", type=int, default=10, help="actor types in the UPDATE (b)")
    parser.add_argument("--replication-factor", type=int, default=100)
    parser.add_argument("--actors", type=int, default=10_000_000, help="actors to simulate (c)")
    parser.add_argument(
        "--samples",
        type=int,
        nargs=2,
        default=[1_000_000, 2_000_000],
        metavar=("N1", "N2"),
        help="Python sample sizes for the extrapolation",
    )
    parser.add_argument(
        "--scenario",
        action="append",
        dest="scenarios",
        help="simulate scenario (repeatable; default steady and scale-out:10)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; best kept")
    parser.add_argument("--only", choices=["client", "simulate"], help="run one benchmark")
    parser.add_argument(
        "--write-docs",
        nargs="?",
        type=Path,
        const=DOCS,
        metavar="PATH",
        help=f"write the tables into PATH (default {DOCS.name})",
    )
    args = parser.parse_args(argv)
    args.scenarios = args.scenarios or ["steady", "scale-out:10"]
    if args.samples[0] >= args.samples[1]:
        parser.error("--samples must be increasing")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from daprplane.ring import implementation, rust_available

    impls = [implementation("python")]
    if rust_available():
        impls.insert(0, implementation("rust"))
    elif os.environ.get("DAPRPLANE_REQUIRE_RUST") == "1":
        print("error: DAPRPLANE_REQUIRE_RUST=1 but the Rust ring is not built", file=sys.stderr)
        return 2
    else:
        print("warning: the Rust extension is not built; timing Python only", file=sys.stderr)

    if args.only in (None, "client"):
        table = bench_client(impls, args.hosts, args.types, args.replication_factor, args.repeat)
        print(f"(b) Placement client: ring rebuild for one UPDATE\n\n{table}\n")
        if args.write_docs is not None:
            write_docs(args.write_docs, "client", table)
    if args.only in (None, "simulate"):
        table = bench_simulate(
            impls,
            args.hosts,
            args.actors,
            args.samples,
            args.scenarios,
            max(1, min(args.repeat, 2)),
        )
        print(f"(c) Placement simulation\n\n{table}\n")
        if args.write_docs is not None:
            write_docs(args.write_docs, "simulate", table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
