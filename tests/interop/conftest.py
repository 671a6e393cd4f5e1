"""Real processes for interop tests: daprplane's sentry and placement, actor apps, real ``daprd``.

Every process runs on loopback with free ports and an explicit environment (nothing inherited),
and writes its output to a log file in the test's temporary directory. When a test fails (in
setup, call or teardown) the tail of every log is added to its report, so a refusal on either
side of the wire shows in the failure output.

Fixtures:

- ``daprd_binary`` (session): Dapr's own ``daprd``, built once from Dapr's Go module
  (``tests/dapr``);
- ``processes``: starts, stops and reports on every process of one test;
- ``control_plane``: a standalone sentry with its own CA and a placement with mTLS through it;
- ``start_actor_host``: starts one actor app with its own ``daprd`` in front, both ready.

``start_kubernetes_daprd`` runs ``daprd --mode kubernetes`` as daprplane's injector would in an
app's pod (flags and environment), pointed at an operator and a sentry on loopback.

daprd is run the way self-hosted mTLS is documented: ``--enable-mtls``, ``--sentry-address`` and
the trust anchors (sentry's ``ca.crt``) in ``DAPR_TRUST_ANCHORS``. The control plane runs in a
non-default trust domain and namespace, passed to daprd as ``--control-plane-trust-domain`` and
``--control-plane-namespace``, so daprd's check of sentry's and placement's SPIFFE IDs is real.
``DAPR_HOST_IP=127.0.0.1`` makes daprd announce ``127.0.0.1:<internal gRPC port>`` to placement
instead of the machine's outward address, keeping sidecar-to-sidecar traffic on loopback.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests.dapr import binaries
from tests.integration.launchers import LoopbackPorts, free_port, http_status, script

TRUST_DOMAIN = "example.org"
CONTROL_PLANE_NAMESPACE = "dapr-system"
APP_NAMESPACE = "default"
ACTOR_TYPE = "Counter"
REPLICATION_FACTOR = 100
ACTOR_APP = Path(__file__).resolve().parent / "actor_app.py"

LOG_TAIL_LINES = 80
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0

# A cold build of Dapr's binaries takes about 7 minutes on 2 cores (more on a busy machine).
_DAPRD_BUILD_ALLOWANCE = 1200.0

# daprd's info line once it has applied a placement table (all three phases done).
_DISSEMINATED = re.compile(r"Dissemination complete for version (\d+)")

T = TypeVar("T")


# -- processes and their logs ---------------------------------------------------------------


class Watched(Protocol):
    """Something ``wait_until`` can watch: it raises once its process has exited."""

    def check_running(self) -> None: ...


@dataclass
class LoggedProcess:
    """A subprocess whose stdout and stderr go to ``log_path``."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def check_running(self) -> None:
        """Fail at once, with the log's tail, when the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise AssertionError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
                f"{self.tail()}"
            )

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, then the exit code; killed (and reported) if it outlives ``timeout``."""
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=10)
            raise AssertionError(
                f"{self.name} did not exit within {timeout}s of SIGTERM and was killed; "
                f"last lines of its log:\n{self.tail()}"
            ) from None


class Processes:
    """Every process one test started: started with logs to files, stopped in reverse order."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.started: list[LoggedProcess] = []
        #: Logs of processes started elsewhere (by name), reported alongside ours.
        self.other_logs: dict[str, Path] = {}

    def report_log(self, name: str, path: Path) -> None:
        """Add the tail of ``path`` to a failing test's report too."""
        self.other_logs[name] = path

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> LoggedProcess:
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                list(argv),
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.log_dir,
            )
        process = LoggedProcess(name, popen, log_path)
        self.started.append(process)
        return process

    def stop_all(self) -> list[str]:
        """Stop whatever still runs, newest first; the problems met, for the caller to report."""
        problems = []
        for process in reversed(self.started):
            if not process.running:
                continue
            try:
                process.stop()
            except AssertionError as error:
                problems.append(str(error))
        return problems

    def log_sections(self, lines: int = LOG_TAIL_LINES) -> list[tuple[str, str]]:
        sections = [
            (
                f"{process.name} log (last {lines} lines of {process.log_path}, "
                f"exit code {process.popen.poll()})",
                process.tail(lines) or "(nothing logged)",
            )
            for process in self.started
        ]
        for name, path in self.other_logs.items():
            text = path.read_text(errors="replace") if path.exists() else ""
            tail = "\n".join(text.splitlines()[-lines:])
            sections.append((f"{name} log (last {lines} lines of {path})", tail or "(nothing)"))
        return sections


_PROCESSES = pytest.StashKey[Processes]()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    processes = item.stash.get(_PROCESSES, None)
    if report.failed and processes is not None:
        for header, text in processes.log_sections():
            report.sections.append((header, text))


@pytest.fixture
def processes(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Processes]:
    registry = Processes(tmp_path / "logs")
    request.node.stash[_PROCESSES] = registry
    yield registry
    problems = registry.stop_all()
    assert not problems, "\n\n".join(problems)


# -- waiting ------------------------------------------------------------------------------------


def wait_until(
    condition: Callable[[], T | None],
    *,
    timeout: float,
    what: str | Callable[[], str],
    watch: Iterable[Watched] = (),
    interval: float = 0.1,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail early if a watched process
    exits, and with ``what`` in the message when ``timeout`` passes (a callable ``what`` is
    asked then, so that it can describe the state things were left in)."""
    watched = list(watch)
    deadline = time.monotonic() + timeout
    while True:
        for process in watched:
            process.check_running()
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            description = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {description}")
        time.sleep(interval)


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes] | None:
    """Status and body of a GET, or ``None`` while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as error:
        return int(error.code), error.read()
    except OSError:
        return None


def wait_for_healthz(
    port: int, *, what: str, watch: Iterable[Watched], timeout: float = STARTUP_TIMEOUT
) -> None:
    """Wait until ``/healthz`` on ``port`` answers 200; fail early if a watched process exits."""
    wait_until(
        lambda: http_status(f"http://127.0.0.1:{port}/healthz") == 200,
        timeout=timeout,
        what=f"{what}'s /healthz to answer 200",
        watch=watch,
    )


def get_json(url: str) -> Any:
    """The JSON body of a successful GET, or ``None`` while it is not available."""
    answer = http_get(url)
    if answer is None or answer[0] != 200:
        return None
    return json.loads(answer[1])


# -- the control plane ------------------------------------------------------------------------


@dataclass(frozen=True)
class PlacementTable:
    """One namespace's table as placement's ``/placement/state`` shows it."""

    version: int
    hosts: tuple[dict[str, Any], ...]

    def host_names(self) -> set[str]:
        return {host["name"] for host in self.hosts}

    def app_ids(self) -> set[str]:
        return {host["id"] for host in self.hosts}


@dataclass
class ControlPlane:
    sentry: LoggedProcess
    sentry_port: int
    placement: LoggedProcess
    placement_port: int
    placement_healthz_port: int
    credentials: Path

    @property
    def sentry_address(self) -> str:
        return f"127.0.0.1:{self.sentry_port}"

    @property
    def placement_address(self) -> str:
        return f"127.0.0.1:{self.placement_port}"

    @property
    def trust_anchors(self) -> str:
        return (self.credentials / "ca.crt").read_text()

    def placement_table(self, namespace: str = APP_NAMESPACE) -> PlacementTable | None:
        """The table placement would disseminate now, or None when it holds none."""
        state = get_json(f"http://127.0.0.1:{self.placement_healthz_port}/placement/state")
        table = (state or {}).get("tables", {}).get(namespace)
        if table is None:
            return None
        return PlacementTable(int(table.get("version", 0)), tuple(table.get("hosts", ())))

    def wait_for_table(
        self, app_ids: set[str], newer_than: int = 0, timeout: float = STARTUP_TIMEOUT
    ) -> PlacementTable:
        """Wait until placement's table holds exactly ``app_ids`` at a version > ``newer_than``."""

        def ready() -> PlacementTable | None:
            table = self.placement_table()
            if table and table.app_ids() == app_ids and table.version > newer_than:
                return table
            return None

        return wait_until(
            ready,
            timeout=timeout,
            what=lambda: (
                f"placement's table to hold exactly {sorted(app_ids)} "
                f"at a version above {newer_than} (now: {self.placement_table()})"
            ),
            watch=(self.sentry, self.placement),
        )


def start_sentry(
    processes: Processes,
    credentials: Path,
    *,
    trust_domain: str = TRUST_DOMAIN,
    namespace: str = CONTROL_PLANE_NAMESPACE,
) -> tuple[LoggedProcess, int]:
    """A standalone sentry with its CA in ``credentials``: its process and port, once healthy."""
    credentials.mkdir(parents=True)
    config = credentials.parent / "sentry-config.yaml"
    config.write_text("")  # no Configuration: mTLS defaults
    ports = LoopbackPorts()
    sentry = processes.start(
        "sentry",
        [
            script("daprplane-sentry"),
            "--mode=standalone",
            f"--config={config}",
            f"--issuer-credentials={credentials}",
            f"--trust-domain={trust_domain}",
            *ports.flags(),
        ],
        {"NAMESPACE": namespace},
    )
    wait_for_healthz(ports.healthz, what="sentry", watch=[sentry])
    assert (credentials / "ca.crt").is_file(), "sentry is healthy but wrote no ca.crt"
    return sentry, ports.port


def _start_placement(
    processes: Processes, sentry_port: int, credentials: Path
) -> tuple[LoggedProcess, int, int]:
    ports = LoopbackPorts()
    placement = processes.start(
        "placement",
        [
            script("daprplane-placement"),
            "--mode=standalone",
            "--tls-enabled",
            f"--trust-domain={TRUST_DOMAIN}",
            f"--trust-anchors-file={credentials / 'ca.crt'}",
            f"--sentry-address=127.0.0.1:{sentry_port}",
            "--metadata-enabled",
            f"--initial-cluster=dapr-placement-0=127.0.0.1:{free_port()}",
            f"--replicationFactor={REPLICATION_FACTOR}",
            *ports.flags(),
            "--log-level=debug",
        ],
        {"NAMESPACE": CONTROL_PLANE_NAMESPACE},
    )
    # It needs its SVID from sentry before it is healthy.
    wait_for_healthz(ports.healthz, what="placement", watch=[placement])
    return placement, ports.port, ports.healthz


@pytest.fixture
def control_plane(processes: Processes, tmp_path: Path) -> ControlPlane:
    credentials = tmp_path / "sentry-credentials"
    sentry, sentry_port = start_sentry(processes, credentials)
    placement, port, healthz = _start_placement(processes, sentry_port, credentials)
    return ControlPlane(sentry, sentry_port, placement, port, healthz, credentials)


# -- actor apps and their sidecars --------------------------------------------------------------


@dataclass
class ActorHost:
    """One actor app and the daprd in front of it."""

    app_id: str
    app: LoggedProcess
    app_port: int
    daprd: LoggedProcess
    http_port: int
    internal_grpc_port: int

    @property
    def dapr_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def placement_host_name(self) -> str:
        """The host name daprd reports to placement (its internal gRPC address)."""
        return f"127.0.0.1:{self.internal_grpc_port}"

    def metadata(self) -> dict[str, Any] | None:
        return get_json(f"{self.dapr_url}/v1.0/metadata")  # type: ignore[no-any-return]

    def introspect(self) -> dict[str, Any]:
        """The actor app's own account: active actors, activations, deactivations."""
        view = get_json(f"http://127.0.0.1:{self.app_port}/introspect")
        assert view is not None, f"actor app {self.app_id} does not answer /introspect"
        return view  # type: ignore[no-any-return]

    def active_actor_ids(self) -> set[str]:
        return {actor_id for actor_type, actor_id in self.introspect()["active"]}

    def applied_versions(self) -> set[int]:
        """Placement table versions daprd logged as fully disseminated to it."""
        return {int(v) for v in _DISSEMINATED.findall(self.daprd.log_text())}

    def wait_applied(self, version: int, timeout: float = STARTUP_TIMEOUT) -> None:
        wait_until(
            lambda: any(v >= version for v in self.applied_versions()),
            timeout=timeout,
            what=lambda: (
                f"daprd {self.app_id} to apply placement table version {version} "
                f"(applied so far: {sorted(self.applied_versions())})"
            ),
            watch=[self.daprd, self.app],
        )


def _write_resources(directory: Path) -> Path:
    """The one component actors need: a transactional state store marked for actor state."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "actorstore.yaml").write_text(
        "apiVersion: dapr.io/v1alpha1\n"
        "kind: Component\n"
        "metadata:\n"
        "  name: actorstore\n"
        "spec:\n"
        "  type: state.in-memory\n"
        "  version: v1\n"
        "  metadata:\n"
        "  - name: actorStateStore\n"
        '    value: "true"\n'
    )
    return directory


def _start_app(
    processes: Processes, app_id: str, process_name: str = ""
) -> tuple[LoggedProcess, int]:
    """The actor app, answering as ``app_id``, logging as ``process_name`` (default the app ID)."""
    process_name = process_name or app_id
    port = free_port()
    app = processes.start(
        f"{process_name}-app",
        [
            sys.executable,
            str(ACTOR_APP),
            f"--name={app_id}",
            f"--port={port}",
            f"--actor-type={ACTOR_TYPE}",
        ],
        {},
    )
    wait_for_healthz(port, what=f"actor app {process_name}", watch=[app])
    return app, port


def _daprd_ready(host: ActorHost) -> bool:
    """Healthy, the actor runtime connected to placement, and this host's types registered."""
    health = http_get(f"{host.dapr_url}/v1.0/healthz")
    if health is None or health[0] != 204:
        return False
    runtime = (host.metadata() or {}).get("actorRuntime", {})
    return bool(
        runtime.get("runtimeStatus") == "RUNNING"
        and runtime.get("hostReady")
        and runtime.get("placement") == "placement: connected"
    )


StartActorHost = Callable[[str], ActorHost]


@dataclass
class SelfHostedDaprd:
    """The command line and environment of a self-hosted daprd in front of an actor app: mTLS
    with our sentry, our placement, every port on loopback."""

    argv: list[str]
    env: dict[str, str]
    http_port: int
    internal_port: int

    @classmethod
    def for_app(
        cls,
        daprd_binary: Path,
        control_plane: ControlPlane,
        resources: Path,
        app_id: str,
        app_port: int,
        namespace: str,
    ) -> SelfHostedDaprd:
        http_port, grpc_port, internal_port = free_port(), free_port(), free_port()
        argv = [
            str(daprd_binary),
            "--mode=standalone",
            f"--app-id={app_id}",
            f"--app-port={app_port}",
            "--app-protocol=http",
            "--app-channel-address=127.0.0.1",
            f"--dapr-http-port={http_port}",
            f"--dapr-grpc-port={grpc_port}",
            "--dapr-listen-addresses=127.0.0.1",
            f"--dapr-internal-grpc-port={internal_port}",
            "--dapr-internal-grpc-listen-address=127.0.0.1",
            "--enable-metrics=false",
            f"--placement-host-address={control_plane.placement_address}",
            "--enable-mtls",
            f"--sentry-address={control_plane.sentry_address}",
            f"--control-plane-trust-domain={TRUST_DOMAIN}",
            f"--control-plane-namespace={CONTROL_PLANE_NAMESPACE}",
            f"--resources-path={resources}",
            "--log-level=debug",
        ]
        env = {
            "DAPR_TRUST_ANCHORS": control_plane.trust_anchors,
            # The sidecar's SVID from sentry follows its namespace.
            "NAMESPACE": namespace,
            # daprd announces this address to placement instead of the machine's own.
            "DAPR_HOST_IP": "127.0.0.1",
        }
        return cls(argv, env, http_port, internal_port)


@pytest.fixture
def start_actor_host(
    processes: Processes, control_plane: ControlPlane, daprd_binary: Path, tmp_path: Path
) -> StartActorHost:
    """``start_actor_host(app_id)``: an actor app plus its daprd, once daprd reports ready."""
    resources = _write_resources(tmp_path / "resources")

    def start(app_id: str) -> ActorHost:
        app, app_port = _start_app(processes, app_id)
        launch = SelfHostedDaprd.for_app(
            daprd_binary, control_plane, resources, app_id, app_port, APP_NAMESPACE
        )
        daprd = processes.start(f"{app_id}-daprd", launch.argv, launch.env)
        http_port, internal_port = launch.http_port, launch.internal_port
        host = ActorHost(app_id, app, app_port, daprd, http_port, internal_port)
        wait_until(
            lambda: _daprd_ready(host),
            timeout=STARTUP_TIMEOUT,
            what=lambda: (
                f"daprd {app_id} to be healthy with its actor runtime connected to "
                "placement "
                f"(metadata now: {host.metadata()})"
            ),
            watch=[daprd, app, control_plane.placement, control_plane.sentry],
        )
        return host

    return start


# -- daprd in kubernetes mode ---------------------------------------------------------------------


@dataclass(frozen=True)
class PodIdentity:
    """What daprd in an app's pod is told about itself and the control plane, as daprplane's
    injector tells it (flags and environment), with loopback addresses for the Services."""

    app_id: str
    namespace: str
    pod_name: str
    operator_address: str
    sentry_address: str
    trust_anchors: str
    control_plane_namespace: str
    control_plane_trust_domain: str
    #: The pod's ``dapr.io/config``; empty for none.
    config: str = ""
    #: The projected ServiceAccount token for sentry; None for none.
    sentry_token_file: Path | None = None


@dataclass
class KubernetesSidecar:
    """One ``daprd --mode kubernetes``, with its HTTP API on loopback."""

    pod: PodIdentity
    daprd: LoggedProcess
    http_port: int

    @property
    def dapr_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def healthy(self) -> bool:
        return (http_get(f"{self.dapr_url}/v1.0/healthz") or (0,))[0] == 204

    def metadata(self) -> dict[str, Any] | None:
        return get_json(f"{self.dapr_url}/v1.0/metadata")  # type: ignore[no-any-return]


def start_kubernetes_daprd(
    processes: Processes,
    daprd_binary: Path,
    pod: PodIdentity,
    *,
    extra_args: Sequence[str] = (),
    wait_healthy: bool = True,
    watch: Iterable[Watched] = (),
) -> KubernetesSidecar:
    """daprd as the injector runs it in ``pod`` (no app container: daprd alone), on free
    loopback ports; once healthy unless ``wait_healthy`` is false.

    The built-in Kubernetes secret store is disabled (the pod's
    ``dapr.io/disable-builtin-k8s-secret-store``): it is a client of the API server that only
    finds its address and credentials in-cluster, under ``/var/run/secrets/kubernetes.io``,
    and daprd exits when it cannot initialise it. Secrets referenced by Components do not need
    it: the operator resolves them.
    """
    http_port, grpc_port, internal_port = free_port(), free_port(), free_port()
    argv = [
        str(daprd_binary),
        "--mode=kubernetes",
        f"--app-id={pod.app_id}",
        f"--dapr-http-port={http_port}",
        f"--dapr-grpc-port={grpc_port}",
        f"--dapr-internal-grpc-port={internal_port}",
        "--dapr-listen-addresses=127.0.0.1",
        "--dapr-internal-grpc-listen-address=127.0.0.1",
        f"--control-plane-address={pod.operator_address}",
        f"--sentry-address={pod.sentry_address}",
        "--enable-metrics=false",
        "--enable-mtls",
        "--disable-builtin-k8s-secret-store",
        "--log-level=debug",
        *([f"--config={pod.config}"] if pod.config else []),
        *extra_args,
    ]
    env = {
        "NAMESPACE": pod.namespace,
        "POD_NAME": pod.pod_name,
        "DAPR_TRUST_ANCHORS": pod.trust_anchors,
        "DAPR_CONTROLPLANE_NAMESPACE": pod.control_plane_namespace,
        "DAPR_CONTROLPLANE_TRUST_DOMAIN": pod.control_plane_trust_domain,
        "DAPR_HOST_IP": "127.0.0.1",
        # daprd refuses to run as root in kubernetes mode; tests here run as root.
        "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK": "true",
    }
    if pod.sentry_token_file is not None:
        env["DAPR_SENTRY_TOKEN_FILE"] = str(pod.sentry_token_file)
    daprd = processes.start(f"{pod.app_id}-daprd", argv, env)
    sidecar = KubernetesSidecar(pod, daprd, http_port)
    if wait_healthy:
        wait_until(
            sidecar.healthy,
            timeout=STARTUP_TIMEOUT,
            what=f"daprd {pod.app_id} (kubernetes mode) to answer /v1.0/healthz with 204",
            watch=[daprd, *watch],
        )
    return sidecar


def daprd_build_allowance() -> float:
    """Seconds to add to a test's timeout when its ``daprd_binary`` fixture will build daprd
    (nothing prebuilt given, nothing cached yet); 0 when daprd is at hand."""
    if os.environ.get(binaries.DAPRD_ENV) or os.environ.get(binaries.BINARIES_ENV):
        return 0.0
    cached = binaries.cache_root() / binaries.cache_key() / "daprd"
    return 0.0 if os.access(cached, os.X_OK) else _DAPRD_BUILD_ALLOWANCE


@pytest.fixture(scope="session")
def daprd_binary() -> Path:
    # Built once per machine and cached; CI builds it before the tests run.
    return binaries.binary("daprd")
