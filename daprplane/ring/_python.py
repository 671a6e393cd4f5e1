"""The placement ring in pure Python: same algorithm, same answers, same errors as the Rust
extension ``_ring_rs`` (the tests compare them differentially).

Layout: the ring keeps every vnode *claim* as two parallel lists sorted by (hash, host name),
``hashes`` and ``owners``. Two hosts can claim one hash (host ``"a"`` vnode 10 and host ``"a1"``
vnode 0 are both the key ``"a10"``); the first claim, the smallest host name, wins, so the ring
depends only on the set of hosts. Losing claims stay in the table so that the next claimant takes
over when the winner is removed; lookups never see them because ``bisect_left`` lands on the first
claim of a hash.

Every change builds new lists and swaps them in as one tuple, ``_table``, so a lookup running in
another thread always sees one consistent table (the Rust ring does the same with a snapshot).
"""

from __future__ import annotations

import operator
from bisect import bisect_left
from collections.abc import Iterable, Sequence
from hashlib import blake2b
from struct import Struct

from daprplane.ring._errors import NoHostsError

IMPLEMENTATION = "python"
DEFAULT_REPLICATION_FACTOR = 100

_MAX_REPLICATION_FACTOR = 2**32 - 1
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_NO_HOSTS = "no hosts added"

# Bound once: attribute lookups dominate a per-key loop in CPython. ``str.encode`` (unbound)
# also refuses non-str objects, which ``key.encode()`` would not for objects that have one.
_encode = str.encode
_first_word = Struct("<Q").unpack_from


def hash_key(key: str) -> int:
    """The placement hash: BLAKE2b-512 of the UTF-8 key, first 8 bytes as little-endian u64."""
    if not isinstance(key, str):
        raise _not_str("key", key)
    hash_value: int = _first_word(blake2b(_encode(key)).digest())[0]
    return hash_value


def hash_many(keys: Iterable[str]) -> list[int]:
    """``hash_key`` of every key, in order."""
    keys = _str_list(keys, "keys")
    try:
        return [_first_word(blake2b(_encode(k)).digest())[0] for k in keys]
    except (TypeError, UnicodeError):
        _check_strs(keys, "key")
        raise


def _not_str(what: str, value: object) -> TypeError:
    return TypeError(f"{what} must be str, not {type(value).__name__}")


def _str_list(items: Iterable[str], what: str) -> list[str]:
    """The items as a list; a bare str is refused because it would iterate characters."""
    if isinstance(items, str):
        raise TypeError(f"{what} must be an iterable of str, not a single str")
    return items if type(items) is list else list(items)


def _check_strs(items: Sequence[object], what: str) -> None:
    """Raises the error the Rust binding gives for the first bad item, if any: a TypeError for
    a non-str, a UnicodeEncodeError for a str UTF-8 cannot encode (a lone surrogate)."""
    for item in items:
        if not isinstance(item, str):
            raise _not_str(what, item)
        _encode(item)


def _replication_factor(value: int) -> int:
    rf = operator.index(value)
    if not _INT64_MIN <= rf <= _INT64_MAX:
        raise OverflowError("replication_factor does not fit in int64")
    if not 1 <= rf <= _MAX_REPLICATION_FACTOR:
        raise ValueError(
            f"replication_factor must be between 1 and {_MAX_REPLICATION_FACTOR}, got {rf}"
        )
    return int(rf)


def _int64(value: int) -> int:
    load = operator.index(value)
    if not _INT64_MIN <= load <= _INT64_MAX:
        raise OverflowError("load does not fit in int64")
    return int(load)


def max_load(total_load: int, hosts: int) -> int:
    """Bounded-load limit ``ceil(max(1, (total_load + 1) // hosts) * 1.25)``, in exact integers."""
    average = max(1, (total_load + 1) // max(hosts, 1))
    return (average * 5 + 3) // 4


class Ring:
    """Dapr's actor-placement ring with bounded loads. See ``daprplane.ring`` for the contract."""

    implementation = "python"

    __slots__ = ("_loads", "_rf", "_table", "_total_load")

    def __init__(
        self,
        hosts: Iterable[str] | None = None,
        replication_factor: int = DEFAULT_REPLICATION_FACTOR,
    ) -> None:
        self._rf = _replication_factor(replication_factor)
        names = _str_list(hosts, "hosts") if hosts is not None else []
        _check_strs(names, "host")
        names = list(dict.fromkeys(names))
        self._loads: dict[str, int] = dict.fromkeys(names, 0)
        self._total_load = 0
        suffixes = [str(i) for i in range(self._rf)]
        hashes = hash_many([name + suffix for name in names for suffix in suffixes])
        owners = [name for name in names for _ in suffixes]
        self._set_claims(sorted(zip(hashes, owners, strict=True)))

    def _set_claims(self, claims: list[tuple[int, str]]) -> None:
        hashes = [claim[0] for claim in claims]
        owners = [claim[1] for claim in claims]
        # (hashes, owners, owners plus one extra slot so that a hash past the largest vnode
        # wraps to the first without a branch)
        self._table: tuple[list[int], list[str], list[str]] = (hashes, owners, owners + owners[:1])

    # -- membership ---------------------------------------------------------------------------

    @property
    def replication_factor(self) -> int:
        return self._rf

    @property
    def hosts(self) -> list[str]:
        """Host names, sorted."""
        return sorted(self._loads)

    def __len__(self) -> int:
        return len(self._loads)

    def __contains__(self, host: object) -> bool:
        return isinstance(host, str) and host in self._loads

    def __repr__(self) -> str:
        return (
            f"Ring(implementation='python', hosts={len(self._loads)}, "
            f"replication_factor={self._rf})"
        )

    def add(self, host: str) -> bool:
        """Adds a host; False if it was already there. Keys move only to the new host."""
        if not isinstance(host, str):
            raise _not_str("host", host)
        if host in self._loads:
            return False
        self._loads[host] = 0
        added = hash_many([host + str(i) for i in range(self._rf)])
        hashes, owners, _ = self._table
        claims = list(zip(hashes, owners, strict=True))
        claims.extend((h, host) for h in added)
        # Two sorted runs: Timsort merges them in linear time.
        claims.sort()
        self._set_claims(claims)
        return True

    def remove(self, host: str) -> bool:
        """Removes a host and its load; False if it was not there. Other hosts' keys stay put."""
        if not isinstance(host, str):
            raise _not_str("host", host)
        if host not in self._loads:
            return False
        self._total_load -= self._loads.pop(host)
        hashes, owners, _ = self._table
        kept = [c for c in zip(hashes, owners, strict=True) if c[1] != host]
        self._set_claims(kept)
        return True

    # -- lookups ------------------------------------------------------------------------------

    def lookup(self, key: str) -> str:
        """The host that owns ``key``: the first vnode at or after ``hash(key)``, wrapping."""
        h = hash_key(key)
        hashes, _, owners = self._table
        if not hashes:
            raise NoHostsError(_NO_HOSTS)
        return owners[bisect_left(hashes, h)]

    def lookup_many(self, keys: Iterable[str]) -> list[str]:
        """``lookup`` of every key, in order."""
        keys = _str_list(keys, "keys")
        hashes, _, owners = self._table
        if not hashes:
            _check_strs(keys, "key")
            raise NoHostsError(_NO_HOSTS)
        try:
            return [
                owners[bisect_left(hashes, _first_word(blake2b(_encode(k)).digest())[0])]
                for k in keys
            ]
        except (TypeError, UnicodeError):
            _check_strs(keys, "key")
            raise

    def vnodes(self) -> tuple[list[int], list[str]]:
        """The vnode table: sorted unique hashes and the host that owns each."""
        hashes, owners, _ = self._table
        winners = [i for i in range(len(hashes)) if not (i and hashes[i - 1] == hashes[i])]
        return [hashes[i] for i in winners], [owners[i] for i in winners]

    def get_least(self, key: str) -> str:
        """The owner of ``key`` under bounded loads: walking forward (wrapping) from the key's
        vnode, the first host whose ``load + 1 <= max_load()``."""
        h = hash_key(key)
        (hashes, owners, _), loads = self._table, self._loads
        if not hashes:
            raise NoHostsError(_NO_HOSTS)
        limit = self.max_load()
        count = len(hashes)
        start = bisect_left(hashes, h)
        if start == count:
            start = 0
        # One lap is enough: the least-loaded host always fits under the limit.
        for step in range(count):
            i = (start + step) % count
            if i and hashes[i - 1] == hashes[i]:
                continue  # a claim that lost its hash to a smaller host name
            owner = owners[i]
            if loads[owner] + 1 <= limit:
                return owner
        return owners[start]

    # -- loads --------------------------------------------------------------------------------

    def max_load(self) -> int:
        """The bounded-load limit: a host takes a key while ``load + 1 <= max_load()``."""
        return max_load(self._total_load, len(self._loads))

    @property
    def total_load(self) -> int:
        return self._total_load

    def _add_load(self, host: str, delta: int) -> None:
        if not isinstance(host, str):
            raise _not_str("host", host)
        if host not in self._loads:
            raise KeyError(host)
        load = self._loads[host] + delta
        if not _INT64_MIN <= load <= _INT64_MAX:
            raise OverflowError(f'load of host "{host}" out of int64 range')
        self._loads[host] = load
        self._total_load += delta

    def inc_load(self, host: str) -> None:
        """Dapr's ``Inc``: one more unit of load on ``host``."""
        self._add_load(host, 1)

    def done(self, host: str) -> None:
        """Dapr's ``Done``: one unit of load less on ``host``."""
        self._add_load(host, -1)

    def update_load(self, host: str, load: int) -> None:
        """Sets the load of ``host`` (an int64)."""
        load = _int64(load)
        if not isinstance(host, str):
            raise _not_str("host", host)
        if host not in self._loads:
            raise KeyError(host)
        self._total_load += load - self._loads[host]
        self._loads[host] = load

    def get_load(self) -> dict[str, int]:
        """Every host's load, keyed by host name in sorted order."""
        loads = self._loads
        return {host: loads[host] for host in sorted(loads)}
