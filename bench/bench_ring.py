"""Placement ring benchmark: the Rust extension against the pure-Python twin, in one run.

    python bench/bench_ring.py                      # full size, prints a markdown table
    python bench/bench_ring.py --output table.md    # also writes the table to a file
    python bench/bench_ring.py --check              # exit 1 if a speed target is missed
    python bench/bench_ring.py --write-docs         # refresh the table in docs/benchmarks.md

Each workload is timed a few times per implementation, alternating between them, and the best
time is kept (the least disturbed by other work on the machine). Targets are ratios, not
absolute times, so they hold on any machine: see TARGETS. ``main(argv)`` is the entry point
for the nox session.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType

from _report import add_report_arguments, machine_line, write_block

# Minimum Python-time / Rust-time ratio per workload.
TARGETS = {"build": 10.0, "lookup_many": 20.0}


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    run: Callable[[ModuleType], object]


@dataclass(frozen=True)
class Result:
    workload: Workload
    seconds: dict[str, float]  # implementation name -> best time

    @property
    def ratio(self) -> float | None:
        if "rust" in self.seconds and "python" in self.seconds:
            return self.seconds["python"] / self.seconds["rust"]
        return None


def host_names(count: int) -> list[str]:
    return [f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:50002" for i in range(count)]


def actor_ids(count: int) -> list[str]:
    """UUID-shaped actor IDs (36 characters), the common shape in Dapr apps."""
    return [
        f"{i:08x}-{i % 65521:04x}-4000-8000-{i * 2654435761 % 2**48:012x}" for i in range(count)
    ]


def workloads(hosts: int, rf: int, keys: int, single: int) -> list[Workload]:
    names = host_names(hosts)
    ids = actor_ids(keys)
    single_ids = ids[:single]
    rings: dict[str, object] = {}

    def ring_for(impl: ModuleType):  # type: ignore[no-untyped-def]
        if impl.IMPLEMENTATION not in rings:
            rings[impl.IMPLEMENTATION] = impl.Ring(names, replication_factor=rf)
        return rings[impl.IMPLEMENTATION]

    def single_lookups(impl: ModuleType) -> None:
        lookup = ring_for(impl).lookup
        for key in single_ids:
            lookup(key)

    return [
        Workload(
            "build",
            f"Ring({hosts:,} hosts, replication_factor={rf})",
            lambda impl: impl.Ring(names, replication_factor=rf),
        ),
        Workload(
            "lookup_many",
            f"lookup_many({keys:,} keys)",
            lambda impl: ring_for(impl).lookup_many(ids),
        ),
        Workload("lookup", f"{single:,} x lookup(key)", single_lookups),
        Workload("hash_many", f"hash_many({keys:,} keys)", lambda impl: impl.hash_many(ids)),
    ]


def measure(
    implementations: Sequence[ModuleType], items: Sequence[Workload], repeat: int
) -> list[Result]:
    """Best of `repeat` runs per implementation. Runs alternate between the implementations so
    that a burst of other work on the machine slows both, not just one, and the ratio holds."""
    results = []
    for workload in items:
        best = {impl.IMPLEMENTATION: float("inf") for impl in implementations}
        for _ in range(repeat):
            for impl in implementations:
                gc.collect()
                start = time.perf_counter()
                workload.run(impl)
                elapsed = time.perf_counter() - start
                best[impl.IMPLEMENTATION] = min(best[impl.IMPLEMENTATION], elapsed)
        results.append(Result(workload, best))
    return results


def check_agreement(implementations: Sequence[ModuleType], hosts: int, rf: int) -> None:
    """The benchmark compares like with like only if both rings give the same answers."""
    names, ids = host_names(hosts), actor_ids(10_000)
    answers = [impl.Ring(names, replication_factor=rf).lookup_many(ids) for impl in implementations]
    if any(answer != answers[0] for answer in answers):
        raise SystemExit("the implementations disagree; fix that before benchmarking")


def format_seconds(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    return f"{seconds * 1000:,.1f} ms" if seconds < 10 else f"{seconds:,.2f} s"


def markdown_table(results: Sequence[Result]) -> str:
    lines = [
        "| workload | Rust | Python | Python / Rust | target |",
        "|---|---:|---:|---:|---|",
    ]
    for result in results:
        ratio = result.ratio
        target = TARGETS.get(result.workload.name)
        if target is None:
            verdict = "-"
        elif ratio is None:
            verdict = f">= {target:g}x (not measured)"
        else:
            verdict = f">= {target:g}x {'met' if ratio >= target else 'MISSED'}"
        lines.append(
            f"| {result.workload.description} "
            f"| {format_seconds(result.seconds.get('rust'))} "
            f"| {format_seconds(result.seconds.get('python'))} "
            f"| {'-' if ratio is None else f'{ratio:,.1f}x'} "
            f"| {verdict} |"
        )
    return "\n".join(lines)


def missed_targets(results: Sequence[Result]) -> list[str]:
    return [
        result.workload.name
        for result in results
        if result.workload.name in TARGETS
        and (result.ratio is None or result.ratio < TARGETS[result.workload.name])
    ]


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--replication-factor", type=int, default=100)
    parser.add_argument("--keys", type=int, default=1_000_000, help="keys for the batch calls")
    parser.add_argument("--single", type=int, default=100_000, help="single lookup() calls")
    parser.add_argument("--repeat", type=int, default=3, help="runs per workload; best kept")
    add_report_arguments(parser, "the table (placement ring section)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    from daprplane.ring import implementation, rust_available

    implementations = [implementation("python")]
    if rust_available():
        implementations.insert(0, implementation("rust"))
    elif os.environ.get("DAPRPLANE_REQUIRE_RUST") == "1":
        print("error: DAPRPLANE_REQUIRE_RUST=1 but the Rust ring is not built", file=sys.stderr)
        return 2
    else:
        print("warning: the Rust extension is not built; timing Python only", file=sys.stderr)

    check_agreement(implementations, min(args.hosts, 50), args.replication_factor)
    items = workloads(args.hosts, args.replication_factor, args.keys, args.single)
    results = measure(implementations, items, args.repeat)
    table = markdown_table(results)
    heading = f"Best of {args.repeat} runs; {machine_line()}."
    print(f"Placement ring. {heading}\n")
    print(table)
    if args.output is not None:
        args.output.write_text(table + "\n", encoding="utf-8")
    if args.write_docs is not None:
        generated = f"{heading}\n\n{table}"
        write_block(args.write_docs, "## Placement ring", "bench_ring", "bench_ring.py", generated)

    missed = missed_targets(results)
    if missed:
        print(f"\nspeed targets missed: {', '.join(missed)}", file=sys.stderr)
        return 1 if args.check else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
