import contextlib
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.core import goduration

VECTORS = [
    ("0", 0, "0s"),
    ("8s", 8_000_000_000, "8s"),
    ("1m30s", 90_000_000_000, "1m30s"),
    ("500ms", 500_000_000, "500ms"),
    ("2h0m0s", 7_200_000_000_000, "2h0m0s"),
    ("1h", 3_600_000_000_000, "1h0m0s"),
    ("1.5s", 1_500_000_000, "1.5s"),
    ("-1.5h", -5_400_000_000_000, "-1h30m0s"),
    ("+3s", 3_000_000_000, "3s"),
    ("300us", 300_000, "300µs"),
    ("300µs", 300_000, "300µs"),
    ("1ns", 1, "1ns"),
    ("1h1.5m", 3_690_000_000_000, "1h1m30s"),
    (".5s", 500_000_000, "500ms"),
    ("5.s", 5_000_000_000, "5s"),
    ("100ms250us", 100_250_000, "100.25ms"),
]


@pytest.mark.parametrize(("text", "nanos", "printed"), VECTORS)
def test_parse_and_print_like_go(text: str, nanos: int, printed: str) -> None:
    assert goduration.parse_nanos(text) == nanos
    assert goduration.format_nanos(nanos) == printed


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", 'time: invalid duration ""'),
        ("1", 'time: missing unit in duration "1"'),
        ("1x", 'time: unknown unit "x" in duration "1x"'),
        ("s", 'time: invalid duration "s"'),
        ("-", 'time: invalid duration "-"'),
        (".s", 'time: invalid duration ".s"'),
        ("9999999999h", 'time: invalid duration "9999999999h"'),
    ],
)
def test_rejects_what_go_rejects(text: str, message: str) -> None:
    with pytest.raises(goduration.DurationError) as caught:
        goduration.parse_nanos(text)
    assert str(caught.value) == message


def test_timedelta_round_trip() -> None:
    assert goduration.parse("1m30s") == timedelta(seconds=90)
    assert goduration.format(timedelta(seconds=1)) == "1s"
    assert goduration.format(timedelta(milliseconds=250)) == "250ms"


@given(st.integers(min_value=-(2**63) + 1, max_value=2**63 - 1))
def test_printed_form_parses_back(nanos: int) -> None:
    assert goduration.parse_nanos(goduration.format_nanos(nanos)) == nanos


@given(st.text(max_size=30))
def test_any_text_parses_or_raises_duration_error(text: str) -> None:
    with contextlib.suppress(goduration.DurationError):
        goduration.parse_nanos(text)
