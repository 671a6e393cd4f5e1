"""The two value parsers Dapr applies to annotations and env vars: kit's IsTruthy and ParseInt."""

from __future__ import annotations

import re

_TRUTHY = frozenset({"y", "yes", "true", "t", "on", "1"})
# strconv.ParseInt(s, 10, n): ASCII digits with an optional sign; no spaces, no underscores.
# Python's int() is more lenient on all three counts, hence the pattern.
_GO_INT = re.compile(r"[+-]?[0-9]+")


def is_truthy(value: str) -> bool:
    """kit ``strings.IsTruthy``: trimmed, case-insensitive y/yes/true/t/on/1."""
    return value.strip().lower() in _TRUTHY


def parse_go_int(value: str, bits: int = 64) -> int | None:
    """``strconv.ParseInt(value, 10, bits)``, or ``None`` where Go returns an error."""
    if not _GO_INT.fullmatch(value) or len(value) > 40:
        return None
    number = int(value)
    limit = 2 ** (bits - 1)
    return number if -limit <= number < limit else None
