"""The ``dapr.io/env`` and ``dapr.io/env-from-secret`` annotation parsers.

Values may themselves contain commas and ``=`` (``OTEL_RESOURCE_ATTRIBUTES=a=1,b=2``), so Dapr
splits only at a comma that is followed by something shaped like a new ``NAME=``; we do the same.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Go's ``\s`` is ASCII whitespace only; Python's would also match Unicode spaces.
_SPLIT_COMMA = re.compile(r",(?=[\t\n\f\r ]*[a-zA-Z_][a-zA-Z0-9_]*=)")
_GO_SPACE = " \t\n\v\f\r\x85\xa0"


@dataclass(frozen=True)
class SecretReference:
    """An env var read from key ``key`` of Secret ``secret``."""

    name: str
    secret: str
    key: str


def parse_env(text: str) -> list[tuple[str, str]]:
    """Split ``A=1,B=x,y,C=3`` into ``[("A","1"), ("B","x,y"), ("C","3")]``.

    Parts are trimmed; a part without ``=`` is dropped, and so is one with an empty name
    (Dapr keeps it and the API server then rejects the pod).
    """
    pairs: list[tuple[str, str]] = []
    for part in _SPLIT_COMMA.split(text.strip(_GO_SPACE)):
        name, equals, value = part.strip(_GO_SPACE).partition("=")
        if equals and name:
            pairs.append((name, value))
    return pairs


def parse_env_from_secret(text: str) -> tuple[list[SecretReference], list[str]]:
    """``K=secret`` or ``K=secret:key`` entries, and every name seen (for ``DAPR_ENV_KEYS``).

    ``K=secret`` reads key ``secret`` of Secret ``secret``. A reference with more than one ``:``
    is skipped, but its name is still listed, as Dapr does.
    """
    references: list[SecretReference] = []
    names: list[str] = []
    for name, value in parse_env(text):
        names.append(name)
        parts = value.split(":")
        if len(parts) == 1:
            references.append(SecretReference(name, parts[0], parts[0]))
        elif len(parts) == 2:
            references.append(SecretReference(name, parts[0], parts[1]))
    return references, names
