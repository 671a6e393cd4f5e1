"""The launchers: ``daprplane`` and one ``daprplane-<component>`` console script per built-in.

Each component becomes a click command whose options are the shared flags plus the component's
own, parsed with Go pflag syntax (:mod:`daprplane.core.goflags`). Flag errors exit 2 with usage on
stderr, as pflag does; everything after parsing is :mod:`daprplane.core.runtime`'s.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn

import click

from daprplane import __version__
from daprplane.core import goflags, runtime
from daprplane.core import logging as dapr_logging
from daprplane.core.component import ComponentSpec
from daprplane.core.flags import SHARED, FlagValues
from daprplane.core.host import PluginHost, Status

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


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
            # Some parser errors come without a context, and click then omits the usage text
            # that pflag always prints.
            error.ctx = error.ctx or ctx
            raise


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


def _missing_extra(spec: ComponentSpec) -> str | None:
    missing = spec.missing_modules()
    if not missing:
        return None
    extra = spec.extra or spec.name
    return (
        f"the {spec.name} component needs the '{extra}' extra: "
        f"pip install 'daprplane[{extra}]' (missing modules: {', '.join(missing)})"
    )


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
    problem = _missing_extra(spec)
    if problem is not None:
        logger.critical("%s", problem)
        sys.exit(1)
    sys.exit(runtime.run(spec, flag_values, host.hook))


def component_command(
    spec: ComponentSpec, host: PluginHost, name: str | None = None
) -> click.Command:
    flags = [*SHARED, *spec.flags]

    def callback(**values: Any) -> None:
        if click.get_current_context().invoked_subcommand is None:
            _launch(spec, host, values)

    settings: dict[str, Any] = {
        "params": [goflags.option(flag) for flag in flags],
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
    return host


def _plugins_command(host: PluginHost) -> click.Command:
    @click.command("plugins", context_settings=CONTEXT)
    def plugins() -> None:
        """List plugins: what loaded, what did not, and why."""
        width = max((len(record.name) for record in host.records), default=0)
        for record in host.records:
            components = ", ".join(record.components) or "-"
            line = (
                f"{record.name:<{width}}  {record.status.value:<9} "
                f"{record.distribution:<28} {components}"
            )
            if record.reason:
                line += f"  ({record.reason})"
            click.echo(line)

    return plugins


@click.command("version", context_settings=CONTEXT)
def version() -> None:
    """Print the daprplane version and the placement ring implementation in use."""
    click.echo(f"daprplane {__version__}")
    try:
        from daprplane import ring

        click.echo(f"ring: {ring.IMPLEMENTATION}")
    except Exception as error:  # a broken ring must not hide the version
        click.echo(f"ring: unavailable ({type(error).__name__}: {error})")
    click.echo(f"python: {sys.version.split()[0]}")


LOCAL_COMMANDS = {
    "up": "daprplane.core.local.commands:up",
    "status": "daprplane.core.local.commands:status",
}


def main(argv: Sequence[str] | None = None) -> None:
    """``daprplane``: every component as a subcommand, plus ``plugins`` and ``version``."""
    host = _host()
    group = LazyGroup("daprplane", context_settings=CONTEXT, help=main.__doc__, lazy=LOCAL_COMMANDS)
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
