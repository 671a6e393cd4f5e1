"""The record a running ``daprplane up`` keeps in its state directory, for ``daprplane status``.

Written once every component is ready and removed when ``up`` stops; a record left by a
supervisor that was killed is recognised by its dead process ID and reported as stale.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RunningComponent:
    name: str
    pid: int
    address: str
    healthz_port: int
    metrics_port: int
    log: str
    extras: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class UpRecord:
    pid: int  # the supervisor's
    started_at: float  # Unix time
    mode: str
    listen_address: str
    trust_domain: str
    namespace: str
    trust_anchors: str
    components: tuple[RunningComponent, ...]

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> UpRecord:
        data: dict[str, Any] = json.loads(text)
        components = tuple(RunningComponent(**item) for item in data.pop("components"))
        return cls(components=components, **data)


class RecordError(Exception):
    """The record exists but cannot be read: a different version wrote it, or it was edited."""


def write(path: Path, record: UpRecord) -> None:
    """Replace atomically: a concurrent ``status`` never reads half a record."""
    partial = path.with_suffix(".partial")
    partial.write_text(record.to_json())
    os.replace(partial, path)


def read(path: Path) -> UpRecord | None:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        return UpRecord.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        raise RecordError(f"{path} is not a daprplane up record ({error})") from None


def remove(path: Path) -> None:
    path.unlink(missing_ok=True)


def process_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped by a stalled parent) does not."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][:1]
    except (OSError, IndexError):  # no procfs: trust the signal check
        return True
    return state != "Z"
