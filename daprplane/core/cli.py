"""The launchers: ``daprplane`` and one ``daprplane-<component>`` console script per built-in.

Each component becomes a click command whose options are the shared flags plus the component's
own, parsed with Go pflag syntax (:mod:`daprplane.core.goflags`). A flag error exits 2 as pflag's
does: its message, then the whole usage with every flag, on stderr. Everything after parsing is
:mod:`daprplane.core.runtime`'s.

Tools with ``--json`` report their failures through :func:`errors_as_json`, so that a script that
asked for JSON gets JSON on standard output whether the command worked or not.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Any, NoReturn

import click

from daprplane import __version__
from daprplane.core import goflags, runtime
from daprplane.core import logging as dapr_logging
from daprplane.core.component import ComponentSpec
from daprplane.core.flags import SHARED, Flag, FlagValues, Kind
from daprplane.core.host import PluginHost, PluginRecord, Status

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class FlagError(click.UsageError):
    """A command-line error shown as pflag shows one: the message, then the full usage."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=True)
        if self.ctx is not None:
            click.echo(self.ctx.get_help(), file=file, err=True)


def pflag_message(error: click.UsageError) -> str:
    """``error`` in pflag's words where pflag has some (unknown flag, missing value)."""
    if isinstance(error, click.NoSuchOption):
        name = error.option_name
        if name.startswith("--"):
            return f"unknown flag: {name}"
        return f"unknown shorthand flag: '{name[1:2]}' in {name}"
    if isinstance(error, click.BadOptionUsage) and "requires" in error.message:
        return f"flag needs an argument: {error.option_name}"
    return error.format_message()


class JsonError(click.ClickException):
    """A failure reported as ``{"ok": false, "error": "<message>"}`` on standard output."""

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(json.dumps({"ok": False, "error": self.format_message()}))


@contextlib.contextmanager
def errors_as_json(enabled: bool) -> Iterator[None]:
    """Around the body of a command that has ``--json``: when ``enabled``, a failure that exits
    1 is reported as a JSON object on standard output (see :class:`JsonError`). Usage errors
    (exit 2) stay on stderr: they come before the command knows what was asked for."""
    try:
        yield
    except click.UsageError:
        raise
    except click.ClickException as error:
        if not enabled:
            raise
        raise JsonError(error.format_message()) from None


class _GoFlagParsing:
    """Rewrites Go-style arguments (``-port 5``, bare booleans) before click parses them."""

    go_flags: Sequence[Any] = ()

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        subcommands = self.list_commands(ctx) if isinstance(self, click.Group) else ()
        try:
            return super().parse_args(  # type: ignore[misc,no-any-return]
                ctx, goflags.normalize(args, self.go_flags, subcommands)
            )
        except click.UsageError as error:
            # Some parser errors come without a context; pflag's usage needs one.
            raise FlagError(pflag_message(error), error.ctx or ctx) from None


class LazyGroup(click.Group):
    """A group some of whose commands are imported only when they are run or listed.

    ``daprplane up`` and ``daprplane status`` bring the local supervisor and its report, and a
    component's tools their own libraries; a launcher that runs a component needs none of them.
    """

    def __init__(self, *args: Any, lazy: Mapping[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})  # command name -> "module:attribute"

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy and cmd_name not in self.commands:
            module, _, attribute = self.lazy[cmd_name].partition(":")
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


class GoFlagCommand(_GoFlagParsing, click.Command):
    def __init__(self, *args: Any, go_flags: Sequence[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.go_flags = go_flags


class GoFlagGroup(_GoFlagParsing, LazyGroup):
    """A component with tools: no subcommand runs the component, a subcommand runs the tool."""

    def __init__(self, *args: Any, go_flags: Sequence[Any], **kwargs: Any) -> None:
        kwargs["invoke_without_command"] = True
        super().__init__(*args, **kwargs)
        self.go_flags = go_flags


def _missing_extra(spec: ComponentSpec, distribution: str = "daprplane") -> str | None:
    """What to install for ``spec``'s missing modules: a daprplane extra for the built-in
    components, the plugin's own distribution (with its dependencies) for a third party's."""
    missing = spec.missing_modules()
    if not missing:
        return None
    modules = ", ".join(missing)
    if distribution == "daprplane":
        extra = spec.extra or spec.name
    elif spec.extra:
        extra = spec.extra
    else:
        return (
            f"the {spec.name} component of {distribution} needs modules that are not installed: "
            f"pip install '{distribution}' with its dependencies (missing modules: {modules})"
        )
    return (
        f"the {spec.name} component needs the '{extra}' extra: "
        f"pip install '{distribution}[{extra}]' (missing modules: {modules})"
    )


def _distribution_of(host: PluginHost, component: str) -> str:
    """The name of the distribution whose plugin registers ``component``."""
    record = host.record_for_component(component)
    if record is None or record.distribution in ("in-process", "unknown distribution"):
        return "daprplane"
    return record.distribution.split(" ", 1)[0]


def _launch(spec: ComponentSpec, host: PluginHost, values: dict[str, Any]) -> NoReturn:
    flags = [*SHARED, *spec.flags]
    flag_values = FlagValues(flags, values)
    try:
        dapr_logging.configure(
            flag_values.log_level, flag_values.log_as_json, flag_values.log_file, __version__
        )
    except (ValueError, OSError) as error:
        print(f"fatal: {error}", file=sys.stderr)
        sys.exit(1)
    logger = dapr_logging.scoped(spec.scope or spec.name)
    for record in host.failures():
        logger.warning(
            "Plugin %s (%s) not loaded: %s", record.name, record.distribution, record.reason
        )
    problem = _missing_extra(spec, _distribution_of(host, spec.name))
    if problem is not None:
        logger.critical("%s", problem)
        sys.exit(1)
    sys.exit(runtime.run(spec, flag_values, host.hook))


#: Metavars for the help, by flag kind; a click type's own name (TEXT, INTEGER) says less.
_METAVARS = {
    Kind.STRING: "TEXT",
    Kind.INT: "INTEGER",
    Kind.BOOL: "BOOL",
    Kind.DURATION: "DURATION",
    Kind.STRING_SLICE: "TEXT,...",
}


def _metavar(flag: Flag) -> str:
    # Dapr types some ports as strings (--metrics-port) and others as integers (--port); both
    # are read as port numbers, and the help says so alike.
    if flag.name == "port" or flag.name.endswith("-port"):
        return "PORT"
    if flag.name.endswith(("-file", "-filename")) or flag.name == "kubeconfig":
        return "FILE"
    return _METAVARS[flag.kind]


def flag_option(flag: Flag) -> click.Option:
    """The click option of ``flag``, with a metavar that says what the value is and no
    ``[default: ()]`` for a list that is empty by default."""
    option = goflags.option(flag)
    option.metavar = _metavar(flag)
    if flag.kind is Kind.STRING_SLICE and not callable(flag.default) and not flag.default:
        option.show_default = False
    return option


def component_command(
    spec: ComponentSpec, host: PluginHost, name: str | None = None
) -> click.Command:
    flags = [*SHARED, *spec.flags]

    def callback(**values: Any) -> None:
        if click.get_current_context().invoked_subcommand is None:
            _launch(spec, host, values)

    settings: dict[str, Any] = {
        "params": [flag_option(flag) for flag in flags],
        "callback": callback,
        "help": spec.summary,
        "short_help": spec.summary,
        "context_settings": CONTEXT,
        "go_flags": flags,
    }
    if not spec.commands:
        return GoFlagCommand(name or spec.name, **settings)
    if isinstance(spec.commands, Mapping):
        return GoFlagGroup(name or spec.name, lazy=spec.commands, **settings)
    return GoFlagGroup(name or spec.name, commands=list(spec.commands), **settings)


def _host() -> PluginHost:
    host = PluginHost()
    host.load_entry_points()
    # A misspelt name would otherwise disable (or fail to disable) plugins without a word.
    for warning in host.selection_warnings():
        print(f"warning: {warning}", file=sys.stderr)
    return host


PLUGIN_COLUMNS = ("PLUGIN", "STATUS", "DISTRIBUTION", "COMPONENTS", "REASON")


def plugin_table(records: Sequence[PluginRecord]) -> list[str]:
    """The lines of ``daprplane plugins``: a header, then one row per entry point."""
    rows = [PLUGIN_COLUMNS] + [
        (
            record.name,
            record.status.value,
            record.distribution,
            ", ".join(record.components) or "-",
            record.reason,
        )
        for record in records
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(PLUGIN_COLUMNS))]
    return [
        "  ".join(f"{cell:<{width}}" for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def _plugins_command(host: PluginHost) -> click.Command:
    @click.command("plugins", context_settings=CONTEXT)
    def plugins() -> None:
        """List plugins: what loaded, what did not, and why."""
        for line in plugin_table(host.records):
            click.echo(line)

    return plugins


def _echo_version() -> None:
    click.echo(f"daprplane {__version__}")
    try:
        from daprplane import ring

        click.echo(f"ring: {ring.IMPLEMENTATION}")
    except Exception as error:  # a broken ring must not hide the version
        click.echo(f"ring: unavailable ({type(error).__name__}: {error})")
    click.echo(f"python: {sys.version.split()[0]}")


@click.command("version", context_settings=CONTEXT)
def version() -> None:
    """Print the daprplane version and the placement ring implementation in use."""
    _echo_version()


def _version_flag(ctx: click.Context, _: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        _echo_version()
        ctx.exit()


VERSION_OPTION = click.Option(
    ["--version"],
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_version_flag,
    help="Print the version (as `daprplane version` does) and exit.",
)


LOCAL_COMMANDS = {
    "up": "daprplane.core.local.commands:up",
    "status": "daprplane.core.local.commands:status",
}


def main(argv: Sequence[str] | None = None) -> None:
    """``daprplane``: every component as a subcommand, plus ``plugins`` and ``version``."""
    host = _host()
    group = LazyGroup(
        "daprplane",
        context_settings=CONTEXT,
        help="The Dapr control plane: every component as a subcommand, and tools beside them.",
        lazy=LOCAL_COMMANDS,
        params=[VERSION_OPTION],
    )
    for spec in host.components.values():
        group.add_command(component_command(spec, host))
    group.add_command(_plugins_command(host))
    group.add_command(version)
    group.main(args=argv, prog_name="daprplane")


def launch_component(component: str, argv: Sequence[str] | None = None) -> None:
    """A dedicated launcher such as ``daprplane-placement``."""
    prog = f"daprplane-{component}"
    host = _host()
    spec = host.components.get(component)
    if spec is None:
        record = host.record_for_component(component)
        why = (
            f"plugin {record.name}: {record.status.value}, {record.reason}"
            if record
            else ("no plugin registers it")
        )
        if record is not None and record.status is Status.LOADED:
            why = f"plugin {record.name} loaded but registered no '{component}' component"
        print(f"{prog}: the {component} component is not available ({why})", file=sys.stderr)
        sys.exit(1)
    component_command(spec, host, name=prog).main(args=argv, prog_name=prog)


def placement_main() -> None:
    launch_component("placement")


def sentry_main() -> None:
    launch_component("sentry")


def injector_main() -> None:
    launch_component("injector")


def operator_main() -> None:
    launch_component("operator")
