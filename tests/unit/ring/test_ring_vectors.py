"""The hash and lookup against Dapr's vectors and hand-checked examples, on both rings."""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.unit.ring.reference import spec_hash, spec_lookup

# From Dapr's consistent_hash_test.go (TestGetAndSetVirtualNodeCacheHashes).
HOST_83 = "192.168.1.83:60992"
HOST_89 = "192.168.1.89:62362"
VECTORS_83 = [
    11414427053803968138,
    6110756290993384529,
    13876541546109691082,
    12165331075625862737,
    9528020266818944582,
]
VECTORS_89 = [13384490355354205375, 11281728843146723001, 694935339057032644]


def test_hash_key_matches_dapr_vectors(ring_impl: ModuleType) -> None:
    assert [ring_impl.hash_key(f"{HOST_83}{i}") for i in range(5)] == VECTORS_83
    assert [ring_impl.hash_key(f"{HOST_89}{i}") for i in range(3)] == VECTORS_89


def test_hash_many_matches_hash_key(ring_impl: ModuleType) -> None:
    keys = [f"{HOST_83}{i}" for i in range(5)] + ["", "é", "actor||" * 40]
    assert ring_impl.hash_many(keys) == [spec_hash(k) for k in keys]
    assert ring_impl.hash_many(tuple(keys)) == ring_impl.hash_many(iter(keys))
    assert ring_impl.hash_many([]) == []


def test_hash_covers_long_and_non_ascii_keys(ring_impl: ModuleType) -> None:
    # Lengths either side of BLAKE2b's 128-byte block, and multi-byte UTF-8.
    keys = ["x" * n for n in (0, 1, 7, 8, 9, 127, 128, 129, 255, 256, 1000)]
    keys += ["ключ-актора", "演员-42", "🙂" * 40]
    assert [ring_impl.hash_key(k) for k in keys] == [spec_hash(k) for k in keys]
    assert ring_impl.hash_many(keys * 3) == [spec_hash(k) for k in keys * 3]


def test_vnode_table_is_sorted_with_owners(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring([HOST_83, HOST_89], replication_factor=3)
    hashes, owners = ring.vnodes()
    assert hashes == sorted(VECTORS_83[:3] + VECTORS_89)
    assert owners == [HOST_89, HOST_83, HOST_89, HOST_83, HOST_89, HOST_83]


def test_lookup_examples(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring([HOST_83, HOST_89], replication_factor=3)
    # A vnode key hashes exactly onto its vnode, so it belongs to that vnode's host.
    assert ring.lookup(f"{HOST_83}1") == HOST_83
    assert ring.lookup(f"{HOST_89}2") == HOST_89
    # Hand-checked against the table above.
    assert ring.lookup("myactor") == spec_lookup([HOST_83, HOST_89], 3, "myactor")
    hosts = [f"10.0.0.{i}:50002" for i in range(1, 6)]
    ring = ring_impl.Ring(hosts)
    keys = [f"actor-{i}" for i in range(300)]
    expected = [spec_lookup(hosts, 100, k) for k in keys]
    assert [ring.lookup(k) for k in keys] == expected
    assert ring.lookup_many(keys) == expected


def test_lookup_wraps_past_the_largest_vnode(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring([HOST_83, HOST_89], replication_factor=3)
    hashes, owners = ring.vnodes()
    key = next(k for k in (f"k{i}" for i in range(10_000)) if spec_hash(k) > hashes[-1])
    assert ring.lookup(key) == owners[0] == HOST_89
    assert ring.lookup_many([key]) == [HOST_89]


def test_default_replication_factor_is_100(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a:1"])
    assert ring.replication_factor == 100
    assert len(ring.vnodes()[0]) == 100


def test_ring_reports_its_implementation(ring_impl: ModuleType) -> None:
    assert ring_impl.Ring.implementation == ring_impl.IMPLEMENTATION
    assert ring_impl.Ring(["a"]).implementation == ring_impl.IMPLEMENTATION
    assert ring_impl.IMPLEMENTATION in repr(ring_impl.Ring(["a"]))


@pytest.mark.parametrize("hosts", [["a", "a1"], ["a1", "a"]])
def test_colliding_vnodes_go_to_the_smallest_host(ring_impl: ModuleType, hosts: list[str]) -> None:
    # Host "a" vnode 10 and host "a1" vnode 0 are the same key, "a10".
    ring = ring_impl.Ring(hosts, replication_factor=11)
    hashes, owners = ring.vnodes()
    assert len(hashes) == 21 == len(set(hashes))
    assert owners[hashes.index(spec_hash("a10"))] == "a"
    assert ring.lookup("a10") == "a"
    ring.remove("a")
    assert ring.lookup("a10") == "a1"
    ring.add("a")
    assert ring.lookup("a10") == "a"
