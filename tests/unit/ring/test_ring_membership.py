"""Adding and removing hosts: consistent hashing moves only the keys it must."""

from __future__ import annotations

from types import ModuleType

KEYS = [f"actor-{i}" for i in range(3000)]


def test_removing_a_host_moves_only_its_keys(ring_impl: ModuleType) -> None:
    hosts = [f"10.0.0.{i}:50002" for i in range(6)]
    ring = ring_impl.Ring(hosts, replication_factor=50)
    before = ring.lookup_many(KEYS)
    assert ring.remove("10.0.0.3:50002") is True
    after = ring.lookup_many(KEYS)
    moved = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert moved, "the removed host owned some keys"
    assert all(b == "10.0.0.3:50002" for b, _ in moved)
    assert "10.0.0.3:50002" not in after


def test_adding_a_host_moves_keys_only_to_it(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a:1", "b:2", "c:3"], replication_factor=40)
    before = ring.lookup_many(KEYS)
    assert ring.add("d:4") is True
    after = ring.lookup_many(KEYS)
    moved = [a for b, a in zip(before, after, strict=True) if b != a]
    assert moved and set(moved) == {"d:4"}


def test_incremental_changes_equal_a_fresh_build(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["c", "a"], replication_factor=20)
    ring.add("b")
    ring.add("d")
    ring.remove("a")
    fresh = ring_impl.Ring(["d", "b", "c"], replication_factor=20)
    assert ring.vnodes() == fresh.vnodes()
    assert ring.hosts == fresh.hosts == ["b", "c", "d"]


def test_add_and_remove_report_whether_anything_changed(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a"], replication_factor=5)
    assert ring.add("a") is False
    assert ring.remove("zz") is False
    assert ring.remove("a") is True
    assert len(ring) == 0 and ring.hosts == [] and ring.vnodes() == ([], [])
    assert ring.add("a") is True
    assert "a" in ring and "b" not in ring and 3 not in ring


def test_duplicate_hosts_are_kept_once(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a", "b", "a"], replication_factor=5)
    assert ring.hosts == ["a", "b"]
    assert len(ring.vnodes()[0]) == 10
