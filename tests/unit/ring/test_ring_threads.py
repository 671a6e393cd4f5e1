"""Lookups from several threads while hosts come and go: no crash, no deadlock, and every
batch answer comes from one consistent table (the Rust ring releases the GIL for batches)."""

from __future__ import annotations

import threading
from types import ModuleType

KEYS = [f"actor-{i}" for i in range(50_000)]


def test_batches_see_one_table_while_hosts_change(ring_impl: ModuleType) -> None:
    base = [f"10.0.0.{i}:50002" for i in range(8)]
    extra = "10.0.0.99:50002"
    ring = ring_impl.Ring(base, replication_factor=50)
    without_extra = ring.lookup_many(KEYS)
    with_extra = ring_impl.Ring([*base, extra], replication_factor=50).lookup_many(KEYS)
    stop = threading.Event()
    failures: list[str] = []

    def look_up() -> None:
        while not stop.is_set():
            answer = ring.lookup_many(KEYS)
            if answer not in (without_extra, with_extra):
                failures.append("a batch mixed two tables")
            ring.lookup(KEYS[0])
            ring.get_least(KEYS[1])

    def change() -> None:
        for _ in range(15):
            ring.add(extra)
            ring.inc_load(extra)
            ring.remove(extra)

    readers = [threading.Thread(target=look_up) for _ in range(3)]
    for reader in readers:
        reader.start()
    writer = threading.Thread(target=change)
    writer.start()
    writer.join(timeout=120)
    stop.set()
    for reader in readers:
        reader.join(timeout=120)
    assert not writer.is_alive() and not any(r.is_alive() for r in readers), "deadlock"
    assert failures == []
    assert ring.lookup_many(KEYS) == without_extra
