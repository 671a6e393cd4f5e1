"""Dapr's actor-placement hashing ring.

A key (an actor ID) belongs to the host of the first virtual node at or after ``hash_key(key)``
on the ring, wrapping around; each host has ``replication_factor`` virtual nodes keyed
``host + str(i)``. ``hash_key`` is the little-endian u64 of the first 8 bytes of BLAKE2b-512.
``get_least`` adds Dapr's bounded-load walk. Where two hosts claim the same vnode hash, the
smallest host name owns it (Dapr's choice depends on Go map order).

Two implementations give identical answers: a Rust extension (fast, the default) and a pure-Python
twin. ``DAPRPLANE_RING=auto|rust|python`` picks one at import (see ``_select``);
``implementation("rust" | "python")`` returns a specific one, e.g. for tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from daprplane.ring._errors import NoHostsError
from daprplane.ring._select import (
    CHOICES,
    ENV_VAR,
    RustRingMissingError,
    implementation,
    rust_available,
    select,
)

DEFAULT_REPLICATION_FACTOR = 100

if TYPE_CHECKING:
    # Both implementations have this API; type checkers see the Python one.
    from daprplane.ring._python import Ring, hash_key, hash_many

    IMPLEMENTATION: str
else:
    _selected = select()
    IMPLEMENTATION = _selected.IMPLEMENTATION
    Ring = _selected.Ring
    hash_key = _selected.hash_key
    hash_many = _selected.hash_many
    del _selected

__all__ = [
    "CHOICES",
    "DEFAULT_REPLICATION_FACTOR",
    "ENV_VAR",
    "IMPLEMENTATION",
    "NoHostsError",
    "Ring",
    "RustRingMissingError",
    "hash_key",
    "hash_many",
    "implementation",
    "rust_available",
    "select",
]
