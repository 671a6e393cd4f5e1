"""Read a Dockerfile into stages and instructions, as the builder's parser does.

Only what the image's tests look at: comment and continuation handling, stages (``FROM ... AS``),
instruction flags (``--from=``, ``--mount=``), exec (JSON) and shell forms, ``KEY=value`` lists
(``ARG``, ``ENV``, ``LABEL``) and ``$VAR`` / ``${VAR}`` references to a stage's ``ARG`` defaults.
Heredocs and the ``escape`` parser directive are not supported (the image uses neither).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

_CONTINUATION = "\\"
_FLAG = re.compile(r"--(?P<name>[a-z-]+)=(?P<value>\S+)\s*")
_VARIABLE = re.compile(r"\$(?:\{(?P<braced>\w+)\}|(?P<bare>\w+))")


@dataclass(frozen=True)
class Instruction:
    """One instruction: its keyword (upper case), the text after it, and its first line."""

    keyword: str
    text: str
    line: int

    @property
    def flags(self) -> dict[str, list[str]]:
        """Leading ``--name=value`` flags; a flag may repeat (``RUN --mount=... --mount=...``)."""
        return self._split_flags()[0]

    @property
    def body(self) -> str:
        """The text after the flags."""
        return self._split_flags()[1]

    @property
    def is_exec_form(self) -> bool:
        return self.body.startswith("[")

    @property
    def words(self) -> list[str]:
        """The arguments: the JSON array of the exec form, or the shell words of the body."""
        if self.is_exec_form:
            parsed = json.loads(self.body)
            assert isinstance(parsed, list), f"line {self.line}: exec form is not a list"
            return [str(word) for word in parsed]
        return shlex.split(self.body)

    def commands(self) -> list[list[str]]:
        """A shell-form ``RUN``'s simple commands, split at ``&&``, ``||``, ``;`` and ``|``."""
        commands: list[list[str]] = [[]]
        lexer = shlex.shlex(self.body, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        for word in lexer:
            if word in {"&&", "||", ";", "|"}:
                commands.append([])
            else:
                commands[-1].append(word)
        return [command for command in commands if command]

    def assignments(self) -> dict[str, str]:
        """``KEY=value`` pairs (``ARG``, ``ENV``, ``LABEL``); an ``ARG`` without default maps to
        the empty string."""
        pairs: dict[str, str] = {}
        for word in shlex.split(self.body):
            key, _, value = word.partition("=")
            pairs[key] = value
        return pairs

    def _split_flags(self) -> tuple[dict[str, list[str]], str]:
        flags: dict[str, list[str]] = {}
        rest = self.text
        while match := _FLAG.match(rest):
            flags.setdefault(match["name"], []).append(match["value"])
            rest = rest[match.end() :]
        return flags, rest


@dataclass(frozen=True)
class Stage:
    """A build stage: its ``FROM`` image, its name (``AS``), and the instructions after it."""

    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [each for each in self.instructions if each.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None

    def arg_defaults(self) -> dict[str, str]:
        defaults: dict[str, str] = {}
        for arg in self.all("ARG"):
            defaults.update(arg.assignments())
        return defaults

    def expand(self, value: str) -> str:
        """``value`` with the stage's ``ARG`` defaults put in for ``$VAR`` and ``${VAR}``."""
        defaults = self.arg_defaults()

        def substitute(match: re.Match[str]) -> str:
            name = match["braced"] or match["bare"]
            assert name in defaults, f"${name} is not an ARG of stage {self.name or self.image}"
            return defaults[name]

        return _VARIABLE.sub(substitute, value)

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for env in self.all("ENV"):
            values.update(env.assignments())
        return values

    def labels(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for label in self.all("LABEL"):
            values.update({key: self.expand(value) for key, value in label.assignments().items()})
        return values


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Instructions as single lines with their first line number: comment and blank lines dropped
    (also inside a continuation, as the builder does), continued lines joined."""
    joined: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        # Blank lines inside a continuation are dropped too, not taken as its end.
        if not stripped or stripped.startswith("#"):
            continue
        if not pending:
            start = number
        continued = stripped.endswith(_CONTINUATION)
        pending.append(raw.rstrip()[:-1] if continued else raw.strip())
        if not continued:
            joined.append((start, " ".join(part.strip() for part in pending)))
            pending = []
    assert not pending, "the Dockerfile ends inside a continued line"
    return joined


def parse(text: str) -> list[Stage]:
    """The stages of a Dockerfile, in order. Instructions before the first ``FROM`` (global
    ``ARG``s) are not kept: the image's tests do not use them."""
    stages: list[Stage] = []
    for line, content in logical_lines(text):
        keyword, _, rest = content.partition(" ")
        instruction = Instruction(keyword.upper(), rest.strip(), line)
        if instruction.keyword == "FROM":
            words = instruction.body.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) in (1, 3), f"line {line}: unexpected FROM {instruction.text!r}"
            stages.append(Stage(image=words[0], name=name))
        elif stages:
            stages[-1].instructions.append(instruction)
    return stages


def load(path: Path) -> list[Stage]:
    return parse(path.read_text())
