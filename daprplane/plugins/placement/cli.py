"""Placement tools: ``daprplane placement locate`` and ``daprplane placement simulate``.

Plain click commands (standard flag syntax, not the launchers' Go syntax); the placement plugin
lists them in its ComponentSpec. Errors exit 1 with one line saying what was wrong.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

import click

from daprplane.core import goduration
from daprplane.core.cli import errors_as_json

__all__ = ["COMMANDS", "locate", "simulate"]

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
#: The logger trees of daprplane's own code: Dapr's scopes (``dapr.*``) and the package's.
OWN_LOGGERS = ("dapr", "daprplane")
RING_CHOICES = click.Choice(["auto", "rust", "python"])
PLOT_EXTRA = "pip install 'daprplane[plot]'"


class ToolError(click.ClickException):
    """Exit 1 with ``error: <message>`` on stderr."""

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def _seconds(text: str) -> float:
    """A Go duration (``10s``, ``1m30s``) or a number of seconds."""
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return goduration.parse(text).total_seconds()
    except ValueError as error:
        raise click.BadParameter(str(error)) from None


def _configure_logging(verbose: bool) -> None:
    """``-v`` shows what daprplane's own loggers say, down to debug, on stderr; the libraries
    underneath (asyncio, gRPC) keep to their warnings. Without it only critical lines show."""
    logging.basicConfig(
        level=logging.WARNING if verbose else logging.CRITICAL,
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if verbose:
        for name in OWN_LOGGERS:
            logging.getLogger(name).setLevel(logging.DEBUG)


def _addresses(values: Sequence[str]) -> list[str]:
    # daprd's --placement-host-address is a comma list; repeated flags work as well.
    return [part.strip() for value in values for part in value.split(",") if part.strip()]


# -- locate -----------------------------------------------------------------------------------


@click.command("locate", context_settings=CONTEXT)
@click.option(
    "--address",
    "addresses",
    multiple=True,
    required=True,
    metavar="HOST:PORT",
    help="Placement server; repeat (or comma-separate) for HA peers.",
)
@click.option(
    "--namespace", default="default", show_default=True, help="Namespace whose table to read."
)
@click.option("--type", "actor_type", required=True, help="Actor type.")
@click.option("--id", "actor_id", required=True, help="Actor ID.")
@click.option(
    "--app-id",
    default="daprplane-locate",
    show_default=True,
    help="App ID to connect as (with --tls, the one Sentry signs).",
)
@click.option(
    "--host-name",
    default="daprplane-locate",
    show_default=True,
    help="Host name to report (this client reports no actor types).",
)
@click.option(
    "--timeout",
    default="10s",
    show_default=True,
    help="How long to wait for the table (Go duration or seconds).",
)
@click.option(
    "--tls", is_flag=True, help="mTLS: an SVID from Sentry, placement's SPIFFE ID checked."
)
@click.option(
    "--trust-anchors-file",
    default="/var/run/secrets/dapr.io/tls/ca.crt",
    show_default=True,
    help="PEM trust anchors (with --tls).",
)
@click.option(
    "--sentry-address",
    default="localhost:50001",
    show_default=True,
    help="Sentry to get the SVID from (with --tls).",
)
@click.option(
    "--trust-domain",
    default="localhost",
    show_default=True,
    help="Control-plane trust domain (placement's SPIFFE ID).",
)
@click.option(
    "--control-plane-namespace",
    default="default",
    show_default=True,
    help="Control-plane namespace (placement's and Sentry's SPIFFE IDs).",
)
@click.option(
    "--ring", default="auto", type=RING_CHOICES, show_default=True, help="Ring implementation."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Log connection attempts to stderr.")
def locate(
    addresses: Sequence[str],
    namespace: str,
    actor_type: str,
    actor_id: str,
    app_id: str,
    host_name: str,
    timeout: str,
    tls: bool,
    trust_anchors_file: str,
    sentry_address: str,
    trust_domain: str,
    control_plane_namespace: str,
    ring: str,
    as_json: bool,
    verbose: bool,
) -> None:
    """Print the sidecar (host name and app ID) that hosts an actor, as daprd would route it.

    Connects like an actor-less sidecar, waits for the namespace's table and looks the actor up
    on its type's ring."""
    _configure_logging(verbose)
    options = {
        "addresses": _addresses(addresses),
        "namespace": namespace,
        "app_id": app_id,
        "host_name": host_name,
        "ring_implementation": ring,
    }
    security = (
        {
            "trust_anchors_file": trust_anchors_file,
            "sentry_address": sentry_address,
            "trust_domain": trust_domain,
            "control_plane_namespace": control_plane_namespace,
        }
        if tls
        else None
    )
    wait = _seconds(timeout)
    with errors_as_json(as_json):
        owner, version = asyncio.run(_locate(options, security, actor_type, actor_id, wait))
    if as_json:
        click.echo(
            json.dumps(
                {
                    "actor_type": actor_type,
                    "actor_id": actor_id,
                    "host": owner.host,
                    "app_id": owner.app_id,
                    "version": version,
                }
            )
        )
    else:
        click.echo(f"host={owner.host} app_id={owner.app_id} version={version}")


async def _credentials(security: dict[str, str], app_id: str, namespace: str, wait: float) -> Any:
    from daprplane.core.security.anchors import TrustAnchorsFile
    from daprplane.core.security.rotation import SvidSource
    from daprplane.core.security.sentry_client import SentryClient
    from daprplane.plugins.placement.client import MtlsCredentials

    anchors = TrustAnchorsFile(security["trust_anchors_file"])
    try:
        async with asyncio.timeout(wait):
            await anchors.start()
    except TimeoutError:
        raise ToolError(f"trust anchors file {security['trust_anchors_file']} not found") from None
    except ValueError as error:
        raise ToolError(str(error)) from None
    sentry = SentryClient(
        address=security["sentry_address"],
        anchors=anchors,
        app_id=app_id,
        namespace=namespace,
        control_plane_trust_domain=security["trust_domain"],
        control_plane_namespace=security["control_plane_namespace"],
    )
    try:
        svid = await sentry.sign()
    except Exception as error:
        raise ToolError(f"could not get an SVID from sentry: {error}") from None
    source = SvidSource(lambda: svid)
    await source.start()
    return MtlsCredentials(
        anchors,
        source,
        trust_domain=security["trust_domain"],
        control_plane_namespace=security["control_plane_namespace"],
    ), (anchors, source)


async def _locate(
    options: dict[str, Any],
    security: dict[str, str] | None,
    actor_type: str,
    actor_id: str,
    wait: float,
) -> tuple[Any, int]:
    from daprplane.plugins.placement.client import (
        ActorTypeNotFoundError,
        NoHostsError,
        PlacementClient,
    )

    closers: tuple[Any, ...] = ()
    credentials = None
    if security is not None:
        credentials, closers = await _credentials(
            security, options["app_id"], options["namespace"], wait
        )
    try:
        async with PlacementClient(credentials=credentials, **options) as client:
            try:
                tables = await client.wait_ready(timeout=wait)
            except TimeoutError:
                why = f" (last error: {client.last_error})" if client.last_error else ""
                raise ToolError(
                    f"timed out after {wait:g}s waiting for the placement table of namespace "
                    f"{options['namespace']!r} from {', '.join(options['addresses'])}{why}"
                ) from None
            try:
                return tables.locate(actor_type, actor_id), tables.version
            except ActorTypeNotFoundError as error:
                raise ToolError(str(error)) from None
            except NoHostsError:
                raise ToolError(
                    f"actor type {actor_type!r} has no hosts in placement table version "
                    f"{tables.version}"
                ) from None
    finally:
        for closer in closers:
            await closer.aclose()


# -- simulate ---------------------------------------------------------------------------------


def _host_list(text: str) -> list[str]:
    from daprplane.plugins.placement.scenarios import host_names, parse_count

    if "," not in text:
        try:
            count = parse_count(text)
        except ValueError:
            return [text.strip()]  # a single host name
        if count < 1:
            raise click.BadParameter("at least one host is needed", param_hint="--hosts")
        return host_names(count)
    names = [name.strip() for name in text.split(",") if name.strip()]
    if len(set(names)) != len(names):
        raise click.BadParameter("host names must be unique", param_hint="--hosts")
    return names


@click.command("simulate", context_settings=CONTEXT)
@click.option(
    "--hosts",
    default="10",
    show_default=True,
    help="Number of hosts (named 10.x.y.z:50002), or a comma list of host names.",
)
@click.option(
    "--replication-factor",
    default=100,
    show_default=True,
    type=click.IntRange(1),
    help="Virtual nodes per host.",
)
@click.option(
    "--actors",
    default="100k",
    show_default=True,
    help="Number of actors, IDs actor-0 … actor-<n-1> (10k, 10M and 1e7 work).",
)
@click.option(
    "--scenario",
    default="steady",
    show_default=True,
    help="steady | scale-out:K | scale-in:K | rolling-restart",
)
@click.option(
    "--ring", default="auto", type=RING_CHOICES, show_default=True, help="Ring implementation."
)
@click.option(
    "--chunk",
    default=1_000_000,
    show_default=True,
    type=click.IntRange(1),
    help="Actors looked up per lookup_many call.",
)
@click.option(
    "--plot",
    "plot_path",
    metavar="FILE.png",
    help=f"Draw per-host loads (needs matplotlib: {PLOT_EXTRA}).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--per-host", is_flag=True, help="With --json: include every host's load.")
def simulate(
    hosts: str,
    replication_factor: int,
    actors: str,
    scenario: str,
    ring: str,
    chunk: int,
    plot_path: str | None,
    as_json: bool,
    per_host: bool,
) -> None:
    """Simulate actor placement: per-host load spread and how many actors move.

    Every actor is looked up on the ring as daprd does (BLAKE2b of the actor ID). Scenarios:
    steady (one table), scale-out:K (K hosts join), scale-in:K (the last K leave),
    rolling-restart (each host leaves and returns with a new address, one table per change;
    costs 2 x hosts passes over the actors)."""
    # An offline calculation: the ring and the scenarios only, never gRPC or protobuf.
    from daprplane.plugins.placement import simulate as simulation
    from daprplane.plugins.placement.scenarios import parse_count, parse_scenario

    with errors_as_json(as_json):
        if plot_path is not None:
            try:
                import matplotlib  # noqa: F401
            except ImportError:
                raise ToolError(
                    f"--plot needs matplotlib, which is not installed: {PLOT_EXTRA}"
                ) from None
        try:
            plan = parse_scenario(scenario)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--scenario") from None
        try:
            count = parse_count(actors)
        except ValueError as error:
            raise click.BadParameter(str(error), param_hint="--actors") from None
        names = _host_list(hosts)
        try:
            # Importing the ring package selects an implementation, which fails on a broken one.
            from daprplane import ring as ring_package

            ring_impl = (
                ring_package.select() if ring == "auto" else ring_package.implementation(ring)
            )
        except ImportError as error:
            raise ToolError(f"the placement ring cannot be loaded: {error}") from None
        try:
            result = simulation.simulate(
                ring_impl,
                names,
                plan,
                actors=count,
                replication_factor=replication_factor,
                chunk=chunk,
            )
        except ValueError as error:
            raise ToolError(str(error)) from None
        if as_json:
            # The plot first, so that standard output holds one JSON document either way.
            _write_plot(simulation, result, plot_path)
            click.echo(json.dumps(result.as_dict(per_host=per_host), indent=2))
            return
        click.echo(simulation.render_text(result))
        if plot_path is not None:
            _write_plot(simulation, result, plot_path)
            click.echo(f"plot written to {plot_path}")


def _write_plot(simulation: Any, result: Any, plot_path: str | None) -> None:
    if plot_path is None:
        return
    try:
        simulation.plot(result, plot_path)
    except OSError as error:
        raise ToolError(f"cannot write {plot_path}: {error}") from None


COMMANDS = (locate, simulate)
