"""Random rings, changes and keys: Rust, Python and the specification must agree everywhere."""

from __future__ import annotations

from types import ModuleType

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.unit.ring.reference import spec_get_least, spec_lookup, spec_vnodes

# Short names over a tiny alphabet make colliding vnode keys ("a" + "10" == "a1" + "0") common.
host_names = st.one_of(
    st.text(alphabet="a1b0", min_size=0, max_size=3),
    st.builds(lambda a, p: f"10.0.0.{a}:{p}", st.integers(0, 255), st.integers(1, 65535)),
    st.text(max_size=12),
)
keys = st.lists(st.text(max_size=40) | st.text(alphabet="a1b0", max_size=4), max_size=40)
load_values = st.integers(-(2**63), 2**63 - 1) | st.integers(-5, 5)
changes = st.lists(
    st.one_of(
        st.tuples(st.just("add"), host_names),
        st.tuples(st.just("remove"), host_names),
        st.tuples(st.just("inc_load"), host_names),
        st.tuples(st.just("done"), host_names),
        st.tuples(st.just("update_load"), host_names, load_values),
    ),
    max_size=12,
)


def outcome(call, *args):  # type: ignore[no-untyped-def]
    """A call's result, or its exception's type and text, so failures compare too."""
    try:
        return ("ok", call(*args))
    except Exception as exc:  # any difference in errors is what we look for
        return ("error", type(exc).__name__, str(exc))


def assert_same_state(rust, python, probe_keys: list[str]) -> None:  # type: ignore[no-untyped-def]
    assert rust.hosts == python.hosts
    assert len(rust) == len(python)
    assert rust.vnodes() == python.vnodes()
    assert rust.get_load() == python.get_load()
    assert rust.total_load == python.total_load
    assert rust.max_load() == python.max_load()
    assert outcome(rust.lookup_many, probe_keys) == outcome(python.lookup_many, probe_keys)
    for key in probe_keys:
        assert outcome(rust.lookup, key) == outcome(python.lookup, key)
        assert outcome(rust.get_least, key) == outcome(python.get_least, key)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    hosts=st.lists(host_names, max_size=8),
    rf=st.integers(1, 24),
    probe_keys=keys,
    steps=changes,
)
def test_rust_and_python_agree(
    both_impls: tuple[ModuleType, ModuleType],
    hosts: list[str],
    rf: int,
    probe_keys: list[str],
    steps: list[tuple],
) -> None:
    rust_impl, python_impl = both_impls
    assert rust_impl.hash_many(probe_keys) == python_impl.hash_many(probe_keys)
    rust = rust_impl.Ring(hosts, replication_factor=rf)
    python = python_impl.Ring(hosts, replication_factor=rf)
    assert_same_state(rust, python, probe_keys)
    for name, *args in steps:
        assert outcome(getattr(rust, name), *args) == outcome(getattr(python, name), *args)
        assert_same_state(rust, python, probe_keys)


@settings(max_examples=150, deadline=None)
@given(
    hosts=st.lists(host_names, min_size=1, max_size=6, unique=True),
    rf=st.integers(1, 12),
    probe_keys=keys,
    loads=st.lists(st.integers(-3, 6), min_size=6, max_size=6),
)
def test_each_ring_matches_the_specification(
    ring_impl: ModuleType, hosts: list[str], rf: int, probe_keys: list[str], loads: list[int]
) -> None:
    ring = ring_impl.Ring(hosts, replication_factor=rf)
    assert ring.vnodes() == spec_vnodes(hosts, rf)
    assert ring.lookup_many(probe_keys) == [spec_lookup(hosts, rf, k) for k in probe_keys]
    for host, load in zip(hosts, loads, strict=False):
        ring.update_load(host, load)
    host_loads = dict(zip(hosts, loads, strict=False))
    for key in probe_keys:
        assert ring.lookup(key) == spec_lookup(hosts, rf, key)
        assert ring.get_least(key) == spec_get_least(host_loads, rf, key)


@settings(max_examples=100, deadline=None)
@given(
    hosts=st.lists(host_names, min_size=2, max_size=6, unique=True),
    rf=st.integers(1, 16),
    probe_keys=keys,
    data=st.data(),
)
def test_removal_moves_no_key_owned_by_another_host(
    ring_impl: ModuleType, hosts: list[str], rf: int, probe_keys: list[str], data: st.DataObject
) -> None:
    ring = ring_impl.Ring(hosts, replication_factor=rf)
    before = ring.lookup_many(probe_keys)
    gone = data.draw(st.sampled_from(hosts))
    ring.remove(gone)
    after = ring.lookup_many(probe_keys)
    for old, new in zip(before, after, strict=True):
        assert new == old or old == gone


@settings(max_examples=100, deadline=None)
@given(
    hosts=st.lists(host_names, max_size=6, unique=True),
    new_host=host_names,
    rf=st.integers(1, 16),
    probe_keys=keys,
)
def test_adding_moves_keys_only_to_the_new_host(
    ring_impl: ModuleType, hosts: list[str], new_host: str, rf: int, probe_keys: list[str]
) -> None:
    ring = ring_impl.Ring(hosts, replication_factor=rf)
    before = ring.lookup_many(probe_keys) if hosts else [None] * len(probe_keys)
    ring.add(new_host)
    after = ring.lookup_many(probe_keys)
    for old, new in zip(before, after, strict=True):
        assert new in (old, new_host)
