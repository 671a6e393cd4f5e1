"""The ring written out directly from the specification, slow and obvious, to check both
implementations against (they could otherwise agree on the same mistake)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping


def spec_hash(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode()).digest()[:8], "little")


def spec_vnodes(hosts: Iterable[str], rf: int) -> tuple[list[int], list[str]]:
    """Sorted unique vnode hashes; a hash claimed by several hosts goes to the smallest name."""
    owner: dict[int, str] = {}
    for host in hosts:
        for i in range(rf):
            h = spec_hash(f"{host}{i}")
            if h not in owner or host < owner[h]:
                owner[h] = host
    hashes = sorted(owner)
    return hashes, [owner[h] for h in hashes]


def spec_start(hashes: list[int], key: str) -> int:
    h = spec_hash(key)
    for i, vnode in enumerate(hashes):
        if vnode >= h:
            return i
    return 0


def spec_lookup(hosts: Iterable[str], rf: int, key: str) -> str:
    hashes, owners = spec_vnodes(hosts, rf)
    return owners[spec_start(hashes, key)]


def spec_max_load(total_load: int, hosts: int) -> int:
    average = max(1, (total_load + 1) // hosts)
    # ceil(average * 1.25) without floats.
    quarter_units = average * 125
    return -(-quarter_units // 100)


def spec_get_least(loads: Mapping[str, int], rf: int, key: str) -> str:
    hashes, owners = spec_vnodes(loads, rf)
    limit = spec_max_load(sum(loads.values()), len(loads))
    start = spec_start(hashes, key)
    for step in range(len(hashes)):
        owner = owners[(start + step) % len(hashes)]
        if loads[owner] + 1 <= limit:
            return owner
    raise AssertionError("the least-loaded host always fits")
