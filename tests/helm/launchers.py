"""Feed what the chart renders to daprplane's own parsers, without starting anything.

A chart can render flags or environment variables a launcher rejects at start; parsing them
here with the launchers' real command-line and environment parsers catches that in a unit test.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.core.cli import component_command
from daprplane.core.flags import SHARED, FlagValues
from daprplane.core.host import PluginHost

# Container commands and the component each one launches.
COMMANDS = {
    "daprplane-operator": "operator",
    "daprplane-sentry": "sentry",
    "daprplane-placement": "placement",
    "daprplane-injector": "injector",
}


def parse_args(command: str, args: list[str]) -> FlagValues:
    """Parse ``args`` as ``command`` would; click raises on a flag or value it rejects."""
    component = COMMANDS[command]
    host = PluginHost(environ={})
    host.load_entry_points()
    spec = host.components[component]
    click_command = component_command(spec, host, name=command)
    context = click_command.make_context(command, list(args))
    return FlagValues([*SHARED, *spec.flags], context.params)


def resolved_environ(container: Mapping[str, Any], pod: Mapping[str, str]) -> dict[str, str]:
    """The container's environment as the kubelet would set it, for a pod with ``pod`` fields.

    ``pod`` maps downward-API field paths (``metadata.namespace``, ``metadata.name``) to values.
    """
    environ: dict[str, str] = {}
    for entry in container.get("env", []):
        if "value" in entry:
            environ[entry["name"]] = str(entry["value"])
        else:
            environ[entry["name"]] = pod[entry["valueFrom"]["fieldRef"]["fieldPath"]]
    return environ


def expand(args: list[str], environ: Mapping[str, str]) -> list[str]:
    """Kubernetes' ``$(NAME)`` expansion of container args from the container's env."""
    expanded = []
    for arg in args:
        for name, value in environ.items():
            arg = arg.replace(f"$({name})", value)
        expanded.append(arg)
    return expanded
