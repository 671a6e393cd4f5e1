"""The README's two set-up commands: what they are, and that CI runs the second one verbatim."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
VENV = "python3 -m venv .venv && . .venv/bin/activate && "


def _shell_blocks() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    return [block.strip() for block in re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)]


def test_the_first_command_installs_and_starts_the_control_plane() -> None:
    assert _shell_blocks()[0] == f"{VENV}python3 -m pip install '.[all]' && python3 -m daprplane up"


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    test_command = next(block for block in _shell_blocks() if "nox -s tests" in block)
    assert test_command.startswith(VENV)
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines
