"""Dapr's log lines: logrus-style text or JSON, set by ``--log-level/--log-as-json/--log-file``.

Dapr's tooling (and people's log pipelines) parse these lines, so the fields match Dapr's logger:
``time``, ``level``, ``msg``, ``instance``, ``scope``, ``type=log``, ``ver``.
"""

from __future__ import annotations

import json
import logging
import socket
import sys
from datetime import UTC, datetime
from typing import IO, Any

#: Dapr's level names, mapped onto the standard library's levels. ``fatal`` logs at CRITICAL.
LEVELS = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "warn": logging.WARNING,
    "error": logging.ERROR,
    "fatal": logging.CRITICAL,
}
_NAMES = {
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}
ROOT = "dapr"


class LogLevelError(ValueError):
    pass


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond:06d}Z"


class DaprFormatter(logging.Formatter):
    """One log record as one Dapr log line."""

    def __init__(self, as_json: bool, version: str) -> None:
        super().__init__()
        self.as_json = as_json
        self.version = version
        self.instance = socket.gethostname()

    def fields(self, record: logging.LogRecord) -> dict[str, Any]:
        message = record.getMessage()
        if record.exc_info and record.levelno <= logging.DEBUG:
            message += "\n" + self.formatException(record.exc_info)
        return {
            "time": _timestamp(record),
            "level": _NAMES.get(record.levelno, "info"),
            "msg": message,
            "instance": self.instance,
            "scope": record.name,
            "type": "log",
            "ver": self.version,
        }

    def format(self, record: logging.LogRecord) -> str:
        fields = self.fields(record)
        if self.as_json:
            return json.dumps(fields, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return " ".join(f"{key}={_quote(str(value))}" for key, value in fields.items())


def _quote(value: str) -> str:
    # logrus quotes a value unless it consists only of "safe" characters.
    if value and all(c.isalnum() or c in "-._/@^+:" for c in value):
        return value
    return json.dumps(value, ensure_ascii=False)


def configure(level: str, as_json: bool, log_file: str, version: str) -> None:
    """Apply the shared logging flags to the ``dapr`` logger tree.

    Raises :class:`LogLevelError` for a level Dapr does not know, and ``OSError`` when the log
    file cannot be opened.
    """
    if level not in LEVELS:
        raise LogLevelError(f"invalid value for --log-level: {level}")
    # The file stays open for the life of the process, like Go's os.OpenFile in Dapr's logger.
    stream: IO[str] = (
        open(log_file, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        if log_file
        else sys.stdout
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(DaprFormatter(as_json, version))
    root = logging.getLogger(ROOT)
    root.handlers[:] = [handler]
    root.setLevel(LEVELS[level])
    root.propagate = False
    # Libraries we use log under their own names: keep their warnings, in the same format.
    for name in ("daprplane", "aiohttp", "grpc", "kubernetes", "asyncio"):
        other = logging.getLogger(name)
        other.handlers[:] = [handler]
        other.setLevel(
            max(LEVELS[level], logging.WARNING) if name != "daprplane" else LEVELS[level]
        )
        other.propagate = False


def scoped(scope: str) -> logging.Logger:
    """The logger for a Dapr scope such as ``dapr.placement``."""
    return logging.getLogger(scope if scope.startswith(ROOT) else f"{ROOT}.{scope}")
