"""Go pflag syntax on top of click.

Dapr's binaries parse flags with spf13/pflag (the operator with Go's ``flag``), after rewriting a
single-dash long flag into a double-dash one. Scripts and Helm charts written for them use every
form that allows: ``--f=v``, ``--f v``, ``-f=v``, ``-f v``, bare booleans, ``--f=false`` and Go
durations. click understands ``--f=v`` and ``--f v``; this module turns the rest into those and
supplies the value types.
"""

from __future__ import annotations

import csv
import sys
from collections.abc import Collection, Sequence
from typing import Any

import click

from daprplane.core import goduration
from daprplane.core.flags import Flag, Kind

_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


class GoBool(click.ParamType):  # type: ignore[type-arg]  # generic only in newer click
    """``strconv.ParseBool``: exactly Go's spellings, nothing more."""

    name = "bool"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> bool:
        if isinstance(value, bool):
            return value
        if value in _TRUE:
            return True
        if value in _FALSE:
            return False
        self.fail(
            f'invalid argument "{value}": strconv.ParseBool: parsing "{value}": invalid syntax'
        )


class GoDuration(click.ParamType):  # type: ignore[type-arg]
    name = "duration"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return goduration.parse(value)
        except goduration.DurationError as error:
            self.fail(f'invalid argument "{value}": {error}')


def _split_slice(values: Sequence[str]) -> tuple[str, ...]:
    # pflag reads each occurrence of a string slice as one CSV record, and later occurrences
    # append to earlier ones.
    items: list[str] = []
    for value in values:
        items.extend(next(csv.reader([value]), []))
    return tuple(items)


def normalize(
    args: Sequence[str], flags: Sequence[Flag], subcommands: Collection[str] = ()
) -> list[str]:
    """Rewrite Go-style arguments into forms click parses the same way pflag would.

    - ``-name...`` (one dash, longer than two characters) becomes ``--name...``, as Dapr does;
    - a bare boolean ``--name`` becomes ``--name=true``: pflag never takes the next argument as a
      boolean's value, while click would.
    The value of a flag given as ``--name value`` is left alone, like pflag leaves it, and so is
    everything from the first of ``subcommands`` on: a subcommand parses its own arguments.
    """
    kinds = {flag.name: flag.kind for flag in flags}
    result: list[str] = []
    expecting_value = False
    for index, arg in enumerate(args):
        if expecting_value:
            result.append(arg)
            expecting_value = False
            continue
        if arg == "--" or arg in subcommands:
            result.extend(args[index:])
            break
        if len(arg) > 2 and arg[0] == "-" and arg[1] != "-":
            arg = "-" + arg
        if arg.startswith("--") and len(arg) > 2:
            name, has_value, _ = arg[2:].partition("=")
            kind = kinds.get(name)
            if kind is Kind.BOOL and not has_value:
                arg = f"--{name}=true"
            elif kind is not None and not has_value:
                expecting_value = True
        result.append(arg)
    return result


def _warn_deprecated(flag: Flag) -> Any:
    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
        source = ctx.get_parameter_source(param.name or "")
        if source is click.core.ParameterSource.COMMANDLINE:
            print(f"Flag --{flag.name} has been deprecated, {flag.deprecated}", file=sys.stderr)
        return value

    return callback


def option(flag: Flag) -> click.Option:
    """The click option for one flag, named and typed as Dapr's."""
    common: dict[str, Any] = {
        "help": flag.help,
        "hidden": flag.hidden or flag.deprecated is not None,
        "show_default": True,
    }
    if flag.deprecated is not None:
        common["callback"] = _warn_deprecated(flag)
    decls = [f"--{flag.name}", flag.attribute]
    if flag.kind is Kind.STRING_SLICE:

        def collect(ctx: click.Context, param: click.Parameter, value: Sequence[str]) -> Any:
            return _split_slice(value) if value else tuple(flag.resolve_default())

        return click.Option(
            decls,
            multiple=True,
            callback=collect,
            help=flag.help,
            hidden=flag.hidden,
            show_default=",".join(flag.default) if not callable(flag.default) else True,
        )
    types: dict[Kind, Any] = {
        Kind.STRING: click.STRING,
        Kind.INT: click.INT,
        Kind.BOOL: GoBool(),
        Kind.DURATION: GoDuration(),
    }
    default: Any = flag.default
    if callable(flag.default):
        default = flag.resolve_default
        common["show_default"] = "from the environment"
    if flag.kind is Kind.DURATION and isinstance(default, str):
        default = goduration.parse(default)
        common["show_default"] = flag.default
    return click.Option(decls, type=types[flag.kind], default=default, **common)
