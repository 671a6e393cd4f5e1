"""What a launcher says to install when a component's modules are missing."""

from __future__ import annotations

from daprplane.core.cli import _missing_extra
from daprplane.core.component import ComponentSpec

MISSING = ("daprplane_test_no_such_module",)


async def _run(_: object) -> None:
    return None


def _spec(extra: str | None = None, requires: tuple[str, ...] = MISSING) -> ComponentSpec:
    return ComponentSpec(name="acme", summary="x", run=_run, extra=extra, requires=requires)


def test_nothing_missing_needs_nothing() -> None:
    assert _missing_extra(_spec(requires=("json",))) is None


def test_a_built_in_names_daprplanes_extra() -> None:
    assert "pip install 'daprplane[acme]'" in (_missing_extra(_spec()) or "")


def test_a_third_party_names_its_own_distribution() -> None:
    with_extra = _missing_extra(_spec(extra="fast"), "acme-daprplane") or ""
    assert "pip install 'acme-daprplane[fast]'" in with_extra
    without = _missing_extra(_spec(), "acme-daprplane") or ""
    assert "pip install 'acme-daprplane' with its dependencies" in without
    assert "daprplane[" not in without and MISSING[0] in without
