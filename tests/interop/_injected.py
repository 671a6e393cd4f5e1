"""From an injected pod to a real ``daprd`` process on this machine, and what its output says.

The injector's patch describes a container; this module turns that container into a process as
faithfully as a machine without a cluster allows, and records every liberty it takes:

- the patch is applied to the pod (RFC 6902, the operations the API server applies), and the
  ``daprd`` container is taken from the result, in ``containers`` or ``initContainers``;
- ``command`` + ``args`` become the argv; the image's ``/daprd`` becomes the real binary, and a
  ``/dlv ... exec /daprd --`` debugger prefix is dropped (no delve here: daprd gets what follows
  the ``--``);
- ports the container listens on in its own network namespace (``--dapr-http-port`` and the
  like) become free loopback ports, since this machine is shared. Two servers daprd runs on a
  fixed default port the command line may not name are moved the same way, by adding the flag:
  the profiler (``--profile-port``, with ``--enable-profiling``) and the metrics server
  (``--metrics-port``, which daprd runs unless told ``--enable-metrics=false``);
- control-plane addresses (cluster Service names) become loopback addresses: sentry's the real
  sentry the caller runs, every other one a :class:`ConnectionRecorder` that accepts and counts
  connections and never answers;
- each volume mount becomes a directory of a sandbox (read-only mounts not writable by daprd),
  and any argument or env value naming a mount path is rewritten to it. daprd reads its
  Kubernetes token from a fixed path, not from anything the container names, so the token
  volume stays empty and daprd asks sentry with no token;
- env ``valueFrom`` becomes literal values: the downward API from the pod, Secrets from the
  caller's table (a missing one fails, as the kubelet would refuse to start the container);
- the process runs with exactly the container's environment (nothing inherited) and, as the
  ``securityContext`` asks for a non-root user, as ``runAsUser`` or the daprd image's user 65532
  when this process is root.

daprd writes text or JSON logs (``--log-as-json``); :func:`parse_output` reads both, and keeps
the lines that are not log records (flag errors and deprecation notices go straight to stderr).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.integration.launchers import free_port
from tests.interop.conftest import LoggedProcess

DAPRD_IMAGE_BINARY = "/daprd"
DAPRD_IMAGE_USER = 65532  # the non-root user of Dapr's distroless daprd image
SIDECAR_NAME = "daprd"

#: Flags whose value is a port daprd listens on inside the pod.
LISTEN_PORT_FLAGS = (
    "--dapr-http-port",
    "--dapr-grpc-port",
    "--dapr-internal-grpc-port",
    "--dapr-public-port",
    "--metrics-port",
)
#: Flags whose value is a comma-separated list of ``host:port`` control-plane addresses.
ADDRESS_FLAGS = (
    "--control-plane-address",
    "--sentry-address",
    "--placement-host-address",
    "--scheduler-host-address",
)
#: Flags whose value is ``<name>:<host>:<port>``.
NAMED_ADDRESS_FLAGS = ("--actors-service", "--reminders-service")

# What daprd (pflag, its option checks, its runtime checks) prints when it refuses a flag or value.
FLAG_ERROR_MARKERS = (
    "flag provided but not defined",
    "unknown flag",
    "unknown shorthand flag",
    "bad flag syntax",
    "flag needs an argument",
    "invalid argument",
    "Failed to parse flags",
    "invalid value for",
    "error parsing",
)

_DEPRECATION = re.compile(r"^Flag --(?P<flag>[\w-]+) has been deprecated, (?P<advice>.*)$")
_TEXT_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S*)')


# -- JSON patch -----------------------------------------------------------------------------


class PatchApplyError(ValueError):
    """The patch does not apply to the document (the API server would refuse it too)."""


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchApplyError(f"JSON pointer {path!r} does not start with '/'")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _list_index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchApplyError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_add):
        raise PatchApplyError(f"array index {index} is out of range ({len(container)} items)")
    return index


def _parent(document: Any, tokens: list[str], path: str) -> Any:
    node = document
    for token in tokens[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_list_index(node, token, for_add=False)]
        else:
            raise PatchApplyError(f"{path}: {token!r} does not exist")
    return node


def apply_json_patch(document: Any, patch: Sequence[Mapping[str, Any]]) -> Any:
    """A copy of ``document`` with the RFC 6902 ``add``/``replace``/``remove`` ops applied."""
    result = copy.deepcopy(document)
    for operation in patch:
        op, path = operation["op"], operation["path"]
        tokens = _pointer(path)
        value = copy.deepcopy(operation.get("value"))
        if not tokens:
            if op in ("add", "replace"):
                result = value
                continue
            raise PatchApplyError(f"cannot {op} the whole document")
        parent, last = _parent(result, tokens, path), tokens[-1]
        if isinstance(parent, dict):
            if op in ("replace", "remove") and last not in parent:
                raise PatchApplyError(f"{path}: nothing to {op}")
            if op == "remove":
                del parent[last]
            elif op in ("add", "replace"):
                parent[last] = value
            else:
                raise PatchApplyError(f"unsupported operation {op!r}")
        elif isinstance(parent, list):
            index = _list_index(parent, last, for_add=op == "add")
            if op == "add":
                parent.insert(index, value)
            elif op == "replace":
                parent[index] = value
            elif op == "remove":
                del parent[index]
            else:
                raise PatchApplyError(f"unsupported operation {op!r}")
        else:
            raise PatchApplyError(f"{path}: the parent is neither an object nor an array")
    return result


def daprd_container(pod: Mapping[str, Any]) -> dict[str, Any]:
    """The one container named ``daprd`` of a pod (a native sidecar is an init container)."""
    spec = pod.get("spec") or {}
    found = [
        container
        for key in ("containers", "initContainers")
        for container in spec.get(key) or []
        if container.get("name") == SIDECAR_NAME
    ]
    if len(found) != 1:
        raise AssertionError(f"expected exactly one {SIDECAR_NAME} container, found {len(found)}")
    return found[0]


# -- the command line -------------------------------------------------------------------------


def daprd_argv(container: Mapping[str, Any]) -> tuple[list[str], list[str]]:
    """``(flags, debugger prefix)``: the container's command line split at the daprd binary."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    if argv and argv[0] == DAPRD_IMAGE_BINARY:
        return argv[1:], []
    if argv and argv[0] == "/dlv" and "--" in argv:
        separator = argv.index("--")
        if argv[separator - 1] != DAPRD_IMAGE_BINARY:
            raise AssertionError(f"the debugger does not exec {DAPRD_IMAGE_BINARY}: {argv}")
        return argv[separator + 1 :], argv[: separator + 1]
    raise AssertionError(f"the daprd container does not run {DAPRD_IMAGE_BINARY}: {argv}")


def flag_value(flags: Sequence[str], flag: str) -> str | None:
    """The value of ``flag`` (``--flag value`` or ``--flag=value``), or None when absent."""
    for index, token in enumerate(flags):
        if token == flag and index + 1 < len(flags):
            return flags[index + 1]
        if token.startswith(flag + "="):
            return token[len(flag) + 1 :]
    return None


def with_flag_value(flags: Sequence[str], flag: str, value: str) -> list[str]:
    """``flags`` with every value of ``flag`` replaced by ``value``."""
    result = list(flags)
    for index, token in enumerate(result):
        if token == flag and index + 1 < len(result):
            result[index + 1] = value
        elif token.startswith(flag + "="):
            result[index] = f"{flag}={value}"
    return result


def declared_ports(container: Mapping[str, Any]) -> dict[str, int]:
    return {port["name"]: int(port["containerPort"]) for port in container.get("ports") or []}


# -- what stands in for the cluster --------------------------------------------------------


class ConnectionRecorder:
    """A loopback port that accepts every connection, says nothing, and counts them.

    Standing in for a control-plane service daprd must not reach here, it shows that daprd got
    as far as dialling it, without letting the dial fail fast (an accepted TLS handshake waits).
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self._listener.settimeout(0.2)
        self._accepted: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"recorder-{name}", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self._listener.getsockname()[1]}"

    @property
    def connections(self) -> int:
        with self._lock:
            return len(self._accepted)

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self._accepted.append(connection)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for connection in self._accepted:
                connection.close()


@dataclass
class Sandbox:
    """A directory the daprd user can enter, holding the volumes of one launch."""

    root: Path

    @classmethod
    def create(cls) -> Sandbox:
        root = Path(tempfile.mkdtemp(prefix="daprd-injected-"))
        root.chmod(0o755)  # mkdtemp's 0700 would shut out daprd's non-root user
        return cls(root)

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def binary_for_daprd_user(binary: Path, directory: Path) -> Path:
    """``binary`` where a non-root user can execute it: the build cache may sit under a
    private home directory, so when this process is root, link (or copy) it into ``directory``."""
    if os.geteuid() != 0:
        return binary
    directory.chmod(0o755)
    target = directory / binary.name
    try:
        os.link(binary, target)
    except OSError:  # another filesystem
        shutil.copy2(binary, target)
    target.chmod(0o755)
    return target


# -- the launch -------------------------------------------------------------------------------


@dataclass
class DaprdLaunch:
    """One daprd process to start: what it runs with and everything that was mapped."""

    argv: list[str]
    env: dict[str, str]
    uid: int | None
    gid: int | None
    cwd: Path
    listen_ports: dict[str, int]  # flag -> the loopback port daprd gets instead
    addresses: dict[str, str]  # control-plane address written -> loopback address used
    mounts: dict[str, Path]  # mountPath -> sandbox directory
    recorders: dict[str, ConnectionRecorder] = field(default_factory=dict)  # by address written
    debugger: list[str] = field(default_factory=list)

    @property
    def flags(self) -> list[str]:
        return self.argv[1:]

    def with_flags(self, flags: Sequence[str]) -> DaprdLaunch:
        return DaprdLaunch(
            [self.argv[0], *flags],
            dict(self.env),
            self.uid,
            self.gid,
            self.cwd,
            dict(self.listen_ports),
            dict(self.addresses),
            dict(self.mounts),
            dict(self.recorders),
            list(self.debugger),
        )

    def describe(self) -> str:
        lines = [f"argv: {self.argv}", f"run as uid={self.uid} gid={self.gid}"]
        lines += [f"port {flag} -> {port}" for flag, port in self.listen_ports.items()]
        lines += [f"address {written} -> {used}" for written, used in self.addresses.items()]
        lines += [f"mount {path} -> {directory}" for path, directory in self.mounts.items()]
        if self.debugger:
            lines.append(f"dropped debugger prefix: {self.debugger}")
        return "\n".join(lines)

    def close(self) -> None:
        for recorder in self.recorders.values():
            recorder.close()


def _split_host_port(address: str) -> tuple[str, int]:
    host, colon, port = address.rpartition(":")
    if not colon or not host or not port.isdigit():
        raise AssertionError(f"{address!r} is not a host:port address")
    return host, int(port)


class _AddressMapper:
    def __init__(self, sentry_address: str) -> None:
        self.sentry_address = sentry_address
        self.addresses: dict[str, str] = {}
        self.recorders: dict[str, ConnectionRecorder] = {}

    def map(self, flag: str, address: str) -> str:
        _split_host_port(address)
        if address not in self.addresses:
            if flag == "--sentry-address":
                self.addresses[address] = self.sentry_address
            else:
                recorder = ConnectionRecorder(f"{flag.removeprefix('--')} {address}")
                self.recorders[address] = recorder
                self.addresses[address] = recorder.address
        return self.addresses[address]

    def map_flags(self, flags: list[str]) -> list[str]:
        for flag in ADDRESS_FLAGS:
            value = flag_value(flags, flag)
            if value:  # an empty list (``--scheduler-host-address ""``) stays empty
                mapped = ",".join(self.map(flag, item.strip()) for item in value.split(","))
                flags = with_flag_value(flags, flag, mapped)
        for flag in NAMED_ADDRESS_FLAGS:
            value = flag_value(flags, flag)
            if value:
                name, _, address = value.partition(":")
                flags = with_flag_value(flags, flag, f"{name}:{self.map(flag, address)}")
        return flags


def _map_path(value: str, mounts: Mapping[str, Path]) -> str:
    for mount_path, directory in mounts.items():
        if value == mount_path or value.startswith(mount_path.rstrip("/") + "/"):
            return str(directory) + value[len(mount_path) :]
    return value


def _run_as(container: Mapping[str, Any]) -> tuple[int | None, int | None]:
    if os.geteuid() != 0:
        return None, None  # not root: already a non-root user, and no way to become another
    context = container.get("securityContext") or {}
    uid = context.get("runAsUser", DAPRD_IMAGE_USER)
    return int(uid), int(context.get("runAsGroup", uid))


def _make_mounts(
    container: Mapping[str, Any], sandbox: Sandbox, uid: int | None, gid: int | None
) -> dict[str, Path]:
    mounts: dict[str, Path] = {}
    for index, mount in enumerate(container.get("volumeMounts") or []):
        directory = sandbox.root / "volumes" / f"{index}-{mount['name']}"
        directory.mkdir(parents=True)
        if mount.get("readOnly"):
            directory.chmod(0o555)
        elif uid is not None:
            os.chown(directory, uid, gid if gid is not None else -1)
        mounts[mount["mountPath"]] = directory
    return mounts


def _field_value(field_path: str, pod: Mapping[str, Any]) -> str:
    metadata = pod.get("metadata") or {}
    values = {
        "metadata.name": metadata.get("name", ""),
        "metadata.namespace": metadata.get("namespace", ""),
        "status.podIP": "127.0.0.1",
        "status.hostIP": "127.0.0.1",
    }
    if field_path not in values:
        raise AssertionError(f"no stand-in for the downward API field {field_path!r}")
    return str(values[field_path])


def resolve_env(
    env: Sequence[Mapping[str, Any]],
    pod: Mapping[str, Any],
    secrets: Mapping[str, Mapping[str, str]],
) -> dict[str, str]:
    """The environment the kubelet would give the container (later duplicates win)."""
    resolved: dict[str, str] = {}
    for variable in env:
        name = variable["name"]
        source = variable.get("valueFrom")
        if source is None:
            value = str(variable.get("value", ""))
            # The kubelet expands $(VAR); nothing here does, so such a value would be untrue.
            assert "$(" not in value, f"env {name} uses $(...) expansion: {value!r}"
        elif "fieldRef" in source:
            value = _field_value(source["fieldRef"]["fieldPath"], pod)
        elif "secretKeyRef" in source:
            reference = source["secretKeyRef"]
            secret = secrets.get(reference.get("name", ""), {})
            if reference["key"] not in secret:
                raise AssertionError(
                    f"env {name} reads key {reference['key']!r} of Secret "
                    f"{reference.get('name')!r}, which the test does not provide"
                )
            value = secret[reference["key"]]
        else:
            raise AssertionError(f"env {name}: no stand-in for {sorted(source)}")
        resolved[name] = value
    return resolved


def plan_launch(
    container: Mapping[str, Any],
    pod: Mapping[str, Any],
    *,
    binary: Path,
    sentry_address: str,
    secrets: Mapping[str, Mapping[str, str]],
    sandbox: Sandbox,
) -> DaprdLaunch:
    """Map the ``daprd`` container onto this machine (see the module docstring)."""
    flags, debugger = daprd_argv(container)
    uid, gid = _run_as(container)
    mounts = _make_mounts(container, sandbox, uid, gid)

    listen_ports: dict[str, int] = {}
    for flag in LISTEN_PORT_FLAGS:
        if flag_value(flags, flag) is not None:
            listen_ports[flag] = free_port()
            flags = with_flag_value(flags, flag, str(listen_ports[flag]))
    added = []
    if "--enable-profiling" in flags:
        added.append("--profile-port")
    if "--metrics-port" not in listen_ports:
        added.append("--metrics-port")
    for flag in added:
        # daprd's default port for this server: fixed in a pod, shared here.
        listen_ports[flag] = free_port()
        flags = [*flags, flag, str(listen_ports[flag])]

    addresses = _AddressMapper(sentry_address)
    flags = addresses.map_flags(flags)
    flags = [_map_path(token, mounts) for token in flags]

    env = resolve_env(container.get("env") or [], pod, secrets)
    env = {name: _map_path(value, mounts) for name, value in env.items()}
    return DaprdLaunch(
        [str(binary), *flags],
        env,
        uid,
        gid,
        sandbox.root,
        listen_ports,
        addresses.addresses,
        mounts,
        addresses.recorders,
        debugger,
    )


def start_daprd(launch: DaprdLaunch, name: str, log_path: Path) -> LoggedProcess:
    """Start daprd as planned, its stdout and stderr going to ``log_path``."""
    identity: dict[str, Any] = {}
    if launch.uid is not None:
        identity = {"user": launch.uid, "group": launch.gid, "extra_groups": []}
    with log_path.open("wb") as log:
        popen = subprocess.Popen(
            launch.argv,
            env=launch.env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=launch.cwd,
            **identity,
        )
    return LoggedProcess(name, popen, log_path)


# -- daprd's output -------------------------------------------------------------------------


@dataclass(frozen=True)
class LogRecord:
    level: str
    message: str
    fields: dict[str, Any]
    as_json: bool


@dataclass(frozen=True)
class DaprdOutput:
    records: list[LogRecord]
    other_lines: list[str]  # not log records: pflag's errors, usage, deprecation notices

    def messages(self) -> Iterator[str]:
        return (record.message for record in self.records)

    def has_message(self, fragment: str) -> bool:
        return any(fragment in message for message in self.messages())

    def at_level(self, *levels: str) -> list[LogRecord]:
        return [record for record in self.records if record.level in levels]

    def deprecated_flags(self) -> dict[str, str]:
        """Flag (without dashes) -> daprd's advice, from its deprecation notices."""
        found = {}
        for line in self.other_lines:
            match = _DEPRECATION.match(line.strip())
            if match:
                found[match["flag"]] = match["advice"]
        return found

    def flag_problems(self) -> list[str]:
        """Every line (record or not) in which daprd refuses a flag or a flag's value."""
        lines = [*self.other_lines, *(record.message for record in self.records)]
        return [line for line in lines if any(marker in line for marker in FLAG_ERROR_MARKERS)]


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return str(json.loads(value))
        except ValueError:
            return value[1:-1]
    return value


def _parse_line(line: str) -> LogRecord | None:
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        if isinstance(data, dict) and "level" in data and "msg" in data:
            return LogRecord(str(data["level"]), str(data["msg"]), data, as_json=True)
        return None
    if not line.startswith("time="):
        return None
    fields = {key: _unquote(value) for key, value in _TEXT_FIELD.findall(line)}
    if "level" not in fields or "msg" not in fields:
        return None
    return LogRecord(fields["level"], fields["msg"], fields, as_json=False)


def parse_output(text: str) -> DaprdOutput:
    records, other = [], []
    for line in text.splitlines():
        if not line.strip():
            continue
        record = _parse_line(line)
        if record is None:
            other.append(line)
        else:
            records.append(record)
    return DaprdOutput(records, other)
