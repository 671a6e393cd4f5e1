"""What ``daprplane up`` prints: progress lines, failures with the end of a log, the summary."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import click

from daprplane.core.local.certs import certificate_file, describe_expiry
from daprplane.core.local.layout import default_state_dir
from daprplane.core.local.plan import ComponentProcess, Settings, sidecar_hints
from daprplane.core.local.supervisor import Child

NAME_WIDTH = 11


def say(name: str, message: str, **style: object) -> None:
    click.echo(f"  {click.style(f'{name:<{NAME_WIDTH}}', **style)}{message}")  # type: ignore[arg-type]


def error(message: str) -> None:
    click.echo(click.style("error: ", fg="red", bold=True) + message, err=True)


def report_failure(child: Child, problem: str) -> None:
    say(child.name, problem, fg="red", bold=True)
    tail = child.log_tail()
    if tail:
        click.echo(f"\n  last lines of {child.log}:")
        click.echo("\n".join(f"    {line}" for line in tail.splitlines()))


def stopped(child: Child, code: int | None) -> None:
    if code is None:
        say(child.name, "killed: it did not stop in time", fg="red")
    elif code == 0:
        say(child.name, "stopped")
    else:
        say(child.name, f"exited with code {code}", fg="red")


def _table(settings: Settings, components: Sequence[ComponentProcess]) -> None:
    host = settings.listen_address
    click.echo(f"  {'component':<{NAME_WIDTH}}{'address':<22}{'healthz':<22}metrics")
    for component in components:
        click.echo(
            f"  {component.name:<{NAME_WIDTH}}{component.address:<22}"
            f"{f'{host}:{component.healthz_port}':<22}{host}:{component.metrics_port}"
        )
        for label, value in component.extras.items():
            click.echo(f"  {'':<{NAME_WIDTH}}{label}: {value}")


def _anchors(settings: Settings, anchors: Path) -> None:
    root = certificate_file(anchors)
    click.echo(f"\n  trust anchors  {anchors}  (root expires {describe_expiry(root)})")
    click.echo(f"  trust domain   {settings.trust_domain}, namespace {settings.namespace}")


def _closing(settings: Settings) -> None:
    status = "daprplane status"
    if settings.state.root != default_state_dir():
        status += f" --state-dir {settings.state.root}"
    click.echo(
        f"\nLogs in {settings.state.logs}. `{status}` shows health; Ctrl-C stops everything."
    )


def standalone_summary(settings: Settings, components: Sequence[ComponentProcess]) -> None:
    click.echo("\n" + click.style("daprplane is up", fg="green", bold=True) + " (standalone)\n")
    _table(settings, components)
    _anchors(settings, settings.state.trust_anchors)
    click.echo("\nRun a self-hosted sidecar against it (add your app's own flags):\n")
    for line in sidecar_hints(settings, list(components)).shell_lines():
        click.echo(f"  {line}")
    _closing(settings)


def cluster_summary(
    settings: Settings, components: Sequence[ComponentProcess], anchors: Path, server: str
) -> None:
    click.echo(
        "\n"
        + click.style("daprplane is up", fg="green", bold=True)
        + f" (kubernetes: {server}, namespace {settings.namespace})\n"
    )
    _table(settings, components)
    _anchors(settings, anchors)
    click.echo(
        '\nPods created with the annotation dapr.io/enabled: "true" now get a daprd sidecar\n'
        f"(the API server calls the injector at {settings.webhook_host}:{settings.injector_port}),"
        " and Dapr-enabled\nDeployments get their <app-id>-dapr Service. The sidecars reach the"
        " control plane under\nits Service names, so they need a network path from the cluster"
        " to this machine;\nfor a cluster of its own, install the Helm chart (docs/kubernetes.md)."
    )
    _closing(settings)
