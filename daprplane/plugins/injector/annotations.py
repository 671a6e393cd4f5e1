"""The ``dapr.io/*`` pod annotations and how each one is read (Dapr's ``annotations.go``).

Every annotation is applied only when present; a present-but-empty value counts. Booleans use
IsTruthy; integers use ParseInt and a value that does not parse keeps the default (Dapr logs a
warning and goes on). "Optional" settings are ``None`` unless present (and, for integers,
parseable). The placement and scheduler addresses are stripped of quotes and spaces first, so
``dapr.io/placement-host-address: '""'`` means "no placement".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from daprplane.plugins.injector.goparse import is_truthy, parse_go_int

log = logging.getLogger("dapr.injector")

PREFIX = "dapr.io/"
# The annotations the injector asks about before it reads the rest (see podsettings.py).
ENABLED = "dapr.io/enabled"
APP_ID = "dapr.io/app-id"
INJECT_PLUGGABLE_COMPONENTS = "dapr.io/inject-pluggable-components"


@dataclass(frozen=True)
class SidecarSettings:
    """Everything the pod's annotations say about its sidecar, defaults filled in."""

    enabled: bool = False
    app_id: str = ""
    app_port: int = 0
    config: str = ""
    app_protocol: str = "http"
    app_ssl: bool = False
    enable_profiling: bool = False
    log_level: str = "info"
    log_as_json: bool = False
    api_token_secret: str = ""
    app_token_secret: str = ""
    app_max_concurrency: int | None = None
    enable_metrics: bool = True
    metrics_port: int = 9090
    enable_debug: bool = False
    debug_port: int = 40000
    env: str = ""
    env_from_secret: str = ""
    grpc_port: int = 50001
    internal_grpc_port: int = 50002
    cpu_request: str = ""
    cpu_limit: str = ""
    memory_request: str = ""
    memory_limit: str = ""
    listen_addresses: str = "[::1],127.0.0.1"
    liveness_delay: int = 180
    liveness_timeout: int = 3
    liveness_period: int = 10
    liveness_threshold: int = 5
    readiness_delay: int = 1
    readiness_timeout: int = 1
    readiness_period: int = 1
    readiness_threshold: int = 5
    image: str = ""
    seccomp_profile_type: str = ""
    http_max_request_size: int | None = None
    max_body_size: str = ""
    http_read_buffer_size: int | None = None
    read_buffer_size: str = ""
    graceful_shutdown_seconds: int = -1
    block_shutdown_duration: str | None = None
    enable_api_logging: bool | None = None
    unix_domain_socket_path: str = ""
    volume_mounts: str = ""
    volume_mounts_rw: str = ""
    disable_builtin_k8s_secret_store: bool = False
    enable_app_health_check: bool = False
    app_health_check_path: str = "/healthz"
    app_health_probe_interval: int = 5
    app_health_probe_timeout: int = 500
    app_health_threshold: int = 3
    app_binding_options_timeout: str | None = None
    placement_host_address: str | None = None
    actors_disseminate_timeout: str | None = None
    scheduler_host_address: str | None = None
    pluggable_components: str = ""
    pluggable_components_sockets_folder: str = ""
    inject_pluggable_components: bool = False
    app_channel_address: str = ""
    sentry_request_jwt_audiences: str = ""
    sidecar_svc_annotations: str = ""
    disable_init_endpoints: str | None = None
    enable_native_sidecar: bool = False


def _string(value: str) -> str:
    return value


def _address(value: str) -> str:
    return value.strip(" \t\n\v\f\r\"'")


def _int32(value: str) -> int | None:
    return parse_go_int(value, 32)


def _int64(value: str) -> int | None:
    return parse_go_int(value, 64)


# annotation -> (field, reader). A reader returning None leaves the default in place.
_READERS: dict[str, tuple[str, Callable[[str], Any]]] = {
    ENABLED: ("enabled", is_truthy),
    APP_ID: ("app_id", _string),
    "dapr.io/app-port": ("app_port", _int32),
    "dapr.io/config": ("config", _string),
    "dapr.io/app-protocol": ("app_protocol", _string),
    "dapr.io/app-ssl": ("app_ssl", is_truthy),
    "dapr.io/enable-profiling": ("enable_profiling", is_truthy),
    "dapr.io/log-level": ("log_level", _string),
    "dapr.io/log-as-json": ("log_as_json", is_truthy),
    "dapr.io/api-token-secret": ("api_token_secret", _string),
    "dapr.io/app-token-secret": ("app_token_secret", _string),
    "dapr.io/app-max-concurrency": ("app_max_concurrency", _int64),
    "dapr.io/enable-metrics": ("enable_metrics", is_truthy),
    "dapr.io/metrics-port": ("metrics_port", _int32),
    "dapr.io/enable-debug": ("enable_debug", is_truthy),
    "dapr.io/debug-port": ("debug_port", _int32),
    "dapr.io/env": ("env", _string),
    "dapr.io/env-from-secret": ("env_from_secret", _string),
    "dapr.io/grpc-port": ("grpc_port", _int32),
    "dapr.io/internal-grpc-port": ("internal_grpc_port", _int32),
    "dapr.io/sidecar-cpu-request": ("cpu_request", _string),
    "dapr.io/sidecar-cpu-limit": ("cpu_limit", _string),
    "dapr.io/sidecar-memory-request": ("memory_request", _string),
    "dapr.io/sidecar-memory-limit": ("memory_limit", _string),
    "dapr.io/sidecar-listen-addresses": ("listen_addresses", _string),
    "dapr.io/sidecar-liveness-probe-delay-seconds": ("liveness_delay", _int32),
    "dapr.io/sidecar-liveness-probe-timeout-seconds": ("liveness_timeout", _int32),
    "dapr.io/sidecar-liveness-probe-period-seconds": ("liveness_period", _int32),
    "dapr.io/sidecar-liveness-probe-threshold": ("liveness_threshold", _int32),
    "dapr.io/sidecar-readiness-probe-delay-seconds": ("readiness_delay", _int32),
    "dapr.io/sidecar-readiness-probe-timeout-seconds": ("readiness_timeout", _int32),
    "dapr.io/sidecar-readiness-probe-period-seconds": ("readiness_period", _int32),
    "dapr.io/sidecar-readiness-probe-threshold": ("readiness_threshold", _int32),
    "dapr.io/sidecar-image": ("image", _string),
    "dapr.io/sidecar-seccomp-profile-type": ("seccomp_profile_type", _string),
    "dapr.io/http-max-request-size": ("http_max_request_size", _int64),
    "dapr.io/max-body-size": ("max_body_size", _string),
    "dapr.io/http-read-buffer-size": ("http_read_buffer_size", _int64),
    "dapr.io/read-buffer-size": ("read_buffer_size", _string),
    "dapr.io/graceful-shutdown-seconds": ("graceful_shutdown_seconds", _int64),
    "dapr.io/block-shutdown-duration": ("block_shutdown_duration", _string),
    "dapr.io/enable-api-logging": ("enable_api_logging", is_truthy),
    "dapr.io/unix-domain-socket-path": ("unix_domain_socket_path", _string),
    "dapr.io/volume-mounts": ("volume_mounts", _string),
    "dapr.io/volume-mounts-rw": ("volume_mounts_rw", _string),
    "dapr.io/disable-builtin-k8s-secret-store": ("disable_builtin_k8s_secret_store", is_truthy),
    "dapr.io/enable-app-health-check": ("enable_app_health_check", is_truthy),
    "dapr.io/app-health-check-path": ("app_health_check_path", _string),
    "dapr.io/app-health-probe-interval": ("app_health_probe_interval", _int32),
    "dapr.io/app-health-probe-timeout": ("app_health_probe_timeout", _int32),
    "dapr.io/app-health-threshold": ("app_health_threshold", _int32),
    "dapr.io/app-binding-options-timeout": ("app_binding_options_timeout", _string),
    "dapr.io/placement-host-address": ("placement_host_address", _address),
    "dapr.io/actors-disseminate-timeout": ("actors_disseminate_timeout", _string),
    "dapr.io/scheduler-host-address": ("scheduler_host_address", _address),
    "dapr.io/pluggable-components": ("pluggable_components", _string),
    "dapr.io/pluggable-components-sockets-folder": (
        "pluggable_components_sockets_folder",
        _string,
    ),
    INJECT_PLUGGABLE_COMPONENTS: ("inject_pluggable_components", is_truthy),
    "dapr.io/app-channel-address": ("app_channel_address", _string),
    "dapr.io/sentry-request-jwt-audiences": ("sentry_request_jwt_audiences", _string),
    "dapr.io/sidecar-svc-annotations": ("sidecar_svc_annotations", _string),
    "dapr.io/disable-init-endpoints": ("disable_init_endpoints", _string),
    "dapr.io/enable-native-sidecar": ("enable_native_sidecar", is_truthy),
}

#: Every annotation the injector reads.
ANNOTATIONS: tuple[str, ...] = tuple(_READERS)
_ANNOTATION_OF_FIELD = {field: annotation for annotation, (field, _) in _READERS.items()}


def annotation_of(field: str) -> str:
    """The annotation that sets a :class:`SidecarSettings` field, for messages that name it."""
    return _ANNOTATION_OF_FIELD[field]


def read_settings(
    annotations: Mapping[str, str],
    *,
    native_sidecar_default: bool = False,
    sockets_folder_default: str = "",
) -> SidecarSettings:
    """Read the pod's annotations over the defaults (two of which come from the injector env)."""
    values: dict[str, Any] = {
        "enable_native_sidecar": native_sidecar_default,
        "pluggable_components_sockets_folder": sockets_folder_default,
    }
    for annotation, (field, reader) in _READERS.items():
        raw = annotations.get(annotation)
        if raw is None:
            continue
        value = reader(raw)
        if value is None:
            log.warning("Failed to parse annotation %s=%r; using the default", annotation, raw)
            continue
        values[field] = value
    return SidecarSettings(**values)


def settings_fields() -> tuple[str, ...]:
    return tuple(field.name for field in dataclasses.fields(SidecarSettings))
