"""Flag definitions: what a component declares, independent of how the command line is parsed.

A component lists its flags as :class:`Flag` values; :mod:`daprplane.core.cli` turns them into a
click command that accepts Go pflag syntax. Values reach the component as a :class:`FlagValues`.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any


class Kind(enum.Enum):
    """The pflag value types Dapr's control plane uses."""

    STRING = "string"
    INT = "int"
    BOOL = "bool"
    DURATION = "duration"
    STRING_SLICE = "strings"


@dataclass(frozen=True)
class Flag:
    """One command-line flag, named exactly as Dapr names it (``replicationFactor`` included).

    ``default`` may be a zero-argument callable, evaluated when the command line is parsed; Dapr
    takes some defaults from the environment (``DAPR_PLACEMENT_METADATA_ENABLED``).
    ``deprecated`` is the notice pflag prints when the flag is used; deprecated flags are hidden.
    """

    name: str
    kind: Kind
    default: Any
    help: str
    hidden: bool = False
    deprecated: str | None = None

    @property
    def attribute(self) -> str:
        """The Python name of the value: ``disseminate-timeout`` -> ``disseminate_timeout``."""
        snake = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", self.name).lower()
        return snake.replace("-", "_")

    def resolve_default(self) -> Any:
        value = self.default() if callable(self.default) else self.default
        if self.kind is Kind.DURATION and isinstance(value, str):
            from daprplane.core import goduration

            return goduration.parse(value)
        return value


def string(name: str, default: str | Callable[[], str], help: str, **kw: Any) -> Flag:
    return Flag(name, Kind.STRING, default, help, **kw)


def integer(name: str, default: int, help: str, **kw: Any) -> Flag:
    return Flag(name, Kind.INT, default, help, **kw)


def boolean(name: str, default: bool | Callable[[], bool], help: str, **kw: Any) -> Flag:
    return Flag(name, Kind.BOOL, default, help, **kw)


def duration(name: str, default: str | timedelta, help: str, **kw: Any) -> Flag:
    """A Go duration flag; ``default`` may be written in Go syntax (``"8s"``)."""
    return Flag(name, Kind.DURATION, default, help, **kw)


def string_slice(name: str, default: tuple[str, ...], help: str, **kw: Any) -> Flag:
    return Flag(name, Kind.STRING_SLICE, default, help, **kw)


class FlagValues(Mapping[str, Any]):
    """Parsed flag values, by Dapr name (``values["log-level"]``) or attribute (``.log_level``)."""

    def __init__(self, flags: list[Flag], values: Mapping[str, Any]) -> None:
        self._by_name = {flag.name: values[flag.attribute] for flag in flags}
        self._by_attribute = {flag.attribute: values[flag.attribute] for flag in flags}

    def __getitem__(self, name: str) -> Any:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __getattr__(self, attribute: str) -> Any:
        try:
            return self.__dict__["_by_attribute"][attribute]
        except KeyError:
            raise AttributeError(attribute) from None

    def __repr__(self) -> str:
        return f"FlagValues({self._by_name!r})"


def truthy_env(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Dapr's ``utils.IsTruthy`` on an environment variable: y, yes, true, t, on, 1 (any case)."""
    import os

    value = (environ if environ is not None else os.environ).get(name, "")
    return value.strip().lower() in {"y", "yes", "true", "t", "on", "1"}


#: Flags every Dapr control-plane binary takes (dapr/kit logger and pkg/metrics, healthz), with
#: Dapr's defaults. Unlike Dapr, daprplane honours both listen addresses in every component.
SHARED: tuple[Flag, ...] = (
    string("log-level", "info", "Log level: debug, info, warn, error or fatal"),
    boolean("log-as-json", False, "Print log lines as JSON objects"),
    string("log-file", "", "Write log lines to this file instead of standard output"),
    boolean("enable-metrics", True, "Serve Prometheus metrics"),
    string("metrics-port", "9090", "Port of the Prometheus metrics server"),
    string("metrics-listen-address", "0.0.0.0", "Address the metrics server binds"),
    integer("healthz-port", 8080, "Port of the healthz server"),
    string(
        "healthz-listen-address", "", "Address the healthz server binds (empty: every interface)"
    ),
)
