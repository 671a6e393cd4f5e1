"""locate() on tables built from UPDATEs: agrees with daprplane.ring, with an independent
reference of Dapr's algorithm, and with the contract's hash vectors (§3)."""

from __future__ import annotations

import hashlib
from bisect import bisect_left
from types import ModuleType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daprplane._proto.placement.v1 import placement_pb2 as pb
from daprplane.plugins.placement.client import (
    ActorTypeNotFoundError,
    NoHostsError,
    Placement,
    build_tables,
)
from daprplane.ring import implementation

NS = "default"


@pytest.fixture(params=["rust", "python"])
def ring_impl(request: pytest.FixtureRequest) -> ModuleType:
    return implementation(request.param)


def reference_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


def reference_owner(vnodes: list[tuple[int, str]], actor_id: str) -> str:
    """Dapr's Get: first vnode >= hash(actor ID), wrapping to the first."""
    hashes = [h for h, _ in vnodes]
    index = bisect_left(hashes, reference_hash(actor_id))
    return vnodes[index % len(vnodes)][1]


def report(name: str, app: str, *types: str) -> pb.Host:
    return pb.Host(
        name=name, id=app, api_level=20, namespace=NS, entities=list(types), operation=pb.REPORT
    )


def placement_tables(rf: int, **types: list[pb.Host]) -> pb.PlacementTables:
    return pb.PlacementTables(
        version="1",
        replication_factor=rf,
        entries={t: pb.PlacementTable(load_map={h.name: h for h in hs}) for t, hs in types.items()},
    )


# The contract's vectors: vnode hashes of two hosts (Dapr's consistent_hash_test.go), RF 3.
HOST_A, HOST_B = "192.168.1.83:60992", "192.168.1.89:62362"
VECTORS = {
    HOST_A: [11414427053803968138, 6110756290993384529, 13876541546109691082],
    HOST_B: [13384490355354205375, 11281728843146723001, 694935339057032644],
}


def test_reference_reproduces_the_vectors() -> None:
    for name, hashes in VECTORS.items():
        assert [reference_hash(f"{name}{i}") for i in range(3)] == hashes
    assert hashlib.blake2b(f"{HOST_A}0".encode()).hexdigest().startswith("8a1698e0ed30689e")


def test_locate_matches_the_vector_ring(ring_impl: ModuleType) -> None:
    vnodes = sorted((h, name) for name, hashes in VECTORS.items() for h in hashes)
    tables = build_tables(
        placement_tables(3, T=[report(HOST_A, "app-a", "T"), report(HOST_B, "app-b", "T")]),
        1,
        ring_impl=ring_impl,
    )
    apps = {HOST_A: "app-a", HOST_B: "app-b"}
    owners = set()
    for i in range(2000):
        actor = f"actor-{i}"
        owner = reference_owner(vnodes, actor)
        owners.add(owner)
        assert tables.locate("T", actor) == Placement(owner, apps[owner])
    assert owners == {HOST_A, HOST_B}


def test_wraps_past_the_largest_vnode(ring_impl: ModuleType) -> None:
    """An actor hashing above every vnode belongs to the smallest one (HOST_B's 6949…)."""
    tables = build_tables(
        placement_tables(3, T=[report(HOST_A, "a", "T"), report(HOST_B, "b", "T")]),
        1,
        ring_impl=ring_impl,
    )
    top = max(h for hashes in VECTORS.values() for h in hashes)
    actor = next(f"x{i}" for i in range(100_000) if reference_hash(f"x{i}") > top)
    assert tables.locate("T", actor) == Placement(HOST_B, "b")


def test_locate_agrees_with_the_ring(ring_impl: ModuleType) -> None:
    names = [f"10.0.{i // 256}.{i % 256}:50002" for i in range(37)]
    hosts = [report(n, f"app-{i}", "T", "U") for i, n in enumerate(names)]
    tables = build_tables(placement_tables(100, T=hosts, U=hosts[:5]), 4, ring_impl=ring_impl)
    ring_t = ring_impl.Ring(names, replication_factor=100)
    ring_u = ring_impl.Ring(names[:5], replication_factor=100)
    ids = [f"{i:08x}-actor" for i in range(5000)]
    apps = {n: f"app-{i}" for i, n in enumerate(names)}
    assert [tables.locate("T", a) for a in ids] == [
        Placement(o, apps[o]) for o in ring_t.lookup_many(ids)
    ]
    assert [tables.locate("U", a).host for a in ids] == ring_u.lookup_many(ids)


def test_answers_come_from_the_load_map_value(ring_impl: ModuleType) -> None:
    """daprd hashes the load_map key and dials the value's name with the value's id."""
    value = pb.Host(name="10.9.9.9:1", id="other-app", namespace=NS, entities=["T"])
    table = pb.PlacementTables(
        replication_factor=10, entries={"T": pb.PlacementTable(load_map={"key-host": value})}
    )
    assert build_tables(table, 1, ring_impl=ring_impl).locate("T", "x") == Placement(
        "10.9.9.9:1", "other-app"
    )


def test_missing_type_is_an_actor_no_address_error(ring_impl: ModuleType) -> None:
    tables = build_tables(
        placement_tables(100, T=[report("h:1", "a", "T")]), 9, ring_impl=ring_impl
    )
    with pytest.raises(ActorTypeNotFoundError) as caught:
        tables.locate("Missing", "id-1")
    assert str(caught.value).startswith("did not find address for actor Missing||id-1")
    assert caught.value.version == 9


@pytest.mark.parametrize("rf", [0, -1])
def test_replication_factor_not_positive_gives_empty_rings(ring_impl: ModuleType, rf: int) -> None:
    tables = build_tables(placement_tables(rf, T=[report("h:1", "a", "T")]), 1, ring_impl=ring_impl)
    with pytest.raises(NoHostsError, match="no hosts added"):
        tables.locate("T", "x")


def test_type_with_empty_load_map_has_no_hosts(ring_impl: ModuleType) -> None:
    table = pb.PlacementTables(replication_factor=100, entries={"T": pb.PlacementTable()})
    with pytest.raises(NoHostsError, match="no hosts added"):
        build_tables(table, 1, ring_impl=ring_impl).locate("T", "x")


def test_types_with_the_same_hosts_share_one_ring(ring_impl: ModuleType) -> None:
    hosts = [report(f"h:{i}", "a", "T", "U", "V") for i in range(4)]
    tables = build_tables(
        placement_tables(50, T=hosts, U=hosts, V=hosts[:2]), 1, ring_impl=ring_impl
    )
    assert tables.types["T"].ring is tables.types["U"].ring
    assert tables.types["V"].ring is not tables.types["T"].ring
    assert len(list(tables.rings())) == 2


def test_an_update_reuses_rings_of_unchanged_host_sets(ring_impl: ModuleType) -> None:
    hosts = [report(f"h:{i}", "a", "T", "U") for i in range(4)]
    first = build_tables(placement_tables(50, T=hosts, U=hosts), 1, ring_impl=ring_impl)
    second = build_tables(
        placement_tables(50, T=hosts, U=hosts[:3]), 2, ring_impl=ring_impl, previous=first
    )
    assert second.types["T"].ring is first.types["T"].ring
    assert second.types["U"].ring is not first.types["U"].ring
    third = build_tables(placement_tables(60, T=hosts), 3, ring_impl=ring_impl, previous=second)
    assert third.types["T"].ring is not first.types["T"].ring  # another RF: another ring
    assert third.types["T"].ring.replication_factor == 60


def test_rings_of_another_implementation_are_not_reused() -> None:
    hosts = [report(f"h:{i}", "a", "T") for i in range(3)]
    rust, python = implementation("rust"), implementation("python")
    first = build_tables(placement_tables(20, T=hosts), 1, ring_impl=rust)
    second = build_tables(placement_tables(20, T=hosts), 2, ring_impl=python, previous=first)
    assert second.types["T"].ring.implementation == "python"


def test_as_dict_summarises_the_table(ring_impl: ModuleType) -> None:
    tables = build_tables(
        placement_tables(100, T=[report("h:2", "b", "T"), report("h:1", "a", "T")]),
        5,
        ring_impl=ring_impl,
    )
    assert tables.as_dict() == {
        "version": 5,
        "replication_factor": 100,
        "types": {"T": {"h:1": ["h:1", "a"], "h:2": ["h:2", "b"]}},
    }


@settings(max_examples=40, deadline=None)
@given(
    names=st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=8, unique=True),
    rf=st.integers(min_value=1, max_value=20),
    actors=st.lists(st.text(max_size=16), min_size=1, max_size=20),
)
def test_locate_matches_the_reference_for_any_hosts(
    names: list[str], rf: int, actors: list[str]
) -> None:
    # Where two hosts claim one vnode hash the smallest name wins (the ring's documented rule).
    claims: dict[int, str] = {}
    for name in names:
        for i in range(rf):
            h = reference_hash(f"{name}{i}")
            claims[h] = min(claims.get(h, name), name)
    vnodes = sorted(claims.items())
    table = placement_tables(rf, T=[report(n, f"id-{n}", "T") for n in names])
    for impl in ("rust", "python"):
        tables = build_tables(table, 1, ring_impl=implementation(impl))
        for actor in actors:
            owner = reference_owner(vnodes, actor)
            assert tables.locate("T", actor) == Placement(owner, f"id-{owner}")
