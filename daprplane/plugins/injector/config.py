"""The injector's environment (``pkg/injector/service/config.go``), with Dapr's defaults.

Dapr reads these with envconfig: a variable that is absent keeps its default, one that is present
is used as given (even empty), and a value that does not parse stops the injector at start.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from daprplane.plugins.injector.addresses import ServiceAddress, parse_service_address
from daprplane.plugins.injector.goparse import is_truthy, parse_go_int
from daprplane.plugins.injector.tolerations import (
    Toleration,
    TolerationsError,
    parse_tolerations_json,
)

log = logging.getLogger("dapr.injector")

DEFAULT_CLUSTER_DOMAIN = "cluster.local"
DEFAULT_TRUST_ANCHORS_FILE = "/var/run/dapr.io/tls/ca.crt"
DEFAULT_COMPONENT_SOCKETS_FOLDER = "/tmp/dapr-components-sockets"
DEFAULT_PLACEMENT = ServiceAddress("dapr-placement-server", 50005)
PLUGIN_FAILURE_ENV = "DAPRPLANE_INJECTOR_PLUGIN_FAILURE"


class ConfigError(Exception):
    """The environment cannot configure an injector; the message says which variable."""


class PluginFailurePolicy(Enum):
    """What a failing plugin does to the admission (``DAPRPLANE_INJECTOR_PLUGIN_FAILURE``)."""

    SKIP = "skip"  # log, count, and inject without that plugin's contribution
    DENY = "deny"  # reject the pod with a message naming the plugin


@dataclass(frozen=True)
class NamedService:
    """A service daprd is pointed at by name (``--actors-service name:address``)."""

    name: str
    address: ServiceAddress | None  # None only for the reminders name ``default``


@dataclass(frozen=True)
class InjectorConfig:
    sidecar_image: str
    namespace: str
    sidecar_image_pull_policy: str = "Always"
    kube_cluster_domain: str = DEFAULT_CLUSTER_DOMAIN
    allowed_service_accounts: str = ""
    allowed_service_accounts_prefix_names: str = ""
    ignore_entrypoint_tolerations: tuple[Toleration, ...] = ()
    actors_enabled: bool = True
    actors_service: NamedService = NamedService("placement", DEFAULT_PLACEMENT)
    reminders_service: NamedService | None = None
    run_as_non_root: bool = True
    run_as_user: int | None = None
    run_as_group: int | None = None
    read_only_root_filesystem: bool = True
    enable_k8s_downward_apis: bool = False
    drop_all_capabilities: bool = False
    native_sidecar_enabled: bool = False
    trust_anchors_file: str = DEFAULT_TRUST_ANCHORS_FILE
    control_plane_trust_domain: str = "cluster.local"
    sentry_address: str = ""
    sentry_token_file: str | None = None
    sentry_local_identity: str | None = None
    skip_uid_gid_check: bool = False
    component_sockets_folder: str = DEFAULT_COMPONENT_SOCKETS_FOLDER
    kube_config: str = ""
    plugin_failure_policy: PluginFailurePolicy = PluginFailurePolicy.SKIP

    @property
    def pull_policy(self) -> str:
        """The daprd ``imagePullPolicy``: anything Kubernetes does not know is IfNotPresent."""
        if self.sidecar_image_pull_policy in ("Always", "Never", "IfNotPresent"):
            return self.sidecar_image_pull_policy
        return "IfNotPresent"

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str], *, resolv_conf: str = "/etc/resolv.conf"
    ) -> InjectorConfig:
        """Read the environment; raise :class:`ConfigError` where Dapr would refuse to start.

        ``resolv_conf`` is read only when ``KUBE_CLUSTER_DOMAIN`` is empty or absent.
        """
        reader = _EnvReader(environ)
        if "SIDECAR_IMAGE" not in environ:
            raise ConfigError("required key SIDECAR_IMAGE missing value")
        if not environ.get("NAMESPACE"):
            raise ConfigError("NAMESPACE environment variable must be set")
        domain = environ.get("KUBE_CLUSTER_DOMAIN", "")
        return cls(
            sidecar_image=environ["SIDECAR_IMAGE"],
            namespace=environ["NAMESPACE"],
            sidecar_image_pull_policy=environ.get("SIDECAR_IMAGE_PULL_POLICY", "Always"),
            kube_cluster_domain=domain or cluster_domain_from_resolv_conf(resolv_conf),
            allowed_service_accounts=environ.get("ALLOWED_SERVICE_ACCOUNTS", ""),
            allowed_service_accounts_prefix_names=environ.get(
                "ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES", ""
            ),
            ignore_entrypoint_tolerations=_tolerations(
                environ.get("IGNORE_ENTRYPOINT_TOLERATIONS", "")
            ),
            actors_enabled=reader.truthy("ACTORS_ENABLED", default=True),
            actors_service=_actors_service(environ),
            reminders_service=_reminders_service(environ),
            run_as_non_root=reader.truthy("SIDECAR_RUN_AS_NON_ROOT", default=True),
            run_as_user=reader.integer("SIDECAR_RUN_AS_USER"),
            run_as_group=reader.integer("SIDECAR_RUN_AS_GROUP"),
            read_only_root_filesystem=reader.truthy(
                "SIDECAR_READ_ONLY_ROOT_FILESYSTEM", default=True
            ),
            enable_k8s_downward_apis=reader.truthy("ENABLE_K8S_DOWNWARD_APIS"),
            drop_all_capabilities=reader.truthy("SIDECAR_DROP_ALL_CAPABILITIES"),
            native_sidecar_enabled=reader.truthy("NATIVE_SIDECAR_ENABLED"),
            trust_anchors_file=environ.get("DAPR_TRUST_ANCHORS_FILE", DEFAULT_TRUST_ANCHORS_FILE),
            control_plane_trust_domain=environ.get(
                "DAPR_CONTROL_PLANE_TRUST_DOMAIN", "cluster.local"
            ),
            sentry_address=environ.get("DAPR_SENTRY_ADDRESS", ""),
            sentry_token_file=environ.get("DAPR_SENTRY_TOKEN_FILE"),
            sentry_local_identity=environ.get("SENTRY_LOCAL_IDENTITY"),
            skip_uid_gid_check=environ.get("DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK") == "true",
            component_sockets_folder=environ.get("DAPR_COMPONENT_SOCKETS_FOLDER")
            or DEFAULT_COMPONENT_SOCKETS_FOLDER,
            kube_config=environ.get("KUBE_CONFIG", ""),
            plugin_failure_policy=_plugin_failure_policy(environ),
        )


def cluster_domain_from_resolv_conf(path: str) -> str:
    """Dapr's rule: the lexicographically first ``search`` domain, else ``cluster.local``."""
    try:
        with open(path, encoding="utf-8", errors="replace") as file:
            text = file.read(1 << 20)
    except OSError as error:
        log.error(
            "Failed to get clusterDomain err:%s, will use default as %s",
            error,
            DEFAULT_CLUSTER_DOMAIN,
        )
        return DEFAULT_CLUSTER_DOMAIN
    domains: list[str] = []
    for line in text.split("\n"):
        fields = line.split()
        if fields and fields[0] == "search":
            domains = fields[1:]
    domains.sort()
    return domains[0] if domains else DEFAULT_CLUSTER_DOMAIN


class _EnvReader:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ

    def truthy(self, name: str, *, default: bool = False) -> bool:
        value = self.environ.get(name, "")
        return default if value == "" else is_truthy(value)

    def integer(self, name: str) -> int | None:
        value = self.environ.get(name, "")
        if value == "":
            return None
        number = parse_go_int(value)
        if number is None:
            raise ConfigError(f"{name}: invalid integer {value!r}")
        return number


def _tolerations(text: str) -> tuple[Toleration, ...]:
    if not text:
        return ()
    try:
        return parse_tolerations_json(text)
    except TolerationsError as error:
        log.warning("Couldn't parse entrypoint tolerations (%s): %s", text, error)
        return ()


def _actors_service(environ: Mapping[str, str]) -> NamedService:
    name = environ.get("ACTORS_SERVICE_NAME", "")
    if not name:
        return NamedService("placement", DEFAULT_PLACEMENT)
    return NamedService(name, _address(environ, "ACTORS_SERVICE_ADDRESS"))


def _reminders_service(environ: Mapping[str, str]) -> NamedService | None:
    name = environ.get("REMINDERS_SERVICE_NAME", "")
    if not name:
        return None
    if name == "default":
        return NamedService(name, None)  # the built-in reminders: no address to parse
    return NamedService(name, _address(environ, "REMINDERS_SERVICE_ADDRESS"))


def _address(environ: Mapping[str, str], variable: str) -> ServiceAddress:
    try:
        return parse_service_address(environ.get(variable, ""))
    except ValueError as error:
        raise ConfigError(f"{variable}: {error}") from error


def _plugin_failure_policy(environ: Mapping[str, str]) -> PluginFailurePolicy:
    value = environ.get(PLUGIN_FAILURE_ENV, "").strip().lower() or "skip"
    try:
        return PluginFailurePolicy(value)
    except ValueError:
        raise ConfigError(
            f"{PLUGIN_FAILURE_ENV} must be 'skip' or 'deny', not {environ[PLUGIN_FAILURE_ENV]!r}"
        ) from None
