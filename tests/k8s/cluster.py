"""A real etcd + kube-apiserver on loopback for tests.

``KubeCluster`` starts both processes with random free ports in a temporary
directory, waits for ``/readyz`` and hands out clients:

* the admin (``system:masters``) kubeconfig and ``ApiClient``s, sync and
  ``kubernetes.aio``;
* clients for any user/groups (client certificate from the cluster CA) and for
  ServiceAccounts (token from the TokenRequest API) to exercise RBAC;
* ``compact()`` to compact etcd on demand (the apiserver never compacts by
  itself here) so watches from old resource versions get 410 Gone.

There is no controller-manager, scheduler or kubelet: pods stay Pending,
ServiceAccounts (even ``default``) exist only when created (``create_namespace``
does that), owner-reference garbage collection does not happen and namespaces
are emptied and finalized by ``delete_namespace`` itself.

Environment knobs: ``DAPRPLANE_KUBE_KEEP=1`` keeps the work directory (logs,
PKI, kubeconfigs) after stopping; ``DAPRPLANE_KUBE_APISERVER_ARGS`` adds
kube-apiserver flags (e.g. ``--v=4``).

The watch cache is off by default (``watch_cache=False`` or
``DAPRPLANE_KUBE_WATCH_CACHE=1`` to turn it on) so that every watch is served
by etcd and compaction reliably turns old resource versions into 410 Gone.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from tests.pki import KeyPair, TlsCA, service_account_signing_key

from .assets import ensure_assets

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.96.0.0/16"
ADMIN_USER = "daprplane-test-admin"

_WORKDIR_PREFIX = "daprplane-kube-"
_OWNER_FILE = "owner.pid"
_PR_SET_PDEATHSIG = 1
_PROXY_VARS = ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")


class ClusterError(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Loaded here, not in the forked child: dlopen between fork and exec can crash or hang a child of
# a process with other threads (a test holding gRPC channels restarts the API server).
_LIBC = ctypes.CDLL(None, use_errno=True)


def _die_with_parent(parent_pid: int) -> None:
    """preexec_fn: the child gets SIGKILL when the process that started it dies.

    PR_SET_PDEATHSIG fires when the *thread* that forked exits, so start
    clusters from a long-lived thread (pytest's main thread is).
    """
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before prctl took effect
        os._exit(1)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _PROXY_VARS}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost,::1"
    return env


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep_stale_workdirs() -> None:
    """Remove work directories left behind by test processes that were killed."""
    for path in Path(tempfile.gettempdir()).glob(f"{_WORKDIR_PREFIX}*"):
        try:
            owner = int((path / _OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if not _pid_alive(owner):
            shutil.rmtree(path, ignore_errors=True)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _tail(path: Path, lines: int, start: int = 0) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read()
    except OSError:
        return ""
    return b"\n".join(data.splitlines()[-lines:]).decode(errors="replace")


class _Process:
    def __init__(self, name: str, args: list[str], log_path: Path) -> None:
        self.name = name
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        parent = os.getpid()
        setpriv = shutil.which("setpriv")
        # util-linux's setpriv sets the parent-death signal and execs, with no Python code
        # between fork and exec: that is not safe in a process with other threads (gRPC's),
        # where a preexec_fn child can crash.
        self.popen = subprocess.Popen(
            [setpriv, "--pdeathsig", "KILL", "--", *args] if setpriv else args,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            start_new_session=True,  # Ctrl-C goes to us; we stop children in order
            preexec_fn=None if setpriv else lambda: _die_with_parent(parent),
        )

    def check_alive(self) -> None:
        code = self.popen.poll()
        if code is not None:
            raise ClusterError(
                f"{self.name} exited with code {code}; last log lines:\n" + _tail(self.log_path, 40)
            )

    def stop(self, timeout: float = 15.0) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        self._log.close()


class KubeCluster:
    """etcd + kube-apiserver on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        *,
        assets_dir: Path | None = None,
        watch_cache: bool | None = None,
        extra_apiserver_args: Sequence[str] = (),
        keep_workdir: bool | None = None,
        startup_timeout: float = 180.0,
    ) -> None:
        self._assets_dir = assets_dir
        if watch_cache is None:
            watch_cache = os.environ.get("DAPRPLANE_KUBE_WATCH_CACHE", "") in ("1", "true")
        self.watch_cache = watch_cache
        if keep_workdir is None:
            keep_workdir = os.environ.get("DAPRPLANE_KUBE_KEEP", "") in ("1", "true")
        self._keep_workdir = keep_workdir
        self._extra_args = [
            *shlex.split(os.environ.get("DAPRPLANE_KUBE_APISERVER_ARGS", "")),
            *extra_apiserver_args,
        ]
        self._startup_timeout = startup_timeout
        self._etcd: _Process | None = None
        self._apiserver: _Process | None = None
        self._apiserver_args: list[str] = []
        self.workdir: Path | None = None
        self.ca = TlsCA("daprplane-test-kube-ca")
        self.server = ""
        self.etcd_url = ""
        self.startup_seconds = 0.0

    # ------------------------------------------------------------------ lifecycle

    def __enter__(self) -> KubeCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._apiserver is not None

    def start(self) -> None:
        if self.running:
            return
        assets = self._assets_dir or ensure_assets()
        started = time.monotonic()
        if not self._keep_workdir:
            _sweep_stale_workdirs()
        self.workdir = Path(tempfile.mkdtemp(prefix=_WORKDIR_PREFIX))
        (self.workdir / _OWNER_FILE).write_text(str(os.getpid()))
        atexit.register(self.stop)
        self._write_pki()
        last_error: Exception | None = None
        for _attempt in range(3):  # random ports can be taken between probe and bind
            try:
                self._start_processes(assets)
                break
            except ClusterError as exc:
                last_error = exc
                self._stop_processes()
                if "address already in use" not in str(exc):
                    break
            except BaseException:
                self.stop()
                raise
        if not self.running:
            self.stop()
            raise ClusterError(f"the test cluster did not start: {last_error}")
        try:
            self._bootstrap()
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = time.monotonic() - started

    def stop(self) -> None:
        self._stop_processes()
        if self.workdir and self.workdir.exists() and not self._keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        with contextlib.suppress(Exception):
            atexit.unregister(self.stop)

    def _stop_processes(self) -> None:
        apiserver, etcd = self._apiserver, self._etcd
        self._apiserver = self._etcd = None
        if apiserver:
            apiserver.stop()
        if etcd:
            etcd.stop()

    # ------------------------------------------------------------------ startup

    @property
    def pki_dir(self) -> Path:
        assert self.workdir
        return self.workdir / "pki"

    @property
    def ca_file(self) -> Path:
        return self.pki_dir / "ca.crt"

    @property
    def kubeconfig(self) -> Path:
        """The admin (system:masters) kubeconfig."""
        assert self.workdir
        return self.workdir / "admin.kubeconfig"

    @property
    def log_files(self) -> dict[str, Path]:
        assert self.workdir
        return {
            "kube-apiserver": self.workdir / "kube-apiserver.log",
            "etcd": self.workdir / "etcd.log",
        }

    def _write_pki(self) -> None:
        pki = self.pki_dir
        pki.mkdir(parents=True)
        self.ca_file.write_bytes(self.ca.cert_pem)
        self.ca.server_cert(
            (
                "127.0.0.1",
                "localhost",
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "10.96.0.1",
            )
        ).write(pki, "apiserver")
        self._admin = self.ca.client_cert(ADMIN_USER, ["system:masters"])
        self._admin.write(pki, "admin")
        private, public = service_account_signing_key()
        (pki / "sa.key").write_bytes(private)
        (pki / "sa.pub").write_bytes(public)

    def _start_processes(self, assets: Path) -> None:
        assert self.workdir
        etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
        self.etcd_url = f"http://127.0.0.1:{etcd_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        data_dir = self.workdir / "etcd"
        shutil.rmtree(data_dir, ignore_errors=True)
        self._etcd = _Process(
            "etcd",
            [
                str(assets / "etcd"),
                "--name=default",
                f"--data-dir={data_dir}",
                f"--listen-client-urls={self.etcd_url}",
                f"--advertise-client-urls={self.etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=default={peer_url}",
                "--initial-cluster-state=new",
                "--unsafe-no-fsync",
                "--auto-compaction-retention=0",
                "--log-level=warn",
            ],
            self.log_files["etcd"],
        )
        deadline = time.monotonic() + self._startup_timeout
        self._wait(lambda: self._etcd_healthy(), deadline, self._etcd, "etcd /health")

        pki = self.pki_dir
        self.server = f"https://127.0.0.1:{api_port}"
        args = [
            str(assets / "kube-apiserver"),
            f"--etcd-servers={self.etcd_url}",
            "--etcd-compaction-interval=0",
            f"--watch-cache={'true' if self.watch_cache else 'false'}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={api_port}",
            f"--cert-dir={self.workdir / 'apiserver-certs'}",
            f"--tls-cert-file={pki / 'apiserver.crt'}",
            f"--tls-private-key-file={pki / 'apiserver.key'}",
            f"--client-ca-file={self.ca_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={pki / 'sa.pub'}",
            f"--service-account-signing-key-file={pki / 'sa.key'}",
            f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            # Loopback addresses are invalid in Endpoints: don't reconcile the
            # "kubernetes" Service endpoints at all.
            "--endpoint-reconciler-type=none",
            "--allow-privileged=true",
            "--profiling=false",
            *self._extra_args,
        ]
        self._apiserver_args = args
        self._apiserver = _Process("kube-apiserver", args, self.log_files["kube-apiserver"])
        self._wait(self._apiserver_ready, deadline, self._apiserver, "kube-apiserver /readyz")

    def restart_apiserver(self, down_for: float = 0.0) -> None:
        """Stop kube-apiserver, wait ``down_for`` seconds, start it again on the same port and
        etcd: clients see their connections and watches drop, then the same cluster back."""
        assert self._apiserver is not None, "the cluster is not running"
        self._apiserver.stop()
        self._apiserver = None
        time.sleep(down_for)
        self._apiserver = _Process(
            "kube-apiserver", self._apiserver_args, self.log_files["kube-apiserver"]
        )
        deadline = time.monotonic() + self._startup_timeout
        self._wait(self._apiserver_ready, deadline, self._apiserver, "kube-apiserver /readyz")

    def _wait(self, ready, deadline: float, process: _Process, what: str) -> None:  # type: ignore[no-untyped-def]
        while True:
            process.check_alive()
            if ready():
                return
            if time.monotonic() > deadline:
                raise ClusterError(
                    f"timed out waiting for {what}; last log lines:\n" + _tail(process.log_path, 40)
                )
            time.sleep(0.1)

    def _etcd_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.etcd_url}/health", timeout=2) as resp:
                return json.load(resp).get("health") == "true"
        except (OSError, ValueError):
            return False

    def _admin_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.ca_file))
        ctx.load_cert_chain(self.pki_dir / "admin.crt", self.pki_dir / "admin.key")
        return ctx

    def _apiserver_ready(self) -> bool:
        try:
            with urllib.request.urlopen(
                f"{self.server}/readyz", timeout=5, context=self._admin_ssl_context()
            ) as resp:
                return resp.status == 200
        except (OSError, urllib.error.HTTPError):
            return False

    def _bootstrap(self) -> None:
        self._write_kubeconfig(self.kubeconfig, self._admin)
        with self.api_client() as api:
            from kubernetes import client

            core = client.CoreV1Api(api)
            deadline = time.monotonic() + 60
            # The system namespaces are created by a post-start controller.
            for ns in ("default", "kube-system", "kube-public"):
                while True:
                    try:
                        core.read_namespace(ns)
                        break
                    except client.ApiException as exc:
                        if exc.status != 404 or time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                self._ensure_default_service_account(core, ns)

    # ------------------------------------------------------------------ clients

    def _kubeconfig_dict(self, user: dict[str, Any], name: str) -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "daprplane-test",
                    "cluster": {
                        "server": self.server,
                        "certificate-authority-data": _b64(self.ca.cert_pem),
                    },
                }
            ],
            "users": [{"name": name, "user": user}],
            "contexts": [{"name": name, "context": {"cluster": "daprplane-test", "user": name}}],
            "current-context": name,
        }

    def _write_kubeconfig(self, path: Path, creds: KeyPair | str, name: str = "admin") -> Path:
        if isinstance(creds, KeyPair):
            user = {
                "client-certificate-data": _b64(creds.cert_pem),
                "client-key-data": _b64(creds.key_pem),
            }
        else:
            user = {"token": creds}
        path.touch(mode=0o600)
        # JSON is YAML: no need for a YAML writer.
        path.write_text(json.dumps(self._kubeconfig_dict(user, name), indent=2))
        return path

    def _credential_files(self, creds: KeyPair) -> tuple[Path, Path]:
        assert self.workdir
        name = "client-" + secrets.token_hex(6)
        return creds.write(self.workdir / "clients", name)

    def configuration(self, creds: KeyPair | str | None = None, *, aio: bool = False) -> Any:
        """A ``kubernetes[.aio].client.Configuration`` for the admin, a cert or a token."""
        if aio:
            from kubernetes.aio.client import Configuration
        else:
            from kubernetes.client import Configuration
        cfg = Configuration(host=self.server)
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.verify_ssl = True
        if creds is None:
            cfg.cert_file = str(self.pki_dir / "admin.crt")
            cfg.key_file = str(self.pki_dir / "admin.key")
        elif isinstance(creds, KeyPair):
            cert, key = self._credential_files(creds)
            cfg.cert_file, cfg.key_file = str(cert), str(key)
        else:
            cfg.api_key = {"BearerToken": creds}
            cfg.api_key_prefix = {"BearerToken": "Bearer"}
        return cfg

    def api_client(self, creds: KeyPair | str | None = None) -> Any:
        """A sync ``kubernetes.client.ApiClient`` (admin unless ``creds`` given). Close it."""
        from kubernetes.client import ApiClient

        return ApiClient(self.configuration(creds))

    def aio_api_client(self, creds: KeyPair | str | None = None) -> Any:
        """A ``kubernetes.aio.client.ApiClient``; ``async with`` it or ``await .close()``."""
        from kubernetes.aio.client import ApiClient

        return ApiClient(self.configuration(creds, aio=True))

    def user_credentials(self, user: str, groups: Sequence[str] = ()) -> KeyPair:
        """A client certificate authenticating as ``user`` in ``groups``."""
        return self.ca.client_cert(user, groups)

    def user_api_client(self, user: str, groups: Sequence[str] = ()) -> Any:
        return self.api_client(self.user_credentials(user, groups))

    def user_kubeconfig(self, user: str, groups: Sequence[str] = ()) -> Path:
        assert self.workdir
        path = self.workdir / f"user-{secrets.token_hex(4)}.kubeconfig"
        return self._write_kubeconfig(path, self.user_credentials(user, groups), user)

    def token_kubeconfig(self, token: str, name: str = "token") -> Path:
        assert self.workdir
        path = self.workdir / f"token-{secrets.token_hex(4)}.kubeconfig"
        return self._write_kubeconfig(path, token, name)

    def service_account_token(
        self,
        namespace: str,
        name: str,
        *,
        audiences: Sequence[str] = (),
        expiration_seconds: int = 3600,
        bound_object: dict[str, str] | None = None,
        create: bool = True,
    ) -> str:
        """Issue a token for a ServiceAccount via TokenRequest (creating the SA if missing).

        Without ``audiences`` the token is for the apiserver itself.
        ``bound_object`` (``{"kind": "Pod", "apiVersion": "v1", "name": ..., "uid": ...}``)
        binds it to an object, like kubelet-projected tokens are bound to their pod.
        """
        from kubernetes import client

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            if create:
                with contextlib.suppress(client.ApiException):
                    core.create_namespaced_service_account(
                        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))
                    )
            spec = client.V1TokenRequestSpec(
                audiences=list(audiences) or [SERVICE_ACCOUNT_ISSUER],
                expiration_seconds=expiration_seconds,
                bound_object_ref=(
                    client.V1BoundObjectReference(
                        kind=bound_object["kind"],
                        api_version=bound_object.get("apiVersion"),
                        name=bound_object["name"],
                        uid=bound_object.get("uid"),
                    )
                    if bound_object
                    else None
                ),
            )
            result = core.create_namespaced_service_account_token(
                name, namespace, client.AuthenticationV1TokenRequest(spec=spec)
            )
            return result.status.token

    def service_account_api_client(self, namespace: str, name: str) -> Any:
        return self.api_client(self.service_account_token(namespace, name))

    # ------------------------------------------------------------------ namespaces

    @staticmethod
    def _ensure_default_service_account(core: Any, namespace: str) -> None:
        from kubernetes import client

        try:
            core.create_namespaced_service_account(
                namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="default"))
            )
        except client.ApiException as exc:
            if exc.status != 409:
                raise

    def create_namespace(
        self,
        name: str | None = None,
        *,
        prefix: str = "test-",
        labels: dict[str, str] | None = None,
    ) -> str:
        """Create a namespace (random name unless given) with its ``default`` ServiceAccount."""
        from kubernetes import client

        name = name or f"{prefix}{secrets.token_hex(4)}"
        with self.api_client() as api:
            core = client.CoreV1Api(api)
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
            )
            self._ensure_default_service_account(core, name)
        return name

    def delete_namespace(self, name: str, *, timeout: float = 30.0) -> None:
        """Delete a namespace and everything in it.

        With no namespace controller running this does its job: delete every
        namespaced resource in it (dropping finalizers of stragglers), then
        finalize the namespace.
        """
        from kubernetes import client

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            try:
                core.delete_namespace(name)
            except client.ApiException as exc:
                if exc.status == 404:
                    return
                raise
            paths = _namespaced_collection_paths(api, name)
            deadline = time.monotonic() + timeout
            while True:
                remaining = _purge(api, paths)
                if not remaining:
                    break
                if time.monotonic() > deadline:
                    raise ClusterError(f"namespace {name} still holds {remaining}")
                time.sleep(0.1)
            with contextlib.suppress(client.ApiException):
                ns = core.read_namespace(name)
                ns.spec.finalizers = []
                core.replace_namespace_finalize(name, ns)

    # ------------------------------------------------------------------ etcd

    def _etcd_call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(
            f"{self.etcd_url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as resp:
            return json.load(resp)

    def etcd_revision(self) -> int:
        """etcd's current revision (the newest resourceVersion in the cluster)."""
        result = self._etcd_call("/v3/kv/range", {"key": _b64(b"/"), "limit": 1})
        return int(result["header"]["revision"])

    def compact(self, revision: int | None = None) -> int:
        """Compact etcd up to ``revision`` (default: the current one) and return it.

        Afterwards a watch (or a list with resourceVersionMatch=Exact) from an
        older resourceVersion gets 410 Gone, as long as the watch cache is off.
        """
        revision = revision or self.etcd_revision()
        self._etcd_call("/v3/kv/compaction", {"revision": str(revision), "physical": True})
        return revision

    # ------------------------------------------------------------------ logs

    def log_offsets(self) -> dict[str, int]:
        offsets = {}
        for name, path in self.log_files.items():
            try:
                offsets[name] = path.stat().st_size
            except OSError:
                offsets[name] = 0
        return offsets

    def log_tail(
        self, lines: int = 100, since: dict[str, int] | None = None
    ) -> Iterator[tuple[str, str]]:
        """(name, text) of the last ``lines`` of each log, optionally since offsets."""
        if not self.workdir:
            return
        for name, path in self.log_files.items():
            yield name, _tail(path, lines, (since or {}).get(name, 0))


def raw_request(
    api: Any,
    method: str,
    path: str,
    *,
    body: Any = None,
    query: Sequence[tuple[str, Any]] = (),
    content_type: str | None = None,
) -> Any:
    """Call any API path with a sync ``ApiClient``; return the decoded JSON body."""
    headers = {"Accept": "application/json"}
    if body is not None:
        headers["Content-Type"] = content_type or "application/json"
    request = api.param_serialize(
        method=method,
        resource_path=path,
        query_params=list(query),
        header_params=headers,
        body=body,
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*request)
    response.read()
    return api.response_deserialize(response, {"2XX": "object"}).data


def _namespaced_collection_paths(api: Any, namespace: str) -> list[str]:
    """URL paths of every namespaced resource collection that supports deletecollection."""
    paths: list[str] = []
    seen: set[tuple[str, str]] = set()

    def add(prefix: str, group: str) -> None:
        for res in raw_request(api, "GET", prefix).get("resources", []):
            if (
                res.get("namespaced")
                and "/" not in res["name"]
                and {"deletecollection", "list"} <= set(res.get("verbs", []))
                and (group, res["name"]) not in seen
            ):
                seen.add((group, res["name"]))
                paths.append(f"{prefix}/namespaces/{namespace}/{res['name']}")

    add("/api/v1", "")
    for group in raw_request(api, "GET", "/apis").get("groups", []):
        # The preferred version first; then the others, for resources only they serve (a
        # group's kinds may each live in a different version, as dapr.io's do).
        preferred = group["preferredVersion"]["groupVersion"]
        add(f"/apis/{preferred}", group["name"])
        for version in group.get("versions", []):
            if version["groupVersion"] != preferred:
                add(f"/apis/{version['groupVersion']}", group["name"])
    return paths


def _purge(api: Any, paths: list[str]) -> list[str]:
    """Delete everything under ``paths``; return names of what is still there."""
    from kubernetes import client

    remaining: list[str] = []
    for path in paths:
        try:
            items = raw_request(api, "GET", path).get("items") or []
        except client.ApiException as exc:
            if exc.status in (404, 405):
                continue
            raise
        if not items:
            continue
        for item in items:
            meta = item["metadata"]
            if meta.get("finalizers") and meta.get("deletionTimestamp"):
                with contextlib.suppress(client.ApiException):
                    raw_request(
                        api,
                        "PATCH",
                        f"{path}/{meta['name']}",
                        body={"metadata": {"finalizers": None}},
                        content_type="application/merge-patch+json",
                    )
        with contextlib.suppress(client.ApiException):
            raw_request(api, "DELETE", path, query=[("gracePeriodSeconds", 0)])
        remaining.extend(f"{path}/{item['metadata']['name']}" for item in items)
    return remaining
