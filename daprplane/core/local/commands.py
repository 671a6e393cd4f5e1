"""The ``up`` and ``status`` subcommands of ``daprplane``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path
from typing import Any

import click

from daprplane.core.cli import errors_as_json
from daprplane.core.local import plan
from daprplane.core.local.layout import STATE_DIR_ENV, StateDir, default_state_dir
from daprplane.core.local.report import StatusReport, render_text

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_CLUSTER_NAMESPACE = "dapr-system"
#: What ``up`` needs besides the core: the components it starts.
UP_COMPONENTS = ("sentry", "placement")
ALL_COMPONENTS = ("sentry", "placement", "operator", "injector")

state_dir_option = click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"Where the CA, logs and run record live [default: ${STATE_DIR_ENV} or ~/.daprplane].",
)


def _missing_extras(components: tuple[str, ...]) -> list[str]:
    from daprplane.core.host import PluginHost

    host = PluginHost()
    host.load_entry_points()
    problems = []
    for name in components:
        spec = host.components.get(name)
        if spec is None:
            problems.append(f"the {name} component is not available")
        elif spec.missing_modules():
            problems.append(f"the {name} component needs: pip install 'daprplane[{name}]'")
    return problems


@click.command("up", context_settings=CONTEXT)
@state_dir_option
@click.option("--listen-address", default="127.0.0.1", show_default=True)
@click.option(
    "--sentry-port",
    type=click.IntRange(1, 65535),
    default=plan.DEFAULT_SENTRY_PORT,
    show_default=True,
)
@click.option(
    "--placement-port",
    type=click.IntRange(1, 65535),
    default=plan.DEFAULT_PLACEMENT_PORT,
    show_default=True,
)
@click.option(
    "--trust-domain",
    default=None,
    help=f"[default: {plan.DEFAULT_TRUST_DOMAIN}; with --kubeconfig {plan.CLUSTER_TRUST_DOMAIN}]",
)
@click.option(
    "--namespace",
    default=None,
    help="The control plane's namespace (part of its SPIFFE IDs) "
    f"[default: {plan.DEFAULT_NAMESPACE}; with --kubeconfig {plan.CLUSTER_NAMESPACE}].",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warn", "error"]),
    default="info",
    show_default=True,
    help="The components' log level.",
)
@click.option(
    "--kubeconfig",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Run all four components against this cluster (needs Dapr's CRDs installed).",
)
@click.option(
    "--webhook-host",
    default="localhost",
    show_default=True,
    help="With --kubeconfig: the name under which the API server reaches this machine.",
)
@click.option(
    "--operator-port",
    type=click.IntRange(1, 65535),
    default=plan.DEFAULT_OPERATOR_PORT,
    show_default=True,
)
@click.option(
    "--injector-port",
    type=click.IntRange(1, 65535),
    default=plan.DEFAULT_INJECTOR_PORT,
    show_default=True,
)
@click.option(
    "--sidecar-image",
    default=plan.DEFAULT_SIDECAR_IMAGE,
    show_default=True,
    help="With --kubeconfig: the daprd image the injector adds to pods.",
)
def up(
    state_dir: Path | None,
    trust_domain: str | None,
    namespace: str | None,
    kubeconfig: str | None,
    **options: Any,
) -> None:
    """Run sentry and placement (mTLS) on this machine until Ctrl-C; with --kubeconfig, all
    four components against that cluster.

    Prints the addresses and the daprd flags and environment a self-hosted sidecar needs.
    """
    from daprplane.core.local import up as up_run

    problems = _missing_extras(ALL_COMPONENTS if kubeconfig else UP_COMPONENTS)
    if problems:
        raise click.ClickException("; ".join(problems))
    in_cluster = kubeconfig is not None
    settings = plan.Settings(
        state=StateDir(state_dir or default_state_dir()),
        trust_domain=trust_domain
        or (plan.CLUSTER_TRUST_DOMAIN if in_cluster else plan.DEFAULT_TRUST_DOMAIN),
        namespace=namespace or (plan.CLUSTER_NAMESPACE if in_cluster else plan.DEFAULT_NAMESPACE),
        kubeconfig=os.path.abspath(kubeconfig) if kubeconfig else None,
        **options,
    )
    sys.exit(up_run.run(settings))


async def _cluster_report(kubeconfig: str | None, namespace: str) -> StatusReport:
    from daprplane.core.kube.client import new_api_client
    from daprplane.core.local.cluster_status import cluster_status

    api = new_api_client(kubeconfig)
    try:
        return await cluster_status(api, namespace)
    finally:
        await api.close()


@click.command("status", context_settings=CONTEXT)
@state_dir_option
@click.option(
    "--kubeconfig",
    type=click.Path(dir_okay=False),
    default=None,
    help="Report the control plane installed in this cluster instead.",
)
@click.option(
    "--namespace",
    default=DEFAULT_CLUSTER_NAMESPACE,
    show_default=True,
    help="The control plane's namespace in the cluster (with --kubeconfig).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def status(state_dir: Path | None, kubeconfig: str | None, namespace: str, as_json: bool) -> None:
    """What runs (locally under `daprplane up`, or in a cluster): health, leaders, tables,
    certificate expiry. Exits 1 when something is not running or not healthy."""
    with errors_as_json(as_json):
        if kubeconfig:
            from daprplane.core.kube.client import KubeConfigError

            try:
                report = asyncio.run(_cluster_report(kubeconfig, namespace))
            except KubeConfigError as error:
                raise click.ClickException(str(error)) from None
        else:
            from daprplane.core.local.local_status import local_status

            report = local_status(StateDir(state_dir or default_state_dir()))
    click.echo(report.to_json() if as_json else render_text(report))
    sys.exit(0 if report.ok else 1)
