"""Choosing the implementation: DAPRPLANE_RING, fallbacks, and release checks.

Each case runs in a fresh interpreter, because the choice is made once, at import."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import textwrap

import pytest

from daprplane.ring import rust_available
from tests.unit.ring.conftest import rust_required


def run_python(code: str, ring_env: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DAPRPLANE_RING"}
    if ring_env is not None:
        env["DAPRPLANE_RING"] = ring_env
    # Run outside the checkout: `python -c` puts the working directory first on sys.path, and
    # the source tree's daprplane (without a built extension) must not shadow the installed one.
    with tempfile.TemporaryDirectory() as elsewhere:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )


PRINT_CHOICE = "import daprplane.ring as r; print(r.IMPLEMENTATION, r.Ring.implementation)"

# Makes the extension look absent, as in a source checkout that was never built.
HIDE_EXTENSION = "import sys; sys.modules['daprplane.ring._ring_rs'] = None\n"


def test_rust_extension_is_built_when_required() -> None:
    """CI sets DAPRPLANE_REQUIRE_RUST=1: there a missing extension must fail, not skip."""
    if not rust_required():
        pytest.skip("DAPRPLANE_REQUIRE_RUST is not 1")
    assert rust_available(), "DAPRPLANE_REQUIRE_RUST=1 but daprplane.ring._ring_rs is not built"


def test_python_on_request() -> None:
    result = run_python(PRINT_CHOICE, "python")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "python"]


def test_rust_on_request_and_by_default() -> None:
    if not rust_available() and not rust_required():
        pytest.skip("Rust ring extension not built")
    for env in ("rust", "auto", None, " RUST "):
        result = run_python(PRINT_CHOICE, env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.split() == ["rust", "rust"], env


def test_auto_falls_back_when_the_extension_is_absent() -> None:
    result = run_python(HIDE_EXTENSION + PRINT_CHOICE, "auto")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["python", "python"]


def test_rust_on_request_when_absent_is_a_clear_import_error() -> None:
    result = run_python(HIDE_EXTENSION + "import daprplane.ring", "rust")
    assert result.returncode != 0
    assert "RustRingMissingError" in result.stderr
    assert "daprplane.ring._ring_rs" in result.stderr and "not built" in result.stderr


def test_invalid_choice_names_the_allowed_values() -> None:
    result = run_python("import daprplane.ring", "fast")
    assert result.returncode != 0
    assert "ValueError" in result.stderr
    assert "'fast'" in result.stderr and "auto, rust, python" in result.stderr


@pytest.mark.parametrize(
    "failure",
    [
        "ImportError('libfoo.so: cannot open shared object file')",
        "ModuleNotFoundError(\"No module named 'libdep'\", name='libdep')",
    ],
)
def test_broken_extension_is_not_silently_replaced(failure: str) -> None:
    """Only the extension's own absence falls back: an extension that fails to load raises."""
    code = f"""
        import importlib.abc, sys

        class Broken(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "daprplane.ring._ring_rs":
                    raise {failure}
                return None

        sys.meta_path.insert(0, Broken())
        sys.modules.pop("daprplane.ring._ring_rs", None)
        import daprplane.ring
    """
    result = run_python(code, "auto")
    assert result.returncode != 0
    assert "libfoo" in result.stderr or "libdep" in result.stderr


def test_extension_from_another_release_is_refused() -> None:
    code = """
        import sys, types
        fake = types.ModuleType("daprplane.ring._ring_rs")
        fake.__version__ = "0.0.1"
        sys.modules["daprplane.ring._ring_rs"] = fake
        import daprplane, daprplane.ring
    """
    result = run_python(code, "auto")
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "0.0.1" in result.stderr and "0.1.0" in result.stderr


def test_implementation_gives_either_module() -> None:
    from daprplane.ring import implementation

    assert implementation("python").IMPLEMENTATION == "python"
    with pytest.raises(ValueError, match="rust"):
        implementation("go")
