"""Bounded loads (Dapr's GetLeast, Inc, Done, UpdateLoad)."""

from __future__ import annotations

from types import ModuleType

from tests.unit.ring.reference import spec_get_least, spec_max_load


def test_max_load_formula(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a", "b", "c"], replication_factor=4)
    assert ring.max_load() == 2  # max(1, 1 // 3) = 1 -> ceil(1.25) = 2
    for load, expected in [(0, 2), (2, 2), (7, 3), (9, 4), (100, 42)]:
        ring.update_load("a", load)
        assert ring.total_load == load
        assert ring.max_load() == expected == spec_max_load(load, 3)


def test_get_least_is_lookup_while_unloaded(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring([f"h{i}" for i in range(5)], replication_factor=10)
    for key in (f"actor-{i}" for i in range(200)):
        assert ring.get_least(key) == ring.lookup(key)


def test_get_least_walks_past_full_hosts(ring_impl: ModuleType) -> None:
    hosts = ["a:1", "b:2", "c:3"]
    ring = ring_impl.Ring(hosts, replication_factor=10)
    key = "actor-7"
    owner = ring.lookup(key)
    for _ in range(3):
        ring.inc_load(owner)
    assert ring.max_load() == 2
    loads = ring.get_load()
    assert loads[owner] == 3
    chosen = ring.get_least(key)
    assert chosen != owner
    assert chosen == spec_get_least(loads, 10, key)
    for _ in range(3):
        ring.done(owner)
    assert ring.get_least(key) == owner


def test_load_bookkeeping(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["b", "a"], replication_factor=2)
    assert ring.get_load() == {"a": 0, "b": 0}
    assert list(ring.get_load()) == ["a", "b"]
    ring.inc_load("a")
    ring.inc_load("a")
    ring.done("b")
    ring.update_load("b", 10)
    assert ring.get_load() == {"a": 2, "b": 10}
    assert ring.total_load == 12
    ring.remove("b")
    assert ring.total_load == 2
    ring.add("b")
    assert ring.get_load() == {"a": 2, "b": 0}
