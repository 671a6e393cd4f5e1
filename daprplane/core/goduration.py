"""Go's ``time.Duration`` text form, parsed and printed the way Go does.

Dapr's flags take Go durations (``8s``, ``1m30s``, ``500ms``) and some of its error messages print
them (``dissemination timeout after 1s for version 1``), so both directions must match Go exactly.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,  # U+00B5 micro sign
    "μs": 1_000,  # U+03BC greek mu
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_NUMBER = re.compile(r"([0-9]*)(?:\.([0-9]*))?")
_UNIT = re.compile(r"[^0-9.]*")
_MAX_NANOS = (1 << 63) - 1


class DurationError(ValueError):
    """Raised with Go's own wording for text that is not a duration."""


def parse_nanos(text: str) -> int:
    """Parse a Go duration into integer nanoseconds (``time.ParseDuration``)."""
    original = text
    sign = 1
    if text[:1] in ("+", "-"):
        sign = -1 if text[0] == "-" else 1
        text = text[1:]
    if text == "0":
        return 0
    if not text:
        raise DurationError(f'time: invalid duration "{original}"')
    total = 0
    pos = 0
    while pos < len(text):
        number = _NUMBER.match(text, pos)
        assert number is not None  # the pattern can match the empty string
        whole, frac = number.group(1), number.group(2)
        if not whole and not frac:
            raise DurationError(f'time: invalid duration "{original}"')
        unit_match = _UNIT.match(text, number.end())
        assert unit_match is not None
        unit = unit_match.group(0)
        if not unit:
            raise DurationError(f'time: missing unit in duration "{original}"')
        if unit not in _UNIT_NANOS:
            raise DurationError(f'time: unknown unit "{unit}" in duration "{original}"')
        unit_nanos = _UNIT_NANOS[unit]
        value = int(whole or "0") * unit_nanos
        if frac:
            # Go scales the fraction exactly and truncates below a nanosecond.
            value += int(frac) * unit_nanos // (10 ** len(frac))
        total += value
        if total > _MAX_NANOS:
            raise DurationError(f'time: invalid duration "{original}"')
        pos = unit_match.end()
    return sign * total


def parse(text: str) -> timedelta:
    """Parse a Go duration into a ``timedelta`` (microsecond resolution)."""
    return timedelta(microseconds=parse_nanos(text) / 1_000)


def format_nanos(nanos: int) -> str:
    """Print integer nanoseconds as Go's ``Duration.String`` does."""
    if nanos == 0:
        return "0s"
    sign = "-" if nanos < 0 else ""
    n = abs(nanos)
    if n < 1_000_000_000:
        # Sub-second values use the largest unit that keeps the integer part non-zero.
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if n >= size:
                return sign + _decimal(n, size) + unit
    hours, rest = divmod(n, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _decimal(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


def format(value: timedelta) -> str:
    """Print a ``timedelta`` as Go's ``Duration.String`` does."""
    return format_nanos(round(value / timedelta(microseconds=1)) * 1_000)


def _decimal(n: int, size: int) -> str:
    whole, frac = divmod(n, size)
    if not frac:
        return str(whole)
    digits = str(frac).rjust(len(str(size)) - 1, "0").rstrip("0")
    return f"{whole}.{digits}"
