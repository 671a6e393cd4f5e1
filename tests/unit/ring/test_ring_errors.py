"""Bad input gets a clear error, of the same type and text from both implementations."""

from __future__ import annotations

from types import ModuleType

import pytest

from daprplane.ring import NoHostsError


def error_of(call, *args, **kwargs):  # type: ignore[no-untyped-def]
    with pytest.raises(Exception) as info:  # the exact type is compared by the caller
        call(*args, **kwargs)
    return type(info.value), str(info.value)


@pytest.mark.parametrize(
    ("rf", "error"),
    [
        (0, ValueError),
        (-1, ValueError),
        (2**32, ValueError),
        (2**64, OverflowError),
        (1.5, TypeError),
        ("3", TypeError),
        (None, TypeError),
    ],
)
def test_bad_replication_factor(ring_impl: ModuleType, rf: object, error: type) -> None:
    with pytest.raises(error):
        ring_impl.Ring(["a"], replication_factor=rf)


def test_replication_factor_message(ring_impl: ModuleType) -> None:
    with pytest.raises(ValueError, match=r"replication_factor must be between 1 and \d+, got 0"):
        ring_impl.Ring(replication_factor=0)


def test_empty_ring_has_no_hosts(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring()
    for call, arg in [(ring.lookup, "k"), (ring.get_least, "k"), (ring.lookup_many, ["k"])]:
        with pytest.raises(NoHostsError, match=r"^no hosts added$"):
            call(arg)
    with pytest.raises(NoHostsError):
        ring.lookup_many([])
    assert issubclass(NoHostsError, LookupError)


@pytest.mark.parametrize(
    ("method", "args"),
    [
        ("lookup", (5,)),
        ("lookup", (b"actor",)),
        ("get_least", (None,)),
        ("lookup_many", (["a", 5],)),
        ("lookup_many", ("actor",)),
        ("lookup_many", (5,)),
        ("add", (1,)),
        ("remove", (b"a",)),
        ("inc_load", (1,)),
        ("update_load", ("a", 1.5)),
        ("update_load", (2, 1)),
    ],
)
def test_non_str_input_is_a_type_error(ring_impl: ModuleType, method: str, args: tuple) -> None:
    ring = ring_impl.Ring(["a"], replication_factor=3)
    with pytest.raises(TypeError):
        getattr(ring, method)(*args)


@pytest.mark.parametrize("hosts", ["abc", ["a", 1], 5])
def test_bad_hosts_are_a_type_error(ring_impl: ModuleType, hosts: object) -> None:
    with pytest.raises(TypeError):
        ring_impl.Ring(hosts)


@pytest.mark.parametrize("key", [5, None, b"x"])
def test_hashing_non_str_is_a_type_error(ring_impl: ModuleType, key: object) -> None:
    with pytest.raises(TypeError, match="must be str"):
        ring_impl.hash_key(key)
    with pytest.raises(TypeError, match="must be str"):
        ring_impl.hash_many(["ok", key])


def test_unencodable_str_is_a_unicode_error(ring_impl: ModuleType) -> None:
    lone_surrogate = "\ud800"
    with pytest.raises(UnicodeEncodeError):
        ring_impl.hash_key(lone_surrogate)
    with pytest.raises(UnicodeEncodeError):
        ring_impl.Ring(["a"]).lookup_many(["ok", lone_surrogate])


def test_load_errors(ring_impl: ModuleType) -> None:
    ring = ring_impl.Ring(["a"], replication_factor=3)
    with pytest.raises(KeyError):
        ring.inc_load("unknown")
    with pytest.raises(KeyError):
        ring.update_load("unknown", 1)
    with pytest.raises(OverflowError):
        ring.update_load("a", 2**63)
    ring.update_load("a", 2**63 - 1)
    with pytest.raises(OverflowError):
        ring.inc_load("a")
    assert ring.get_load() == {"a": 2**63 - 1}


@pytest.mark.parametrize(
    ("make", "call"),
    [
        (lambda m: m.Ring(replication_factor=0), None),
        (lambda m: m.Ring(["a", 1]), None),
        (lambda m: m.Ring("abc"), None),
        (lambda m: m.Ring(), lambda r: r.lookup("k")),
        (lambda m: m.Ring(), lambda r: r.lookup(5)),
        (lambda m: m.Ring(), lambda r: r.lookup_many(["k", 5])),
        (lambda m: m.Ring(["a"]), lambda r: r.lookup_many(["k", 5])),
        (lambda m: m.Ring(["a"]), lambda r: r.lookup_many("k")),
        (lambda m: m.Ring(["a"]), lambda r: r.inc_load("b")),
        (lambda m: m.Ring(["a"]), lambda r: r.done(3)),
        (lambda m: m.Ring(["a"]), lambda r: r.update_load("a", 1.5)),
        (lambda m: m.Ring(["a"]), lambda r: r.add(None)),
        (lambda m: m, lambda mod: mod.hash_key(b"x")),
        (lambda m: m, lambda mod: mod.hash_many([1])),
    ],
)
def test_errors_are_identical_across_implementations(
    both_impls: tuple[ModuleType, ModuleType],
    make,
    call,  # type: ignore[no-untyped-def]
) -> None:
    def run(module: ModuleType):  # type: ignore[no-untyped-def]
        def go() -> None:
            target = make(module)
            if call is not None:
                call(target)

        return error_of(go)

    rust, python = both_impls
    assert run(rust) == run(python)
