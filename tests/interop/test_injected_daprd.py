"""What daprplane's injector writes into a pod is a ``daprd`` 1.18.3 command line daprd accepts.

A handful of realistic annotated pods, between them using every annotation the injector reads,
are patched in process (``build_patch``, as the webhook does), the patch is applied, and the
``daprd`` container that results is started as a real daprd 1.18.3 process, mapped onto this
machine as :mod:`tests.interop._injected` describes (free loopback ports instead of the pod's
fixed ones, loopback stand-ins for control-plane Services, sandbox directories for volumes,
literal values for ``valueFrom``). The control plane it meets is daprplane's own sentry, in a
non-default trust domain and namespace, so daprd's check of sentry's SPIFFE ID depends on the
``DAPR_CONTROLPLANE_*`` env and the trust anchors the injector wrote.

Two runs per pod:

- **kubernetes mode, the injected command line as written**: daprd parses every flag and value,
  fetches its identity from sentry, and dials the operator at ``--control-plane-address`` (a
  port that accepts and never answers, standing in for the operator no cluster provides). That
  dial is the proof: daprd checks its flags, its options and its app protocol, app port and init
  endpoints before it; then SIGTERM, and daprd must exit by itself.
- **standalone replay**: kubernetes mode stops at the operator, before daprd binds its ports,
  so the same command line is run again with ``--mode standalone``, ``--config`` naming a file
  that holds the Configuration of that name, and ``--app-port`` on a port nothing serves. daprd
  then binds everything the container declares: the probes' port and path, the API on every
  listen address (or the Unix sockets), the internal gRPC and metrics ports, and dials the
  placement and scheduler addresses the injector wrote.

A negative control shows the checks can fail: the same launch with a made-up flag, or a value
daprd cannot parse, is refused with daprd's own message.

One known gap is kept as a strict xfail, where the injector writes what Dapr's injector writes
and daprd 1.18.3 does something else with it: with an actors service not named ``placement`` the
injector writes ``--actors-service <name>:<address>``, a deprecated flag daprd still reads and
then dials whole, as if it were a placement address. (For ``dapr.io/enable-metrics: "false"``
Dapr writes no metrics flag and daprd serves metrics anyway; daprplane writes
``--enable-metrics=false``, and the test below proves daprd then serves none.)
"""

from __future__ import annotations

import copy
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from daprplane.plugins.injector.annotations import ANNOTATIONS
from daprplane.plugins.injector.config import InjectorConfig
from daprplane.plugins.injector.patcher import build_patch
from tests.integration.launchers import free_port
from tests.interop._injected import (
    ConnectionRecorder,
    DaprdLaunch,
    DaprdOutput,
    Sandbox,
    apply_json_patch,
    binary_for_daprd_user,
    daprd_argv,
    daprd_container,
    declared_ports,
    flag_value,
    parse_output,
    plan_launch,
    start_daprd,
    with_flag_value,
)
from tests.interop.conftest import (
    LoggedProcess,
    Processes,
    daprd_build_allowance,
    start_sentry,
    wait_until,
)
from tests.unit.injector.examples import nodeapp_pod

pytestmark = [
    pytest.mark.slow,
    pytest.mark.interop,
    pytest.mark.timeout(180 + daprd_build_allowance()),
]

# Non-default on purpose: daprd accepts sentry only if the injected env names both correctly.
TRUST_DOMAIN = "injected.example"
CONTROL_PLANE_NAMESPACE = "dapr-control"
APP_NAMESPACE = "shop"

STARTUP_TIMEOUT = 30.0
REFUSAL_TIMEOUT = 15.0

AS_USER = "Running in Kubernetes environment as user "
OPERATOR_DIALLED = "Initializing the operator client"
IDENTITY_FETCHED = "Security is initialized successfully"
SIGNAL_RECEIVED = "Received signal 'terminated'"
SHUT_DOWN = "Daprd shutdown gracefully"
MALFORMED_ADDRESS = "too many colons in address"

BASE_INJECTOR_ENV = {
    "NAMESPACE": CONTROL_PLANE_NAMESPACE,
    "KUBE_CLUSTER_DOMAIN": "cluster.local",
    "DAPR_CONTROL_PLANE_TRUST_DOMAIN": TRUST_DOMAIN,
    "SIDECAR_IMAGE": "ghcr.io/dapr/daprd:1.18.3",
    "SIDECAR_IMAGE_PULL_POLICY": "IfNotPresent",
    "ACTORS_ENABLED": "true",
    "ACTORS_SERVICE_NAME": "placement",
    "ACTORS_SERVICE_ADDRESS": "dapr-placement-server:50005",
}

# Where daprd in kubernetes mode looks for a token to present to sentry (fixed paths).
KUBERNETES_TOKEN_FILES = (
    Path("/var/run/secrets/dapr.io/sentrytoken/token"),
    Path("/var/run/secrets/kubernetes.io/serviceaccount/token"),
)

# The Secrets of the app namespace, as the kubelet would read them for secretKeyRef.
SECRETS = {
    "dapr-api-token": {"token": "api-token-0f6c2b"},
    "app-api-token": {"token": "app-token-9d41e7"},
    "orders-db": {"password": "orders-db-password"},
    "shared-key": {"shared-key": "shared-key-value"},
}

VIRTUAL_NODE_TOLERATION = {
    "key": "virtual-kubelet.io/provider",
    "operator": "Exists",
    "effect": "NoSchedule",
}


@dataclass(frozen=True)
class Case:
    """One annotated pod, the injector it meets, and what daprd should say about it."""

    name: str
    pod: dict[str, Any]
    injector_env: dict[str, str] = field(default_factory=dict)
    components: tuple[dict[str, Any], ...] = ()
    # Flags of this command line that daprd 1.18.3 accepts but announces as deprecated.
    deprecated: frozenset[str] = frozenset()


def _pod(
    name: str,
    annotations: dict[str, str],
    containers: list[dict[str, Any]],
    **spec: Any,
) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": APP_NAMESPACE,
            "labels": {"app": name.split("-")[0]},
            "annotations": {"dapr.io/enabled": "true", **annotations},
        },
        "spec": {"serviceAccountName": name.split("-")[0], "containers": containers, **spec},
    }


# An HTTP app that sets nearly every knob, with the current names for sizes.
ORDERS = Case(
    "orders-http-text-logs",
    _pod(
        "orders-6f7b9c-x2k4p",
        {
            "dapr.io/app-id": "orders",
            "dapr.io/app-port": "8080",
            "dapr.io/config": "tracing",
            "dapr.io/app-protocol": "http",
            "dapr.io/enable-profiling": "true",
            "dapr.io/log-level": "debug",
            "dapr.io/log-as-json": "false",
            "dapr.io/api-token-secret": "dapr-api-token",
            "dapr.io/app-token-secret": "app-api-token",
            "dapr.io/app-max-concurrency": "10",
            "dapr.io/enable-metrics": "true",
            "dapr.io/metrics-port": "9095",
            "dapr.io/env": (
                "LOG_STYLE=plain,OTEL_RESOURCE_ATTRIBUTES=service.name=orders,service.namespace=shop"
            ),
            "dapr.io/env-from-secret": "DB_PASSWORD=orders-db:password,SHARED_KEY=shared-key",
            "dapr.io/grpc-port": "50011",
            "dapr.io/internal-grpc-port": "50012",
            "dapr.io/sidecar-cpu-request": "100m",
            "dapr.io/sidecar-cpu-limit": "1",
            "dapr.io/sidecar-memory-request": "64Mi",
            "dapr.io/sidecar-memory-limit": "256Mi",
            "dapr.io/sidecar-listen-addresses": "127.0.0.1",
            "dapr.io/sidecar-liveness-probe-delay-seconds": "10",
            "dapr.io/sidecar-liveness-probe-timeout-seconds": "2",
            "dapr.io/sidecar-liveness-probe-period-seconds": "15",
            "dapr.io/sidecar-liveness-probe-threshold": "4",
            "dapr.io/sidecar-readiness-probe-delay-seconds": "2",
            "dapr.io/sidecar-readiness-probe-timeout-seconds": "2",
            "dapr.io/sidecar-readiness-probe-period-seconds": "3",
            "dapr.io/sidecar-readiness-probe-threshold": "6",
            "dapr.io/sidecar-image": "ghcr.io/dapr/daprd:1.18.3-mariner",
            "dapr.io/sidecar-seccomp-profile-type": "RuntimeDefault",
            "dapr.io/max-body-size": "16Mi",
            "dapr.io/read-buffer-size": "8Ki",
            "dapr.io/graceful-shutdown-seconds": "7",
            "dapr.io/block-shutdown-duration": "5s",
            "dapr.io/enable-api-logging": "true",
            "dapr.io/volume-mounts": "certs:/mnt/certs",
            "dapr.io/volume-mounts-rw": "scratch:/mnt/scratch",
            "dapr.io/disable-builtin-k8s-secret-store": "true",
            "dapr.io/enable-app-health-check": "true",
            "dapr.io/app-health-check-path": "/health",
            "dapr.io/app-health-probe-interval": "3",
            "dapr.io/app-health-probe-timeout": "800",
            "dapr.io/app-health-threshold": "4",
            "dapr.io/app-binding-options-timeout": "10s",
            "dapr.io/placement-host-address": (
                "dapr-placement-server-0.dapr-placement-server.dapr-control.svc.cluster.local:50005,"
                "dapr-placement-server-1.dapr-placement-server.dapr-control.svc.cluster.local:50005"
            ),
            "dapr.io/actors-disseminate-timeout": "45s",
            "dapr.io/scheduler-host-address": (
                "dapr-scheduler-server-0.dapr-scheduler-server.dapr-control.svc.cluster.local:50006"
            ),
            "dapr.io/app-channel-address": "127.0.0.1",
            "dapr.io/sentry-request-jwt-audiences": "orders-api,payments-api",
            "dapr.io/sidecar-svc-annotations": "prometheus.io/probe=true,team=orders",
        },
        [
            {
                "name": "orders",
                "image": "registry.example.com/shop/orders:2.4.1",
                "ports": [{"containerPort": 8080}],
            }
        ],
        volumes=[
            {"name": "certs", "secret": {"secretName": "orders-certs"}},
            {"name": "scratch", "emptyDir": {}},
        ],
    ),
)

# A gRPC app with JSON logs as a native sidecar, the deprecated size and TLS annotations, Unix
# sockets, pluggable components (in the pod and injected), and an injector configured for
# virtual nodes, downward APIs, a non-root user of its own and a reminders service.
INVENTORY = Case(
    "inventory-grpc-json-logs",
    _pod(
        "inventory-0",
        {
            "dapr.io/app-id": "inventory",
            "dapr.io/app-port": "50051",
            "dapr.io/app-protocol": "grpc",
            "dapr.io/app-ssl": "true",
            "dapr.io/log-as-json": "true",
            "dapr.io/log-level": "info",
            "dapr.io/enable-native-sidecar": "true",
            "dapr.io/http-max-request-size": "8",
            "dapr.io/http-read-buffer-size": "16",
            "dapr.io/enable-metrics": "false",
            "dapr.io/enable-api-logging": "false",
            "dapr.io/scheduler-host-address": "",
            "dapr.io/disable-init-endpoints": "config",
            "dapr.io/unix-domain-socket-path": "/tmp/dapr-uds",
            "dapr.io/pluggable-components": "sqlite-store",
            "dapr.io/pluggable-components-sockets-folder": "/var/run/dapr-components",
            "dapr.io/inject-pluggable-components": "true",
            "dapr.io/env": "TZ=UTC",
        },
        [
            {"name": "inventory", "image": "registry.example.com/shop/inventory:1.9.0"},
            {"name": "sqlite-store", "image": "registry.example.com/components/sqlite:0.3"},
        ],
        tolerations=[VIRTUAL_NODE_TOLERATION],
    ),
    injector_env={
        "ENABLE_K8S_DOWNWARD_APIS": "true",
        "REMINDERS_SERVICE_NAME": "reminders",
        "REMINDERS_SERVICE_ADDRESS": "dapr-reminders:50004",
        "SIDECAR_RUN_AS_USER": "1000",
        "SIDECAR_RUN_AS_GROUP": "3000",
        "SIDECAR_DROP_ALL_CAPABILITIES": "true",
        "IGNORE_ENTRYPOINT_TOLERATIONS": json.dumps([VIRTUAL_NODE_TOLERATION]),
    },
    components=(
        {
            "apiVersion": "dapr.io/v1alpha1",
            "kind": "Component",
            "metadata": {
                "name": "audit-log",
                "namespace": APP_NAMESPACE,
                "annotations": {
                    "dapr.io/component-container": json.dumps(
                        {"name": "audit-log", "image": "registry.example.com/components/audit:1.0"}
                    )
                },
            },
            "spec": {"type": "bindings.audit-log", "version": "v1"},
            "scopes": ["inventory"],
        },
    ),
    deprecated=frozenset(
        {
            "app-ssl",
            "dapr-http-max-request-size",
            "dapr-http-read-buffer-size",
            "reminders-service",
        }
    ),
)

# Under a debugger, no app id (the pod's name is used), no app port, h2c, warnings only, and
# placement turned off by a quoted empty address.
CART = Case(
    "cart-debugger-h2c-warn",
    _pod(
        "cart-5d8f9",
        {
            "dapr.io/enable-debug": "true",
            "dapr.io/debug-port": "40001",
            "dapr.io/app-protocol": "h2c",
            "dapr.io/log-level": "warn",
            "dapr.io/placement-host-address": '""',
        },
        [{"name": "cart", "image": "registry.example.com/shop/cart:0.7.2"}],
    ),
)

# The contract's worked example: the pod most clusters see.
NODEAPP = Case("nodeapp-worked-example", nodeapp_pod())

# The worked example behind an injector whose actors service is not named "placement": the
# injector writes ``--actors-service actors:<address>`` instead of a placement address.
NAMED_ACTORS_SERVICE = Case(
    "nodeapp-named-actors-service",
    nodeapp_pod(),
    injector_env={"ACTORS_SERVICE_NAME": "actors", "ACTORS_SERVICE_ADDRESS": "dapr-actors:50003"},
    deprecated=frozenset({"actors-service"}),
)

CASES = [ORDERS, INVENTORY, CART, NODEAPP, NAMED_ACTORS_SERVICE]
# The standalone replay needs daprd to reach its actors service; see the xfail test below.
REPLAYED_CASES = [case for case in CASES if case is not NAMED_ACTORS_SERVICE]


# -- sentry -----------------------------------------------------------------------------------


@dataclass
class Sentry:
    """The sentry every daprd of this module gets its identity from."""

    process: LoggedProcess
    address: str
    trust_anchors: str


@pytest.fixture(scope="module")
def sentry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sentry]:
    """daprplane's sentry, standalone with its own CA: it signs the empty-token request daprd
    sends without a Kubernetes token file, with its default insecure validator."""
    tokens = [path for path in KUBERNETES_TOKEN_FILES if path.exists()]
    if tokens:
        pytest.skip(
            f"this machine has Kubernetes tokens ({tokens}): daprd in kubernetes mode would "
            "present one for the Kubernetes validator, which a standalone sentry does not run"
        )
    directory = tmp_path_factory.mktemp("sentry")
    credentials = directory / "credentials"
    processes = Processes(directory / "logs")
    try:
        process, port = start_sentry(
            processes, credentials, trust_domain=TRUST_DOMAIN, namespace=CONTROL_PLANE_NAMESPACE
        )
        yield Sentry(process, f"127.0.0.1:{port}", (credentials / "ca.crt").read_text())
    finally:
        problems = processes.stop_all()
        assert not problems, "\n".join(problems)


# -- injecting and launching ------------------------------------------------------------------


def inject(case: Case, trust_anchors: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The pod after the injector's patch, and its daprd container."""
    config = InjectorConfig.from_environ({**BASE_INJECTOR_ENV, **case.injector_env})
    patch = build_patch(
        copy.deepcopy(case.pod),
        config,
        namespace=case.pod["metadata"]["namespace"],
        trust_anchors=trust_anchors,
        components=list(case.components),
    )
    assert patch, f"the injector wrote no patch for {case.name}"
    pod = apply_json_patch(case.pod, patch)
    return pod, daprd_container(pod)


@pytest.fixture(scope="module")
def daprd_for_sidecar_user(daprd_binary: Path) -> Iterator[Path]:
    """daprd where the sidecar's non-root user can run it."""
    holder = Sandbox.create()
    yield binary_for_daprd_user(daprd_binary, holder.root)
    holder.remove()


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    directory = Sandbox.create()
    yield directory
    directory.remove()


@dataclass
class Launched:
    """One case injected and mapped: its pod, its daprd container and the launch planned."""

    case: Case
    pod: dict[str, Any]
    container: dict[str, Any]
    launch: DaprdLaunch
    sentry: Sentry

    @property
    def app_id(self) -> str:
        return str(self.pod["metadata"]["labels"]["dapr.io/app-id"])

    @property
    def log_level(self) -> str:
        return flag_value(self.launch.flags, "--log-level") or "info"

    @property
    def logs_info(self) -> bool:
        return self.log_level in ("debug", "info")

    def container_flags(self) -> list[str]:
        """daprd's flags as the injector wrote them (before any mapping)."""
        return daprd_argv(self.container)[0]

    def operator(self) -> ConnectionRecorder:
        address = flag_value(self.container_flags(), "--control-plane-address")
        assert address, "the injector wrote no --control-plane-address"
        return self.launch.recorders[address]

    def start(self, processes: Processes, launch: DaprdLaunch, name: str) -> LoggedProcess:
        process = start_daprd(launch, name, processes.log_dir / f"{name}.log")
        # Registered with the test's processes: stopped at teardown, its log in failure reports.
        processes.started.append(process)
        return process

    def context(self, process: LoggedProcess) -> str:
        return (
            f"{self.case.name}: daprd was launched as\n{self.launch.describe()}\n"
            f"last lines of daprd's log:\n{process.tail()}\n"
            f"last lines of sentry's log:\n{self.sentry.process.tail(20)}"
        )


MakeLaunched = Callable[[Case], Launched]


@pytest.fixture
def launched(
    sentry: Sentry, sandbox: Sandbox, daprd_for_sidecar_user: Path
) -> Iterator[MakeLaunched]:
    """``launched(case)``: the case injected, its daprd container mapped onto this machine."""
    made: list[DaprdLaunch] = []

    def make(case: Case) -> Launched:
        pod, container = inject(case, sentry.trust_anchors)
        launch = plan_launch(
            container,
            pod,
            binary=daprd_for_sidecar_user,
            sentry_address=sentry.address,
            secrets=SECRETS,
            sandbox=sandbox,
        )
        made.append(launch)
        return Launched(case, pod, container, launch, sentry)

    yield make
    for launch in made:
        launch.close()


# -- checks shared by both runs ---------------------------------------------------------------


def check_pod_agrees_with_the_flags(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """The ports and probes Kubernetes is told about, the ports the app is told about and the
    socket volume it shares are the ones daprd is told to use."""
    flags, debugger = daprd_argv(container)
    apps = [c for c in pod["spec"]["containers"] if c.get("name") != container["name"]]
    for app in apps:
        env = {variable["name"]: variable.get("value") for variable in app.get("env") or []}
        if "DAPR_HTTP_PORT" in env:
            assert env["DAPR_HTTP_PORT"] == flag_value(flags, "--dapr-http-port"), app["name"]
            assert env["DAPR_GRPC_PORT"] == flag_value(flags, "--dapr-grpc-port"), app["name"]
    socket_dir = flag_value(flags, "--unix-domain-socket")
    if socket_dir:
        [volume] = [m["name"] for m in container["volumeMounts"] if m["mountPath"] == socket_dir]
        sharing = [
            a["name"] for a in apps if volume in {m["name"] for m in a.get("volumeMounts") or []}
        ]
        assert sharing, f"no app container mounts daprd's socket volume {volume}"
    ports = declared_ports(container)
    for flag, name in (
        ("--dapr-http-port", "dapr-http"),
        ("--dapr-grpc-port", "dapr-grpc"),
        ("--dapr-internal-grpc-port", "dapr-internal"),
        ("--metrics-port", "dapr-metrics"),
    ):
        value = flag_value(flags, flag)
        if value is not None:
            assert ports.get(name) == int(value), f"containerPort {name} vs {flag} {value}"
    public = int(flag_value(flags, "--dapr-public-port") or 0)
    assert container["livenessProbe"]["tcpSocket"]["port"] == public
    assert container["readinessProbe"]["httpGet"]["port"] == public
    assert container["readinessProbe"]["httpGet"]["path"] == "/v1.0/healthz"
    if debugger:
        listen = debugger[debugger.index("--listen") + 1]
        assert listen == f":{ports['dapr-debug']}", "the debugger listens off its declared port"


def check_accepted(launched: Launched, output: DaprdOutput, process: LoggedProcess) -> None:
    """No flag or value refused, nothing fatal, and the logs in the format and identity asked."""
    context = launched.context(process)
    assert not output.flag_problems(), f"daprd refused a flag:\n{context}"
    fatal = output.at_level("fatal", "panic")
    assert not fatal, f"daprd failed: {[r.message for r in fatal]}\n{context}"
    deprecated = output.deprecated_flags()
    assert set(deprecated) == set(launched.case.deprecated), f"deprecations {deprecated}"
    for flag in deprecated:
        assert f"--{flag}" in launched.launch.flags
    as_json = "--log-as-json" in launched.launch.flags
    assert all(record.as_json == as_json for record in output.records), context
    assert all(r.fields.get("app_id") == launched.app_id for r in output.records), context
    if launched.logs_info:
        assert output.has_message(f"Log level set to: {launched.log_level}"), context
    else:
        levels = {record.level for record in output.records}
        assert levels <= {"warning", "error"}, f"a {launched.log_level} daprd logged {levels}"


def stop(launched: Launched, process: LoggedProcess) -> tuple[int, DaprdOutput]:
    """SIGTERM; daprd must exit by itself (not be killed by the signal) within the timeout."""
    code = process.stop()
    assert code >= 0, f"daprd died of signal {-code}\n{launched.context(process)}"
    output = parse_output(process.log_text())
    if launched.logs_info:
        assert output.has_message(SIGNAL_RECEIVED), launched.context(process)
    return code, output


# -- kubernetes mode: the command line as injected ----------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_kubernetes_mode_accepts_the_injected_command_line_up_to_the_operator(
    case: Case, launched: MakeLaunched, processes: Processes
) -> None:
    this: Launched = launched(case)
    check_pod_agrees_with_the_flags(this.pod, this.container)
    assert flag_value(this.launch.flags, "--mode") == "kubernetes"
    process = this.start(processes, this.launch, f"{case.name}-kubernetes")
    operator = this.operator()

    wait_until(
        lambda: operator.connections > 0,
        timeout=STARTUP_TIMEOUT,
        what=lambda: f"daprd to dial the operator\n{this.context(process)}",
        watch=[process],
    )
    output = parse_output(process.log_text())
    check_accepted(this, output, process)
    errors = output.at_level("error")
    assert not errors, f"{[r.message for r in errors]}\n{this.context(process)}"
    if this.logs_info:
        messages = list(output.messages())
        if this.launch.uid is not None:
            assert f"{AS_USER}{this.launch.uid}" in messages, this.context(process)
        # Both, in either order: daprd logs them from different goroutines.
        assert IDENTITY_FETCHED in messages and OPERATOR_DIALLED in messages

    stop(this, process)


# -- standalone replay: every port and address daprd binds or dials ---------------------------


def _standalone(this: Launched, sandbox: Sandbox) -> DaprdLaunch:
    flags = with_flag_value(this.launch.flags, "--mode", "standalone")
    name = flag_value(flags, "--config")
    if name:
        # In standalone mode --config is a file; this one holds the Configuration of that name.
        path = sandbox.root / f"{name}.yaml"
        path.write_text(
            f"apiVersion: dapr.io/v1alpha1\nkind: Configuration\nmetadata:\n  name: {name}\n"
            "spec: {}\n"
        )
        path.chmod(0o644)
        flags = with_flag_value(flags, "--config", str(path))
    if flag_value(flags, "--app-port") is not None:
        flags = with_flag_value(flags, "--app-port", str(free_port()))  # nothing serves it
    return this.launch.with_flags(flags)


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes] | None:
    """Status and body of a GET, or None while nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except OSError:
        return None


def not_ready_reasons(answer: tuple[int, bytes] | None) -> set[str]:
    """What daprd's ``/v1.0/healthz`` says it waits for (``{"?"}`` for an unexpected answer)."""
    if answer is None:
        return {"?"}
    code, body = answer
    if code == 204:
        return set()
    try:
        error = json.loads(body)
    except ValueError:
        return {"?"}
    if code != 500 or error.get("errorCode") != "ERR_HEALTH_NOT_READY":
        return {"?"}
    listed = str(error.get("message", "")).partition("[")[2].rstrip("]")
    return set(listed.split())


def absent_here(flags: list[str]) -> set[str]:
    """What daprd's readiness may wait for here and only here, given its flags: the scheduler
    and placement (ports that accept and never answer) and the app (nothing serves its port)."""
    absent = set()
    if flag_value(flags, "--scheduler-host-address"):
        absent.add("scheduler-watch-hosts")
    if flag_value(flags, "--placement-host-address"):
        absent.add("internal-placement-service")
    if flag_value(flags, "--app-port"):
        absent.add("runtime")
    return absent


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _listen_hosts(flags: list[str]) -> list[str]:
    value = flag_value(flags, "--dapr-listen-addresses") or "127.0.0.1"
    return [item.strip().strip("[]") for item in value.split(",")]


@pytest.mark.parametrize("case", REPLAYED_CASES, ids=lambda case: case.name)
def test_standalone_replay_binds_every_declared_port_and_dials_every_address(
    case: Case, launched: MakeLaunched, processes: Processes, sandbox: Sandbox
) -> None:
    this: Launched = launched(case)
    replay = _standalone(this, sandbox)
    process = this.start(processes, replay, f"{case.name}-standalone")
    ports = replay.listen_ports
    watch = [process]

    def status(path: str, port: int, token: str | None = None) -> int | None:
        answer = _get(f"http://127.0.0.1:{port}{path}", {"dapr-api-token": token} if token else {})
        return None if answer is None else answer[0]

    # The readiness probe's port and path: answered (not ready until an app listens).
    public = ports["--dapr-public-port"]
    health = wait_until(
        lambda: status("/v1.0/healthz", public),
        timeout=STARTUP_TIMEOUT,
        what=lambda: f"daprd's public /v1.0/healthz\n{this.context(process)}",
        watch=watch,
    )
    assert health in (204, 500), f"/v1.0/healthz answered {health}"
    assert _tcp_open("127.0.0.1", public), "the liveness probe's TCP port is closed"

    internal = ports["--dapr-internal-grpc-port"]
    wait_until(lambda: _tcp_open("127.0.0.1", internal), timeout=STARTUP_TIMEOUT,
               what="the internal gRPC port", watch=watch)  # fmt: skip
    if "--enable-metrics" in this.container_flags():
        metrics = ports["--metrics-port"]
        wait_until(lambda: status("/", metrics) == 200, timeout=STARTUP_TIMEOUT,
                   what="daprd's metrics on the metrics port", watch=watch)  # fmt: skip

    uds = flag_value(replay.flags, "--unix-domain-socket")
    if uds:
        sockets = {f"dapr-{this.app_id}-http.socket", f"dapr-{this.app_id}-grpc.socket"}
        wait_until(
            lambda: sockets <= {path.name for path in Path(uds).iterdir()},
            timeout=STARTUP_TIMEOUT,
            what=lambda: f"daprd's API sockets {sockets} in {uds}",
            watch=watch,
        )
    else:
        for host in _listen_hosts(replay.flags):
            for flag in ("--dapr-http-port", "--dapr-grpc-port"):
                wait_until(
                    lambda host=host, flag=flag: _tcp_open(host, ports[flag]),
                    timeout=STARTUP_TIMEOUT,
                    what=f"daprd's {flag} on {host}",
                    watch=watch,
                )
        token = replay.env.get("DAPR_API_TOKEN")
        if token:
            # The token the injector reads from the Secret is the one daprd demands.
            http = ports["--dapr-http-port"]
            assert status("/v1.0/metadata", http) == 401
            assert status("/v1.0/metadata", http, token) == 200

    for flag in ("--placement-host-address", "--scheduler-host-address"):
        written = [item for item in (flag_value(this.container_flags(), flag) or "").split(",")]
        recorders = [replay.recorders[address] for address in written if address]
        if recorders:
            # daprd dials one address of a list, and the next only once that one fails.
            wait_until(
                lambda recorders=recorders: any(r.connections for r in recorders),
                timeout=STARTUP_TIMEOUT,
                what=lambda flag=flag, written=written: (
                    f"daprd to dial {flag} {written}\n{this.context(process)}"
                ),
                watch=watch,
            )

    # Ready, or not ready only for want of what this machine lacks by design.
    absent = absent_here(replay.flags)
    wait_until(
        lambda: not_ready_reasons(_get(f"http://127.0.0.1:{public}/v1.0/healthz")) <= absent,
        timeout=STARTUP_TIMEOUT,
        what=lambda: (
            f"daprd to be ready but for {sorted(absent)}; /v1.0/healthz says "
            f"{_get(f'http://127.0.0.1:{public}/v1.0/healthz')}\n{this.context(process)}"
        ),
        watch=watch,
    )

    app_port = flag_value(replay.flags, "--app-port")
    if app_port and this.logs_info:
        assert parse_output(process.log_text()).has_message(f"waiting on port {app_port}")
    check_accepted(this, parse_output(process.log_text()), process)
    code, output = stop(this, process)
    assert code == 0, f"daprd exited with {code}\n{this.context(process)}"
    if this.logs_info:
        assert output.has_message(SHUT_DOWN), this.context(process)


@pytest.mark.xfail(
    strict=True,
    reason=(
        "daprd 1.18.3 announces --actors-service as deprecated with no effect, yet reads it: a "
        "value named 'placement' becomes the placement address, any other name is dialled "
        "whole ('actors:<host>:<port>') and fails with 'too many colons in address'"
    ),
)
def test_standalone_replay_dials_a_named_actors_service(
    launched: MakeLaunched, processes: Processes, sandbox: Sandbox
) -> None:
    this: Launched = launched(NAMED_ACTORS_SERVICE)
    replay = _standalone(this, sandbox)
    process = this.start(processes, replay, "named-actors-service-standalone")
    written = (flag_value(this.container_flags(), "--actors-service") or "").partition(":")[2]
    recorder = replay.recorders[written]

    def outcome() -> str | None:
        if recorder.connections:
            return "dialled"
        return "misread" if MALFORMED_ADDRESS in process.log_text() else None

    result = wait_until(
        outcome,
        timeout=STARTUP_TIMEOUT,
        what=lambda: f"daprd to dial the actors service {written}\n{this.context(process)}",
        watch=[process],
    )
    misread = [line for line in process.log_text().splitlines() if MALFORMED_ADDRESS in line]
    assert result == "dialled", f"daprd did not dial {written}: {misread[:1]}"


def test_standalone_replay_serves_no_metrics_when_the_annotation_disables_them(
    launched: MakeLaunched, processes: Processes, sandbox: Sandbox
) -> None:
    this = launched(INVENTORY)
    assert this.case.pod["metadata"]["annotations"]["dapr.io/enable-metrics"] == "false"
    assert this.pod["metadata"]["labels"]["dapr.io/metrics-enabled"] == "false"
    replay = _standalone(this, sandbox)
    process = this.start(processes, replay, "metrics-disabled-standalone")
    uds = Path(flag_value(replay.flags, "--unix-domain-socket") or "")
    # The API sockets come up after the metrics server would have.
    wait_until(
        lambda: any(path.name.endswith("-http.socket") for path in uds.iterdir()),
        timeout=STARTUP_TIMEOUT,
        what=lambda: f"daprd's HTTP API socket in {uds}\n{this.context(process)}",
        watch=[process],
    )
    served = _get(f"http://127.0.0.1:{replay.listen_ports['--metrics-port']}/")
    started = [
        r.message for r in parse_output(process.log_text()).records if "metrics server" in r.message
    ]
    assert served is None, f"daprd serves metrics (answer {served[0]}): {started}"


# -- the checks can fail ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutation", "refusal"),
    [
        (
            lambda flags: [*flags, "--made-up-flag-for-control", "1"],
            "unknown flag: --made-up-flag-for-control",
        ),
        (
            lambda flags: with_flag_value(flags, "--dapr-graceful-shutdown-seconds", "soon"),
            'invalid argument "soon" for "--dapr-graceful-shutdown-seconds" flag',
        ),
    ],
    ids=["made-up-flag", "unparsable-value"],
)
def test_daprd_refuses_a_mutated_command_line(
    mutation: Any, refusal: str, launched: MakeLaunched, processes: Processes
) -> None:
    this: Launched = launched(NODEAPP)
    mutated = this.launch.with_flags(mutation(this.launch.flags))
    process = this.start(processes, mutated, "mutated")
    deadline = time.monotonic() + REFUSAL_TIMEOUT
    while process.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not process.running, f"daprd accepted the mutated command line\n{process.tail()}"
    assert process.popen.returncode != 0
    problems = parse_output(process.log_text()).flag_problems()
    assert any(refusal in line for line in problems), problems
    assert this.operator().connections == 0, "daprd went on to dial the operator"


def test_the_cases_use_every_annotation_the_injector_reads() -> None:
    used = {name for case in CASES for name in case.pod["metadata"]["annotations"]}
    assert set(ANNOTATIONS) - used == set()
