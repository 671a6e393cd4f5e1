"""Choosing between the Rust extension and the pure-Python twin.

``DAPRPLANE_RING`` = ``auto`` (default) | ``rust`` | ``python``. ``auto`` falls back to Python
only when the extension module is absent (a source checkout that was never built). An extension
that is present but fails to import, or that comes from another release than the Python code,
is an error: silently running the slow twin would hide a broken install.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

ENV_VAR = "DAPRPLANE_RING"
CHOICES = ("auto", "rust", "python")
EXTENSION_MODULE = "daprplane.ring._ring_rs"


class RustRingMissingError(ImportError):
    """The Rust extension was asked for but is not built into this install."""


def _python_module() -> ModuleType:
    from daprplane.ring import _python

    return _python


def _rust_module() -> ModuleType:
    try:
        module = importlib.import_module(EXTENSION_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != EXTENSION_MODULE:
            raise  # something the extension itself needs is missing: a broken install
        raise RustRingMissingError(
            f"the Rust placement ring ({EXTENSION_MODULE}) is not built; build it with "
            f"`maturin develop --release` or install a daprplane wheel, or set {ENV_VAR}=python",
            name=EXTENSION_MODULE,
        ) from exc
    _check_same_release(module)
    return module


def _check_same_release(module: ModuleType) -> None:
    from daprplane import __version__ as python_version

    rust_version = getattr(module, "__version__", None)
    if rust_version != python_version:
        raise ImportError(
            f"{EXTENSION_MODULE} is version {rust_version} but the daprplane Python package is "
            f"version {python_version}; rebuild the extension (maturin develop --release)",
            name=EXTENSION_MODULE,
        )


def implementation(name: str) -> ModuleType:
    """The ring module for ``"rust"`` or ``"python"``; both have the same API
    (``Ring``, ``hash_key``, ``hash_many``, ``IMPLEMENTATION``)."""
    if name == "python":
        return _python_module()
    if name == "rust":
        return _rust_module()
    raise ValueError(f"unknown ring implementation {name!r}; expected 'rust' or 'python'")


def rust_available() -> bool:
    """Whether the Rust extension is built (a broken one raises rather than answering False)."""
    try:
        _rust_module()
    except RustRingMissingError:
        return False
    return True


def select(choice: str | None = None) -> ModuleType:
    """The module chosen by ``choice``, or by ``DAPRPLANE_RING`` when ``choice`` is None."""
    if choice is None:
        choice = os.environ.get(ENV_VAR, "auto")
    normalized = choice.strip().lower()
    if normalized not in CHOICES:
        raise ValueError(
            f"{ENV_VAR}={choice!r} is not valid; expected one of: {', '.join(CHOICES)}"
        )
    if normalized == "auto":
        try:
            return _rust_module()
        except RustRingMissingError:
            return _python_module()
    return implementation(normalized)
