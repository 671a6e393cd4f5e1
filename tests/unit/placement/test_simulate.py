"""The simulator against an independent reference: hashlib BLAKE2b, bisect, plain counting."""

from __future__ import annotations

import hashlib
import math
from bisect import bisect_left
from collections import Counter
from types import ModuleType

import pytest

from daprplane.plugins.placement.scenarios import (
    Scenario,
    actor_ids,
    host_names,
    parse_count,
    parse_scenario,
)
from daprplane.plugins.placement.simulate import load_spread, render_text, simulate
from daprplane.ring import implementation

RF = 10
ACTORS = 3000


@pytest.fixture(params=["rust", "python"])
def ring_impl(request: pytest.FixtureRequest) -> ModuleType:
    return implementation(request.param)


def h(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


def owners(hosts: list[str], actors: list[str], rf: int = RF) -> list[str]:
    vnodes = sorted((h(f"{name}{i}"), name) for name in hosts for i in range(rf))
    hashes = [v for v, _ in vnodes]
    return [vnodes[bisect_left(hashes, h(a)) % len(vnodes)][1] for a in actors]


def loads(hosts: list[str], owned: list[str]) -> dict[str, int]:
    counts = Counter(owned)
    return {name: counts[name] for name in hosts}


def test_names_are_deterministic() -> None:
    assert host_names(3) == ["10.0.0.0:50002", "10.0.0.1:50002", "10.0.0.2:50002"]
    assert host_names(2, start=256) == ["10.0.1.0:50002", "10.0.1.1:50002"]
    assert actor_ids(8, 11) == ["actor-8", "actor-9", "actor-10"]


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("1000", 1000),
        ("1_000_000", 1_000_000),
        ("10k", 10_000),
        ("10M", 10_000_000),
        ("1e7", 10_000_000),
        ("2.5k", 2500),
        ("0", 0),
        ("1,000", 1000),
    ],
)
def test_parse_count(text: str, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize("text", ["", "-1", "ten", "1.5", "10x", "1e-3"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_count(text)


def test_parse_scenario() -> None:
    assert parse_scenario("steady") == Scenario("steady")
    assert parse_scenario("scale-out:5") == Scenario("scale-out", 5)
    assert str(parse_scenario("Scale-In:2")) == "scale-in:2"
    assert parse_scenario("rolling-restart") == Scenario("rolling-restart")
    for bad in ("scale-out", "scale-out:0", "steady:3", "explode", "scale-in:x"):
        with pytest.raises(ValueError):
            parse_scenario(bad)


def test_steady_spread_matches_reference(ring_impl: ModuleType) -> None:
    hosts = host_names(7)
    result = simulate(
        ring_impl, hosts, Scenario("steady"), actors=ACTORS, replication_factor=RF, chunk=700
    )
    expected = loads(hosts, owners(hosts, actor_ids(0, ACTORS)))
    assert result.before.per_host == expected == result.after.per_host
    assert result.moved == 0 and result.moved_fraction == 0
    values = list(expected.values())
    mean = ACTORS / 7
    assert result.before.min == min(values) and result.before.max == max(values)
    assert result.before.mean == pytest.approx(mean)
    assert result.before.stddev == pytest.approx(
        math.sqrt(sum((v - mean) ** 2 for v in values) / 7)
    )
    assert result.before.max_over_mean == pytest.approx(max(values) / mean)
    assert result.ring == ring_impl.IMPLEMENTATION


@pytest.mark.parametrize("scenario", ["scale-out:3", "scale-in:2"])
def test_scaling_moves_exactly_what_the_reference_moves(
    ring_impl: ModuleType, scenario: str
) -> None:
    hosts = host_names(6)
    plan = parse_scenario(scenario)
    after_hosts = host_names(9) if plan.kind == "scale-out" else hosts[:4]
    ids = actor_ids(0, ACTORS)
    old, new = owners(hosts, ids), owners(after_hosts, ids)
    moved = sum(a != b for a, b in zip(old, new, strict=True))
    result = simulate(ring_impl, hosts, plan, actors=ACTORS, replication_factor=RF, chunk=1000)
    assert result.moved == moved
    assert result.moved_fraction == pytest.approx(moved / ACTORS)
    assert result.before.per_host == loads(hosts, old)
    assert result.after.per_host == loads(after_hosts, new)
    assert result.hosts_after == len(after_hosts)
    assert result.expected_fraction == pytest.approx(3 / 9 if plan.kind == "scale-out" else 2 / 6)


def test_scale_out_moves_actors_only_to_new_hosts(ring_impl: ModuleType) -> None:
    hosts = host_names(5)
    ids = actor_ids(0, ACTORS)
    old, new = owners(hosts, ids), owners(host_names(6), ids)
    assert all(a == b or b == host_names(6)[5] for a, b in zip(old, new, strict=True))
    result = simulate(
        ring_impl, hosts, parse_scenario("scale-out:1"), actors=ACTORS, replication_factor=RF
    )
    assert result.moved == result.after.per_host[host_names(6)[5]]


def test_rolling_restart_matches_a_step_by_step_reference(ring_impl: ModuleType) -> None:
    hosts = host_names(4)
    fresh = host_names(4, start=4)
    ids = actor_ids(0, 1000)
    current, members = owners(hosts, ids), list(hosts)
    initial = list(current)
    step_moves = []
    for old, new in zip(hosts, fresh, strict=True):
        for change in ("-", "+"):
            if change == "-":
                members.remove(old)
            else:
                members.append(new)
            after = owners(members, ids)
            step_moves.append(sum(a != b for a, b in zip(current, after, strict=True)))
            current = after
    result = simulate(
        ring_impl, hosts, Scenario("rolling-restart"), actors=1000, replication_factor=RF, chunk=300
    )
    assert [s.moved for s in result.steps] == step_moves
    assert [s.change for s in result.steps][:2] == [f"-{hosts[0]}", f"+{fresh[0]}"]
    assert result.total_moves == sum(step_moves)
    assert result.moved == sum(a != b for a, b in zip(initial, current, strict=True))
    assert result.after.per_host == loads(fresh, current)
    # A leave moves exactly the leaving host's actors.
    assert step_moves[0] == Counter(initial)[hosts[0]]


def test_explicit_host_names_and_fresh_names_do_not_collide(ring_impl: ModuleType) -> None:
    hosts = ["10.0.0.5:50002", "a", "b"]  # 10.0.0.5 is also what host_name(5) would give
    result = simulate(
        ring_impl, hosts, parse_scenario("scale-out:4"), actors=500, replication_factor=RF
    )
    assert len(result.after.per_host) == 7
    assert set(hosts) < set(result.after.per_host)


def test_invalid_inputs(ring_impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="every one"):
        simulate(ring_impl, host_names(2), parse_scenario("scale-in:2"), actors=10)
    with pytest.raises(ValueError, match="unique"):
        simulate(ring_impl, ["a", "a"], Scenario("steady"), actors=10)


def test_zero_actors(ring_impl: ModuleType) -> None:
    result = simulate(ring_impl, host_names(3), parse_scenario("scale-out:1"), actors=0)
    assert result.moved == 0 and result.moved_fraction == 0 and result.before.max == 0


def test_both_rings_give_the_same_result() -> None:
    rust, python = implementation("rust"), implementation("python")
    plan = parse_scenario("scale-out:2")
    a = simulate(rust, host_names(20), plan, actors=20_000, replication_factor=50, chunk=7000)
    b = simulate(python, host_names(20), plan, actors=20_000, replication_factor=50, chunk=7000)
    assert a.moved == b.moved
    assert a.before.per_host == b.before.per_host and a.after.per_host == b.after.per_host


def test_render_and_json_shapes(ring_impl: ModuleType) -> None:
    result = simulate(
        ring_impl, host_names(3), Scenario("rolling-restart"), actors=300, replication_factor=RF
    )
    text = render_text(result)
    assert "moved: 300 of 300 actors = 100.00%" in text
    assert "6 table changes" in text
    data = result.as_dict()
    assert "per_host" not in data["before"]
    assert len(data["steps"]) == 6
    assert data["total_moves_per_actor"] == pytest.approx(result.total_moves / 300)
    assert "per_host" in result.as_dict(per_host=True)["after"]
    steady = simulate(ring_impl, host_names(3), Scenario("steady"), actors=30).as_dict()
    assert "steps" not in steady and "total_moves" not in steady


def test_load_spread() -> None:
    spread = load_spread({"a": 1, "b": 3})
    assert (spread.min, spread.max, spread.mean, spread.stddev) == (1, 3, 2.0, 1.0)
    assert spread.max_over_mean == 1.5 and spread.actors == 4 and spread.hosts == 2
