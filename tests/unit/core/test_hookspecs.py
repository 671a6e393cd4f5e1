"""The hook contract is documented: in the spec module and in docs/plugins.md."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path
from types import ModuleType

from daprplane.core import hookspecs

DOCS = Path(__file__).resolve().parents[3] / "docs" / "plugins.md"


#: The host's own specs and each component's, added when the component loads.
SPEC_MODULES: list[ModuleType] = [
    hookspecs,
    *(
        importlib.import_module(f"daprplane.plugins.{component}.hookspecs")
        for component in ("injector", "operator", "placement", "sentry")
    ),
]


def _spec_functions() -> dict[str, object]:
    return {
        name: function
        for module in SPEC_MODULES
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if name.startswith("daprplane_") and function.__module__ == module.__name__
    }


def _specs() -> list[str]:
    return list(_spec_functions())


def test_every_hook_has_a_docstring() -> None:
    functions = _spec_functions()
    assert len(functions) >= 8
    for name, function in functions.items():
        doc = inspect.getdoc(function)
        assert doc and len(doc) > 40, f"{name} needs a docstring"


def test_every_hook_is_in_the_plugin_guide() -> None:
    guide = DOCS.read_text()
    missing = [name for name in _specs() if name not in guide]
    assert not missing
