"""What ``daprplane placement simulate`` can simulate: host names, actor IDs and scenarios.

Everything is deterministic, so two runs (or the Rust and Python rings) see the same inputs:
host ``i`` is ``10.<i>>16>.<i>>8>.<i&255>:50002`` (the shape of daprd's ``<pod IP>:<port>`` host
names), actor ``i`` is ``actor-<i>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Scenario", "actor_ids", "host_name", "host_names", "parse_count", "parse_scenario"]

KINDS = ("steady", "scale-out", "scale-in", "rolling-restart")
_SUFFIXES = {"": 1, "k": 1_000, "m": 1_000_000, "g": 1_000_000_000}


def host_name(index: int) -> str:
    return f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}:50002"


def host_names(count: int, start: int = 0) -> list[str]:
    return [host_name(i) for i in range(start, start + count)]


def actor_ids(start: int, stop: int) -> list[str]:
    return [f"actor-{i}" for i in range(start, stop)]


def parse_count(text: str) -> int:
    """``1000``, ``1_000_000``, ``10k``, ``10M``, ``1e7``: a non-negative whole number."""
    value = text.strip().replace("_", "").replace(",", "")
    match = re.fullmatch(r"(\d+(?:\.\d+)?(?:[eE]\d+)?)([kKmMgG]?)", value)
    if match is None:
        raise ValueError(f"not a count: {text!r} (examples: 1000, 10k, 10M, 1e7)")
    number, suffix = match.groups()
    scaled = (
        float(number) * _SUFFIXES[suffix.lower()]
        if ("." in number or "e" in number.lower())
        else int(number) * _SUFFIXES[suffix.lower()]
    )
    if scaled != int(scaled):
        raise ValueError(f"not a whole number: {text!r}")
    return int(scaled)


@dataclass(frozen=True)
class Scenario:
    """``steady``, ``scale-out:K``, ``scale-in:K`` or ``rolling-restart``."""

    kind: str
    count: int = 0

    def __str__(self) -> str:
        return f"{self.kind}:{self.count}" if self.kind in ("scale-out", "scale-in") else self.kind

    def validate(self, hosts: int) -> None:
        if hosts < 1:
            raise ValueError("at least one host is needed")
        if self.kind == "scale-in" and self.count >= hosts:
            raise ValueError(f"scale-in:{self.count} would remove every one of the {hosts} hosts")

    def after(self, hosts: Sequence[str], fresh: Sequence[str]) -> list[str]:
        """The host list once the scenario is over; ``fresh`` supplies names for new hosts."""
        if self.kind == "steady":
            return list(hosts)
        if self.kind == "scale-out":
            return [*hosts, *fresh[: self.count]]
        if self.kind == "scale-in":
            return list(hosts[: len(hosts) - self.count])
        return list(fresh[: len(hosts)])  # rolling restart: every sidecar comes back renamed

    def new_hosts_needed(self, hosts: int) -> int:
        return {"scale-out": self.count, "rolling-restart": hosts}.get(self.kind, 0)


def parse_scenario(text: str) -> Scenario:
    kind, sep, count_text = text.strip().lower().partition(":")
    if kind not in KINDS:
        raise ValueError(f"unknown scenario {text!r}; expected one of: {', '.join(KINDS)}")
    if kind in ("scale-out", "scale-in"):
        if not sep:
            raise ValueError(f"{kind} needs a host count, e.g. {kind}:10")
        count = parse_count(count_text)
        if count < 1:
            raise ValueError(f"{kind} needs at least 1 host, got {count}")
        return Scenario(kind, count)
    if sep:
        raise ValueError(f"{kind} takes no count")
    return Scenario(kind)
