"""Kubernetes resource quantities (``500m``, ``1.5Gi``, ``2e3``): parse, validate, canonicalise.

Dapr parses the ``dapr.io/sidecar-*-request/limit`` annotations with apimachinery's
``resource.ParseQuantity`` and the patch carries each value in the canonical form Go's JSON
marshalling writes (``1024Mi`` becomes ``1Gi``, ``0.5`` becomes ``500m``). No Python library
reproduces that canonical form, so this module does, following apimachinery's rules:

- grammar: optional sign, digits with an optional fraction (``1.``, ``.5`` and a bare sign are
  accepted), then a decimal SI suffix (``n u m "" k M G T P E``), a binary SI suffix
  (``Ki Mi Gi Ti Pi Ei``) or a decimal exponent (``e3``, ``E-2``, an int32 after wrapping);
- non-zero values are rounded up (away from zero) to a multiple of 1n and capped at
  ``2**63 - 1`` in magnitude;
- canonical form: binary values that are whole and at least 1024 in magnitude keep a binary
  suffix, everything else is written with a decimal mantissa and an exponent that is a
  multiple of three. A zero keeps the scale it was written with (``0m`` stays ``0m``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_DECIMAL_SUFFIXES = {
    "n": -9,
    "u": -6,
    "m": -3,
    "": 0,
    "k": 3,
    "M": 6,
    "G": 9,
    "T": 12,
    "P": 15,
    "E": 18,
}
_BINARY_SUFFIXES = {"Ki": 10, "Mi": 20, "Gi": 30, "Ti": 40, "Pi": 50, "Ei": 60}
_DECIMAL_NAMES = {exponent: suffix for suffix, exponent in _DECIMAL_SUFFIXES.items()}
_BINARY_NAMES = {exponent: suffix for suffix, exponent in _BINARY_SUFFIXES.items()}

# apimachinery's scanner, as one expression: sign, digits, optional fraction, then a run of
# suffix letters optionally followed by a signed run of digits (the exponent of ``e3``).
_QUANTITY = re.compile(r"([+-]?)([0-9]*)(?:\.([0-9]*))?([eEinumkKMGTP]*(?:[+-]?[0-9]+)?)")

_FORMAT_WRONG = (
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
)
_MAX = 2**63 - 1
_NANO = -9
# Inputs with more significant digits than this are refused rather than converted to int,
# which Python limits to 4300 digits; no real quantity comes near it.
_MAX_DIGITS = 4000


class QuantityError(ValueError):
    """The text is not a Kubernetes quantity."""


@dataclass(frozen=True)
class Quantity:
    """An exact quantity: ``unscaled * 10**exponent``, plus the notation it was written in."""

    unscaled: int
    exponent: int
    notation: str  # "DecimalSI", "BinarySI" or "DecimalExponent"

    def canonical(self) -> str:
        """The text Kubernetes stores and serialises for this quantity."""
        notation = self.notation
        if notation == "BinarySI":
            whole = self._whole()
            if whole is None or -1024 < whole < 1024:
                notation = "DecimalSI"
            else:
                mantissa, power = _strip_factor(whole, 1024)
                return f"{mantissa}{_BINARY_NAMES.get(power * 10, '')}"
        mantissa, exponent = self.unscaled, self.exponent
        if mantissa != 0:
            mantissa, times = _strip_factor(mantissa, 10)
            exponent += times
        shift = exponent % 3  # Python's modulo: the exponent moves down to a multiple of 3
        mantissa *= 10**shift
        exponent -= shift
        if notation == "DecimalExponent":
            return f"{mantissa}" if exponent == 0 else f"{mantissa}e{exponent}"
        # Go ignores a failed suffix lookup and writes none; only a zero written with an
        # extreme scale gets there.
        return f"{mantissa}{_DECIMAL_NAMES.get(exponent, '')}"

    def _whole(self) -> int | None:
        if self.unscaled == 0:
            return 0
        if self.exponent >= 0:
            return int(self.unscaled * 10**self.exponent)
        divisor = 10**-self.exponent
        return self.unscaled // divisor if self.unscaled % divisor == 0 else None


def parse_quantity(text: str) -> Quantity:
    """Parse ``text`` as ``resource.ParseQuantity`` does, or raise :class:`QuantityError`."""
    if text == "":
        raise QuantityError(_FORMAT_WRONG)
    if text == "0":
        return Quantity(0, 0, "DecimalSI")
    match = _QUANTITY.fullmatch(text)
    if match is None:
        raise QuantityError(_FORMAT_WRONG)
    sign, whole, fraction, suffix = match.groups()
    fraction = fraction or ""
    base, power, notation = _interpret_suffix(suffix)
    digits = (whole + fraction).lstrip("0")
    if len(digits) > _MAX_DIGITS:
        raise QuantityError("quantity has too many digits")
    unscaled = int(digits) if digits else 0
    negative = sign == "-"
    if base == 10:
        return _bounded(unscaled, power - len(fraction), notation, negative)
    return _bounded(unscaled << power, -len(fraction), notation, negative)


def canonical_quantity(text: str) -> str:
    """Shorthand: parse and return the canonical text."""
    return parse_quantity(text).canonical()


def _interpret_suffix(suffix: str) -> tuple[int, int, str]:
    if suffix in _DECIMAL_SUFFIXES:
        return 10, _DECIMAL_SUFFIXES[suffix], "DecimalSI"
    if suffix in _BINARY_SUFFIXES:
        return 2, _BINARY_SUFFIXES[suffix], "BinarySI"
    if len(suffix) > 1 and suffix[0] in "eE":
        digits = suffix[1:].lstrip("+-").lstrip("0") or "0"
        # strconv.ParseInt(.., 64) refuses more than int64; Go then wraps the value to int32.
        if (suffix[1:2] in "+-" and suffix[2:3] in "+-") or len(digits) > 19 or int(digits) > _MAX:
            raise QuantityError("unable to parse quantity's suffix")
        exponent = -int(digits) if suffix[1] == "-" else int(digits)
        exponent = (exponent + 2**31) % 2**32 - 2**31
        return 10, exponent, "DecimalExponent"
    raise QuantityError("unable to parse quantity's suffix")


def _bounded(unscaled: int, exponent: int, notation: str, negative: bool) -> Quantity:
    """Round a non-zero value up to 1n and cap it, as ParseQuantity does."""
    if unscaled == 0:
        return Quantity(0, exponent, notation)
    digits = len(str(unscaled))
    if digits + exponent > 20:  # at least 10**19, beyond int64
        unscaled, exponent = _MAX, 0
    elif digits + exponent < _NANO:  # below 1n: rounds up to 1n
        unscaled, exponent = 1, _NANO
    elif exponent < _NANO:
        divisor = 10 ** (_NANO - exponent)
        unscaled, exponent = -(-unscaled // divisor), _NANO
    if exponent >= 0 and unscaled * 10**exponent > _MAX:
        unscaled, exponent = _MAX, 0
    if notation == "BinarySI" and exponent < 0 and unscaled < 10**-exponent:
        notation = "DecimalSI"  # between 0 and 1: ParseQuantity switches to decimal
    return Quantity(-unscaled if negative else unscaled, exponent, notation)


def _strip_factor(value: int, factor: int) -> tuple[int, int]:
    times = 0
    magnitude = abs(value)
    while magnitude >= factor and magnitude % factor == 0:
        magnitude //= factor
        times += 1
    return (-magnitude if value < 0 else magnitude), times
