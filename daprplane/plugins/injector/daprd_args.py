"""The daprd command line, in the exact order Dapr's injector writes it (§4.1 of the contract).

daprd does not care about flag order, but the order is visible in every injected pod and in the
tests people write against them, so it is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from daprplane.plugins.injector.addresses import ControlPlaneAddresses
from daprplane.plugins.injector.annotations import SidecarSettings

HTTP_PORT = 3500
PUBLIC_PORT = 3501
DAPRD_BINARY = "/daprd"
UDS_MOUNT_PATH = "/var/run/dapr-sockets"


@dataclass(frozen=True)
class ArgsContext:
    """What the command line needs beyond the annotations."""

    app_id: str
    addresses: ControlPlaneAddresses
    mtls_enabled: bool = True
    scheduler_enabled: bool = True


def daprd_flags(settings: SidecarSettings, context: ArgsContext) -> list[str]:
    """Every daprd flag, without the binary name or a debugger in front."""
    s, addresses = settings, context.addresses
    args = [
        "--dapr-http-port", str(HTTP_PORT),
        "--dapr-grpc-port", str(s.grpc_port),
        "--dapr-internal-grpc-port", str(s.internal_grpc_port),
        "--dapr-listen-addresses", s.listen_addresses,
        "--dapr-public-port", str(PUBLIC_PORT),
        "--app-id", context.app_id,
        "--app-protocol", s.app_protocol,
        "--log-level", s.log_level,
        "--dapr-graceful-shutdown-seconds", str(s.graceful_shutdown_seconds),
        "--mode", "kubernetes",
    ]  # fmt: skip
    args += _optional("--control-plane-address", addresses.operator)
    args += _optional("--sentry-address", addresses.sentry)
    if s.app_port > 0:
        args += ["--app-port", str(s.app_port)]
    if s.enable_metrics:
        args += ["--enable-metrics", "--metrics-port", str(s.metrics_port)]
    else:
        # Dapr writes nothing here, and daprd's own default (metrics on) then serves metrics
        # on 9090 for a pod that asked for none.
        args += ["--enable-metrics=false"]
    args += _optional("--config", s.config)
    args += _optional("--app-channel-address", s.app_channel_address)
    args += _placement_flags(s, addresses)
    args += _optional("--reminders-service", addresses.reminders_service)
    args += _optional("--sentry-request-jwt-audiences", s.sentry_request_jwt_audiences)
    if s.enable_api_logging is not None:
        args.append(f"--enable-api-logging={'true' if s.enable_api_logging else 'false'}")
    if s.disable_builtin_k8s_secret_store:
        args.append("--disable-builtin-k8s-secret-store")
    if s.enable_app_health_check:
        args += [
            "--enable-app-health-check",
            "--app-health-check-path", s.app_health_check_path,
            "--app-health-probe-interval", str(s.app_health_probe_interval),
            "--app-health-probe-timeout", str(s.app_health_probe_timeout),
            "--app-health-threshold", str(s.app_health_threshold),
        ]  # fmt: skip
    args += _present("--app-binding-options-timeout", s.app_binding_options_timeout)
    args += _switch("--log-as-json", s.log_as_json)
    args += _switch("--enable-profiling", s.enable_profiling)
    args += _switch("--enable-mtls", context.mtls_enabled)
    args += _switch("--app-ssl", s.app_ssl)
    args += _present("--app-max-concurrency", s.app_max_concurrency)
    args += _present("--dapr-http-max-request-size", s.http_max_request_size)
    args += _optional("--max-body-size", s.max_body_size)
    args += _present("--dapr-http-read-buffer-size", s.http_read_buffer_size)
    args += _optional("--read-buffer-size", s.read_buffer_size)
    if s.unix_domain_socket_path:
        args += ["--unix-domain-socket", UDS_MOUNT_PATH]
    args += _present("--dapr-block-shutdown-duration", s.block_shutdown_duration)
    args += _present("--actors-disseminate-timeout", s.actors_disseminate_timeout)
    if s.scheduler_host_address is not None:
        # Present, even empty, the annotation wins: an empty value turns the scheduler off.
        args += ["--scheduler-host-address", s.scheduler_host_address]
    elif context.scheduler_enabled:
        args += ["--scheduler-host-address", addresses.scheduler]
    args += _present("--disable-init-endpoints", s.disable_init_endpoints)
    return args


def debug_wrapper(debug_port: int) -> list[str]:
    """The delve prefix of ``dapr.io/enable-debug``; daprd's flags follow the ``--``."""
    return [
        "/dlv", "--listen", f":{debug_port}", "--accept-multiclient", "--headless=true", "--log",
        "--api-version=2", "exec", DAPRD_BINARY, "--",
    ]  # fmt: skip


def _placement_flags(s: SidecarSettings, addresses: ControlPlaneAddresses) -> list[str]:
    placement = addresses.placement
    if s.placement_host_address is not None:
        placement = s.placement_host_address  # the annotation always wins, even empty
    elif addresses.placement is None and addresses.actors_service is not None:
        return ["--actors-service", addresses.actors_service]
    if placement and placement.strip():
        return ["--placement-host-address", placement]
    return []


def _optional(flag: str, value: str | None) -> list[str]:
    return [flag, value] if value else []


def _present(flag: str, value: str | int | None) -> list[str]:
    return [] if value is None else [flag, str(value)]


def _switch(flag: str, on: bool) -> list[str]:
    return [flag] if on else []
