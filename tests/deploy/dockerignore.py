"""Decide, as the builder does, whether a path of the build context survives ``.dockerignore``.

The rules of the file format: one pattern a line, ``#`` comments, ``!`` re-includes, patterns
cleaned like paths (a trailing ``/`` means nothing, a leading ``/`` is dropped), ``*`` and ``?``
never cross ``/``, ``**`` spans any number of directories (none included), ``[...]`` is a class.
A pattern that matches a directory excludes everything under it, and the last pattern that matches
a path or one of its parent directories decides.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    reincludes: bool
    text: str


def _translate(pattern: str) -> re.Pattern[str]:
    regex = ""
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
            # "**" at the end takes the rest; elsewhere any run of whole directories, or none.
            regex += ".*" if index == len(pattern) else "(?:.*/)?"
            continue
        if char == "*":
            regex += "[^/]*"
        elif char == "?":
            regex += "[^/]"
        elif char == "[":
            end = pattern.index("]", index + 1)
            regex += pattern[index : end + 1]
            index = end
        elif char == "\\" and index + 1 < len(pattern):
            index += 1
            regex += re.escape(pattern[index])
        else:
            regex += re.escape(char)
        index += 1
    return re.compile(f"{regex}$")


def parse(text: str) -> list[Pattern]:
    patterns: list[Pattern] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        reincludes = line.startswith("!")
        cleaned = posixpath.normpath(line[1:].strip() if reincludes else line).lstrip("/")
        patterns.append(Pattern(_translate(cleaned), reincludes, line))
    return patterns


def _self_and_parents(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[: end + 1]) for end in range(len(parts))]


def is_excluded(patterns: list[Pattern], path: str) -> bool:
    """Whether ``path`` (relative to the context root, ``/``-separated) is left out."""
    path = posixpath.normpath(path).lstrip("/")
    excluded = False
    for pattern in patterns:
        if any(pattern.regex.match(candidate) for candidate in _self_and_parents(path)):
            excluded = not pattern.reincludes
    return excluded


def load(path: Path) -> list[Pattern]:
    return parse(path.read_text()) if path.exists() else []
