"""What ``daprplane up`` starts: each component's command line, and what a sidecar then needs.

The components run with the launchers' own flags, exactly as a user would type them; ``up`` only
chooses the values. Trust domain and namespace default to what ``daprd`` assumes in self-hosted
mode (``localhost``, ``default``), so a sidecar needs no control-plane flags beyond addresses.
"""

from __future__ import annotations

import dataclasses
import shlex
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from daprplane.core.local.layout import StateDir

#: Dapr's self-hosted defaults: daprd looks for sentry and placement here unless told otherwise.
DEFAULT_SENTRY_PORT = 50001
DEFAULT_PLACEMENT_PORT = 50005
DEFAULT_TRUST_DOMAIN = "localhost"
DEFAULT_NAMESPACE = "default"
#: With a cluster: Dapr's chart's defaults, which the injector writes into every sidecar.
CLUSTER_TRUST_DOMAIN = "cluster.local"
CLUSTER_NAMESPACE = "dapr-system"
DEFAULT_OPERATOR_PORT = 6500
DEFAULT_INJECTOR_PORT = 4000
DEFAULT_SIDECAR_IMAGE = "ghcr.io/dapr/daprd:1.18.3"


@dataclass(frozen=True)
class Settings:
    state: StateDir
    listen_address: str = "127.0.0.1"
    sentry_port: int = DEFAULT_SENTRY_PORT
    placement_port: int = DEFAULT_PLACEMENT_PORT
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    namespace: str = DEFAULT_NAMESPACE
    log_level: str = "info"
    #: With a kubeconfig, all four components run against that cluster.
    kubeconfig: str | None = None
    #: The name under which the API server reaches this machine (the injector's webhook).
    webhook_host: str = "localhost"
    operator_port: int = DEFAULT_OPERATOR_PORT
    injector_port: int = DEFAULT_INJECTOR_PORT
    sidecar_image: str = DEFAULT_SIDECAR_IMAGE

    @property
    def mode(self) -> str:
        return "kubernetes" if self.kubeconfig else "standalone"

    def ports(self) -> dict[str, int]:
        """The fixed ports, by the component that listens on them."""
        ports = {"sentry": self.sentry_port, "placement": self.placement_port}
        if self.kubeconfig:
            ports |= {"operator": self.operator_port, "injector": self.injector_port}
        return ports


@dataclass(frozen=True)
class ComponentProcess:
    """One component as a child process: its command line and where it answers."""

    name: str
    argv: tuple[str, ...]
    environ: Mapping[str, str]
    address: str  # the gRPC address sidecars dial
    healthz_port: int
    metrics_port: int
    extras: Mapping[str, str] = field(default_factory=dict)  # other endpoints worth printing


def free_port(host: str) -> int:
    """A port nothing listens on now (the kernel's choice); the child binds it a moment later."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _launcher(component: str) -> list[str]:
    return [sys.executable, "-m", "daprplane", component]


def _served_on(host: str, port: int, healthz: int, metrics: int) -> list[str]:
    return [
        f"--port={port}",
        f"--listen-address={host}",
        f"--healthz-port={healthz}",
        f"--healthz-listen-address={host}",
        f"--metrics-port={metrics}",
        f"--metrics-listen-address={host}",
    ]


def _component(
    settings: Settings,
    name: str,
    port: int,
    flags: list[str],
    environ: Mapping[str, str],
    extras: Mapping[str, str] | None = None,
) -> ComponentProcess:
    host = settings.listen_address
    healthz, metrics = free_port(host), free_port(host)
    return ComponentProcess(
        name=name,
        argv=(
            *_launcher(name),
            *flags,
            f"--log-level={settings.log_level}",
            *_served_on(host, port, healthz, metrics),
        ),
        environ=environ,
        address=f"{host}:{port}",
        healthz_port=healthz,
        metrics_port=metrics,
        extras=dict(extras or {}),
    )


def _cluster_environ(settings: Settings, token: Path | None = None) -> dict[str, str]:
    assert settings.kubeconfig
    environ = {
        "NAMESPACE": settings.namespace,
        "KUBECONFIG": settings.kubeconfig,
        # The check keeps containers from running as root; these are not containers.
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
    }
    if token is not None:
        environ["DAPR_SENTRY_TOKEN_FILE"] = str(token)
    return environ


def cluster_sentry(settings: Settings) -> ComponentProcess:
    """Sentry in kubernetes mode: its CA in the namespace's ``dapr-trust-bundle``."""
    flags = ["--mode=kubernetes", f"--trust-domain={settings.trust_domain}"]
    return _component(settings, "sentry", settings.sentry_port, flags, _cluster_environ(settings))


def _with_tables(placement: ComponentProcess, host: str) -> ComponentProcess:
    """``placement`` with its ``/placement/state`` URL (served with ``--metadata-enabled``)."""
    tables = f"http://{host}:{placement.healthz_port}/placement/state"
    return dataclasses.replace(placement, extras={**placement.extras, "tables": tables})


def _raft_entry(host: str) -> str:
    # Its raft port, on a free port rather than the default 8201 another may hold.
    return f"--initial-cluster=dapr-placement-0={host}:{free_port(host)}"


def cluster_components(
    settings: Settings, sentry: ComponentProcess, anchors: Path, tokens: Mapping[str, Path]
) -> list[ComponentProcess]:
    """Placement, operator and injector in kubernetes mode, with identities from ``sentry``."""
    identity = [f"--trust-anchors-file={anchors}"]
    placement = _component(
        settings,
        "placement",
        settings.placement_port,
        [
            "--mode=kubernetes",
            "--tls-enabled",
            f"--trust-domain={settings.trust_domain}",
            f"--sentry-address={sentry.address}",
            "--metadata-enabled",
            _raft_entry(settings.listen_address),
            *identity,
        ],
        _cluster_environ(settings, tokens["placement"]),
    )
    operator = _component(
        settings,
        "operator",
        settings.operator_port,
        [
            f"--kubeconfig={settings.kubeconfig}",
            f"--webhook-server-port={free_port(settings.listen_address)}",
            f"--webhook-server-listen-address={settings.listen_address}",
            *identity,
        ],
        _cluster_environ(settings, tokens["operator"]),
    )
    injector = _component(
        settings,
        "injector",
        settings.injector_port,
        [f"--kubeconfig={settings.kubeconfig}"],
        {
            **_cluster_environ(settings, tokens["injector"]),
            "DAPR_TRUST_ANCHORS_FILE": str(anchors),
            "DAPR_CONTROL_PLANE_TRUST_DOMAIN": settings.trust_domain,
            "DAPR_SENTRY_ADDRESS": sentry.address,
            "SIDECAR_IMAGE": settings.sidecar_image,
        },
        {"webhook": f"https://{settings.webhook_host}:{settings.injector_port}/mutate"},
    )
    return [placement, operator, injector]


def standalone(settings: Settings) -> list[ComponentProcess]:
    """Sentry with its CA in the state directory, then placement with mTLS through it."""
    host, state = settings.listen_address, settings.state
    environ = {"NAMESPACE": settings.namespace}
    trust_domain = f"--trust-domain={settings.trust_domain}"
    sentry = _component(
        settings,
        "sentry",
        settings.sentry_port,
        [
            "--mode=standalone",
            f"--config={state.sentry_config}",
            f"--issuer-credentials={state.certs}",
            trust_domain,
        ],
        environ,
    )
    placement = _component(
        settings,
        "placement",
        settings.placement_port,
        [
            "--mode=standalone",
            "--tls-enabled",
            f"--trust-anchors-file={state.trust_anchors}",
            f"--sentry-address={sentry.address}",
            "--metadata-enabled",
            _raft_entry(host),
            trust_domain,
        ],
        environ,
    )
    return [sentry, _with_tables(placement, host)]


@dataclass(frozen=True)
class SidecarHints:
    """The ``daprd`` flags and environment a self-hosted sidecar needs to use this control plane."""

    flags: tuple[str, ...]
    environ: Mapping[str, str]

    def shell_lines(self, app_id: str = "myapp") -> list[str]:
        """Lines a user can paste into a POSIX shell."""
        lines = [f"export {name}={value}" for name, value in self.environ.items()]
        command = ["daprd", f"--app-id {shlex.quote(app_id)}", *self.flags]
        lines.append(" \\\n    ".join(command))
        return lines


def sidecar_hints(settings: Settings, components: list[ComponentProcess]) -> SidecarHints:
    by_name = {component.name: component for component in components}
    flags = [
        "--enable-mtls",
        f"--sentry-address {by_name['sentry'].address}",
        f"--placement-host-address {by_name['placement'].address}",
    ]
    # daprd verifies sentry's and placement's SPIFFE IDs in its own defaults' trust domain and
    # namespace; only different values need saying.
    if settings.trust_domain != DEFAULT_TRUST_DOMAIN:
        flags.append(f"--control-plane-trust-domain {shlex.quote(settings.trust_domain)}")
    if settings.namespace != DEFAULT_NAMESPACE:
        flags.append(f"--control-plane-namespace {shlex.quote(settings.namespace)}")
    anchors = shlex.quote(str(settings.state.trust_anchors))
    return SidecarHints(tuple(flags), {"DAPR_TRUST_ANCHORS": f'"$(cat {anchors})"'})
