"""Placement simulation: how evenly a ring spreads actors, and how many move when hosts change.

Actors are looked up in chunks with the ring's ``lookup_many`` (the Rust ring hashes a chunk on
both cores without the GIL), so tens of millions of actors fit in a few hundred MB: a chunk's IDs
and owners are dropped as soon as they are counted.

- ``steady``: one table; the movement is 0 by construction.
- ``scale-out:K`` / ``scale-in:K``: K hosts join (new names) or the last K leave; every actor is
  looked up before and after. Consistent hashing moves about K/(N+K) (resp. K/N) of them.
- ``rolling-restart``: each host in turn leaves and comes back under a new name (a restarted pod
  gets a new IP, and daprd's host name is ``<pod IP>:<port>``); every leave and every join is its
  own table, as without a coalesce window. Each of those 2N tables costs one pass over every
  actor, so this is the costly scenario: 2 x N x actors lookups.
"""

from __future__ import annotations

import math
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from operator import ne
from types import ModuleType
from typing import Any

from daprplane.plugins.placement.scenarios import Scenario, actor_ids, host_name

__all__ = ["LoadSpread", "Simulation", "SimulationResult", "load_spread", "simulate"]

DEFAULT_CHUNK = 1_000_000


@dataclass(frozen=True)
class LoadSpread:
    """Actors per host over every host of a table (hosts without actors count as 0)."""

    hosts: int
    actors: int
    min: int
    max: int
    mean: float
    stddev: float
    max_over_mean: float
    per_host: dict[str, int] = field(repr=False)


def load_spread(loads: dict[str, int]) -> LoadSpread:
    values = list(loads.values())
    total = sum(values)
    mean = total / len(values)
    stddev = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))
    return LoadSpread(
        hosts=len(values),
        actors=total,
        min=min(values),
        max=max(values),
        mean=mean,
        stddev=stddev,
        max_over_mean=max(values) / mean if mean else 0.0,
        per_host=dict(loads),
    )


@dataclass(frozen=True)
class Step:
    """One table change of a rolling restart."""

    change: str  # "-host" or "+host"
    moved: int
    max_over_mean: float


@dataclass(frozen=True)
class SimulationResult:
    scenario: str
    ring: str
    replication_factor: int
    actors: int
    hosts_before: int
    hosts_after: int
    before: LoadSpread
    after: LoadSpread
    #: Actors whose owner differs between the first and the last table.
    moved: int
    moved_fraction: float
    #: What ideal consistent hashing would move for this scenario (None: no simple formula).
    expected_fraction: float | None
    seconds: float
    #: Rolling restart only: every table change, and the sum of moves over them.
    steps: list[Step] = field(default_factory=list)
    total_moves: int = 0

    def as_dict(self, per_host: bool = False) -> dict[str, Any]:
        data = asdict(self)
        for key in ("before", "after"):
            if not per_host:
                data[key].pop("per_host")
        if self.steps:
            data["total_moves_per_actor"] = self.total_moves / self.actors if self.actors else 0.0
            data["max_step_moved_fraction"] = max(s.moved for s in self.steps) / max(self.actors, 1)
            data["max_step_max_over_mean"] = max(s.max_over_mean for s in self.steps)
        else:
            data.pop("steps")
            data.pop("total_moves")
        return data


def _chunks(actors: int, chunk: int) -> Iterator[list[str]]:
    for start in range(0, actors, chunk):
        yield actor_ids(start, min(actors, start + chunk))


class Simulation:
    """One run: a ring implementation, an RF, a host list and an actor count."""

    def __init__(
        self,
        ring_impl: ModuleType,
        hosts: Sequence[str],
        *,
        actors: int,
        replication_factor: int = 100,
        chunk: int = DEFAULT_CHUNK,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        if len(set(hosts)) != len(hosts):
            raise ValueError("host names must be unique")
        self.ring_impl = ring_impl
        self.hosts = list(hosts)
        self.actors = actors
        self.rf = replication_factor
        self.chunk = max(1, chunk)
        self.progress = progress or (lambda _: None)

    def ring(self, hosts: Sequence[str]) -> Any:
        return self.ring_impl.Ring(list(hosts), replication_factor=self.rf)

    def fresh_names(self, count: int) -> list[str]:
        """``count`` host names not among the starting hosts."""
        taken, index = set(self.hosts), len(self.hosts)
        names: list[str] = []
        while len(names) < count:
            name = host_name(index)
            index += 1
            if name not in taken:
                names.append(name)
        return names

    def run(self, scenario: Scenario) -> SimulationResult:
        scenario.validate(len(self.hosts))
        started = time.perf_counter()
        after_hosts = scenario.after(
            self.hosts, self.fresh_names(scenario.new_hosts_needed(len(self.hosts)))
        )
        if scenario.kind == "rolling-restart":
            return self._rolling(scenario, after_hosts, started)
        before_ring = self.ring(self.hosts)
        after_ring = before_ring if scenario.kind == "steady" else self.ring(after_hosts)
        before = Counter(dict.fromkeys(self.hosts, 0))
        after = Counter(dict.fromkeys(after_hosts, 0))
        moved = 0
        for ids in _chunks(self.actors, self.chunk):
            owners = before_ring.lookup_many(ids)
            before.update(owners)
            if after_ring is before_ring:
                after.update(owners)
                continue
            new_owners = after_ring.lookup_many(ids)
            after.update(new_owners)
            moved += sum(map(ne, owners, new_owners))
        expected = {
            "steady": 0.0,
            "scale-out": scenario.count / len(after_hosts),
            "scale-in": scenario.count / len(self.hosts),
        }[scenario.kind]
        return self._result(scenario, after_hosts, before, after, moved, expected, started)

    def _result(
        self,
        scenario: Scenario,
        after_hosts: Sequence[str],
        before: dict[str, int],
        after: dict[str, int],
        moved: int,
        expected: float | None,
        started: float,
        steps: list[Step] | None = None,
    ) -> SimulationResult:
        steps = steps or []
        return SimulationResult(
            scenario=str(scenario),
            ring=self.ring_impl.IMPLEMENTATION,
            replication_factor=self.rf,
            actors=self.actors,
            hosts_before=len(self.hosts),
            hosts_after=len(after_hosts),
            before=load_spread(before),
            after=load_spread(after),
            moved=moved,
            moved_fraction=moved / self.actors if self.actors else 0.0,
            expected_fraction=expected,
            seconds=time.perf_counter() - started,
            steps=steps,
            total_moves=sum(s.moved for s in steps),
        )

    def _rolling(
        self, scenario: Scenario, fresh: Sequence[str], started: float
    ) -> SimulationResult:
        # Owners are kept as host indices (4 bytes per actor) so that each table change can be
        # compared with the one before it.
        names = [*self.hosts, *fresh]
        index = {name: i for i, name in enumerate(names)}.__getitem__
        ring = self.ring(self.hosts)
        owners = array("I")
        for ids in _chunks(self.actors, self.chunk):
            owners.extend(map(index, ring.lookup_many(ids)))
        initial = array("I", owners)
        before = Counter(dict.fromkeys(self.hosts, 0))
        before.update(names[i] for i in initial)
        steps: list[Step] = []
        for number, (old, new) in enumerate(zip(self.hosts, fresh, strict=True), 1):
            for change, apply in ((f"-{old}", ring.remove), (f"+{new}", ring.add)):
                apply(change[1:])
                steps.append(self._repass(ring, owners, index, change))
            self.progress(f"rolling restart: {number}/{len(self.hosts)} hosts replaced")
        after = Counter(dict.fromkeys(fresh, 0))
        after.update(names[i] for i in owners)
        moved = sum(map(ne, initial, owners))
        return self._result(scenario, fresh, before, after, moved, None, started, steps)

    def _repass(
        self, ring: Any, owners: array[int], index: Callable[[str], int], change: str
    ) -> Step:
        moved = 0
        loads: Counter[str] = Counter(dict.fromkeys(ring.hosts, 0))
        for start in range(0, self.actors, self.chunk):
            stop = min(self.actors, start + self.chunk)
            found = ring.lookup_many(actor_ids(start, stop))
            loads.update(found)
            new = array("I", map(index, found))
            moved += sum(map(ne, owners[start:stop], new))
            owners[start:stop] = new
        return Step(change, moved, load_spread(loads).max_over_mean)


def simulate(
    ring_impl: ModuleType,
    hosts: Sequence[str],
    scenario: Scenario,
    *,
    actors: int,
    replication_factor: int = 100,
    chunk: int = DEFAULT_CHUNK,
    progress: Callable[[str], None] | None = None,
) -> SimulationResult:
    """Runs ``scenario`` over ``hosts`` with ``actors`` actors ``actor-0 … actor-<actors-1>``."""
    return Simulation(
        ring_impl,
        hosts,
        actors=actors,
        replication_factor=replication_factor,
        chunk=chunk,
        progress=progress,
    ).run(scenario)


def render_text(result: SimulationResult) -> str:
    """The human-readable report."""
    lines = [
        f"scenario {result.scenario}: {result.actors:,} actors, replication factor "
        f"{result.replication_factor}, {result.ring} ring, {result.seconds:.2f}s",
        "",
        f"{'table':<8}{'hosts':>7}{'min':>12}{'max':>12}{'mean':>14}{'stddev':>12}{'max/mean':>10}",
    ]
    for label, spread in (("before", result.before), ("after", result.after)):
        lines.append(
            f"{label:<8}{spread.hosts:>7,}{spread.min:>12,}{spread.max:>12,}"
            f"{spread.mean:>14,.1f}{spread.stddev:>12,.1f}{spread.max_over_mean:>10.3f}"
        )
    lines.append("")
    expected = (
        "" if result.expected_fraction is None else f" (ideal {result.expected_fraction:.2%})"
    )
    lines.append(
        f"moved: {result.moved:,} of {result.actors:,} actors = "
        f"{result.moved_fraction:.2%}{expected}"
    )
    if result.steps:
        data = result.as_dict()
        lines.append(
            f"during the restart: {len(result.steps)} table changes, {result.total_moves:,} "
            f"moves ({data['total_moves_per_actor']:.2f} per actor), at most "
            f"{data['max_step_moved_fraction']:.2%} in one change, peak max/mean "
            f"{data['max_step_max_over_mean']:.3f}"
        )
    return "\n".join(lines)


def plot(result: SimulationResult, path: str) -> None:
    """Per-host loads before and after (sorted), plus moves per change for a rolling restart.
    Needs matplotlib (the ``plot`` extra); the caller checks that first."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = 3 if result.steps else 2
    figure, axes = plt.subplots(panels, 1, figsize=(10, 3.2 * panels), constrained_layout=True)
    for axis, label, spread in zip(
        axes, ("before", "after"), (result.before, result.after), strict=False
    ):
        loads = sorted(spread.per_host.values(), reverse=True)
        axis.bar(range(len(loads)), loads, width=1.0, color="tab:blue")
        axis.axhline(spread.mean, color="tab:red", linewidth=1, label=f"mean {spread.mean:,.0f}")
        axis.set_title(
            f"{label}: {spread.hosts:,} hosts, max/mean {spread.max_over_mean:.3f}, "
            f"stddev {spread.stddev:,.1f}"
        )
        axis.set_xlabel("hosts, most loaded first")
        axis.set_ylabel("actors")
        axis.legend(loc="upper right")
    if result.steps:
        axis = axes[2]
        axis.plot([s.moved / max(result.actors, 1) for s in result.steps], color="tab:orange")
        axis.set_title("rolling restart: fraction of actors moved by each table change")
        axis.set_xlabel("table change")
        axis.set_ylabel("moved")
    figure.suptitle(
        f"{result.scenario}: {result.actors:,} actors, RF {result.replication_factor}, "
        f"moved {result.moved_fraction:.2%}"
    )
    figure.savefig(path, dpi=100)
    plt.close(figure)
