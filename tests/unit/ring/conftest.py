"""Fixtures that run each ring test once per implementation."""

from __future__ import annotations

import os
from types import ModuleType

import pytest

from daprplane.ring import implementation, rust_available

IMPLEMENTATIONS = ("rust", "python")


def rust_required() -> bool:
    """CI builds the extension and sets DAPRPLANE_REQUIRE_RUST=1, so a missing build fails."""
    return os.environ.get("DAPRPLANE_REQUIRE_RUST") == "1"


def load(name: str) -> ModuleType:
    if name == "rust" and not rust_available() and not rust_required():
        pytest.skip(
            "Rust ring extension not built (run `maturin develop --release`); "
            "set DAPRPLANE_REQUIRE_RUST=1 to make this a failure"
        )
    return implementation(name)


@pytest.fixture(scope="session", params=IMPLEMENTATIONS)
def ring_impl(request: pytest.FixtureRequest) -> ModuleType:
    """The ``_ring_rs`` or ``_python`` module: same API (Ring, hash_key, hash_many)."""
    return load(request.param)


@pytest.fixture(scope="session")
def both_impls() -> tuple[ModuleType, ModuleType]:
    """(rust, python), for tests that compare the two directly."""
    return load("rust"), load("python")
