"""The hook contract is documented: in the spec module and in docs/plugins.md."""

from __future__ import annotations

import inspect
from pathlib import Path

from daprplane.core import hookspecs

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


def _specs() -> list[str]:
    return [
        name
        for name, _ in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("daprplane_")
    ]


def test_every_hook_has_a_docstring() -> None:
    names = _specs()
    assert len(names) >= 8
    for name in names:
        doc = inspect.getdoc(getattr(hookspecs, name))
        assert doc and len(doc) > 40, f"{name} needs a docstring"


def test_every_hook_is_in_the_plugin_guide() -> None:
    guide = DOCS.read_text()
    missing = [name for name in _specs() if name not in guide]
    assert not missing
