"""A rendered control-plane pod run as a local process, as the kubelet would run it.

The kubelet starts a container's ``command`` + ``args`` (``$(VAR)`` expanded from its env) with
that env (downward API resolved), with each volume mounted at its ``mountPath``. Here the
container is a process in mount and UTS namespaces of its own: the pod's name is its host name
and every volume is bind-mounted at its exact ``mountPath`` (read-only where the mount says so),
over a private tmpfs on ``/run`` (``/var/run``), so no path in the rendered args or env changes.
The volumes are filled from the API server as the kubelet fills them:

* ConfigMap and Secret volumes (and projected sources): their keys as files;
* projected ServiceAccount tokens: TokenRequest for the pod's ServiceAccount with the volume's
  audience and lifetime, bound to the real Pod object;
* downward API files: the pod's namespace and name;
* emptyDir: an empty, world-writable directory.

The Pod is created from the workload's template first (with the name a controller would give
it), and its stored copy is what runs: admission adds the ``kube-api-access`` volume there, so
the process finds its ServiceAccount token and CA where every pod does and uses the in-cluster
configuration. ``KUBERNETES_SERVICE_HOST``/``_PORT`` name the test API server itself, which a
pod reaches through the ``kubernetes`` Service's ClusterIP; ``HOSTNAME`` is the pod's name, as
the container runtime sets it.

Two things differ from the container, because of this machine rather than the chart: the
process runs as root (this machine's Python lives where only root may read, so ``runAsUser``
65532 cannot start it), with Dapr's opt-out of its root check,
``DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true``; and the ports given as overrides replace the
rendered ones (:func:`override_flags`). Namespaces need root; :func:`isolation_unavailable`
says why they cannot be had.
"""

from __future__ import annotations

import base64
import os
import secrets
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from daprplane.core.security.usergroup import SKIP_VARIABLE
from tests.helm.launchers import expand, resolved_environ
from tests.integration.launchers import script
from tests.k8s.cluster import KubeCluster, raw_request

#: The kubelet's default file mode of configMap, secret and projected volumes (0644).
FILE_MODE = 0o644
DIRECTORY_MODE = 0o755
#: Inside the process's mount namespace: where the pod's directory is visible while the
#: volumes are mounted (a volume may be mounted over the directory the pod's files live in).
STAGING = "/run/.daprplane-pod"
#: Where directories of this Python installation wait while volumes are mounted over them.
KEPT = "/run/.daprplane-kept"
TOOLS = ("setpriv", "unshare", "sh", "mount", "mkdir", "hostname")


def pod_name(workload: Mapping[str, Any]) -> str:
    """The name the workload's controller would give its first pod."""
    name = str(workload["metadata"]["name"])
    if workload["kind"] == "StatefulSet":
        return f"{name}-0"
    return f"{name}-{secrets.token_hex(5)}-{secrets.token_hex(3)[:5]}"


def pod_from_template(workload: Mapping[str, Any], name: str) -> dict[str, Any]:
    """The Pod a Deployment's or StatefulSet's controller would create from its template."""
    template = workload["spec"]["template"]
    metadata = dict(template.get("metadata") or {})
    metadata.update(name=name, namespace=workload["metadata"]["namespace"])
    return {"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]}


def create_pod(api: Any, pod: Mapping[str, Any]) -> dict[str, Any]:
    """POST the pod; the stored copy (after admission) is returned."""
    namespace = pod["metadata"]["namespace"]
    stored: dict[str, Any] = raw_request(
        api, "POST", f"/api/v1/namespaces/{namespace}/pods", body=dict(pod)
    )
    return stored


def isolation_unavailable() -> str | None:
    """Why pods cannot get mount and UTS namespaces here, or ``None`` when they can."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        return f"missing {', '.join(missing)}"
    probe = subprocess.run(
        ["unshare", "--mount", "--uts", "--propagation", "private", "--", "true"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return f"cannot create mount and UTS namespaces: {probe.stderr.strip()}"
    return None


# -- volumes ---------------------------------------------------------------------------------------


def _write(path: Path, content: bytes) -> None:
    """Replace ``path`` atomically: components watching a file never read half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    scratch.write_bytes(content)
    scratch.chmod(FILE_MODE)
    os.replace(scratch, path)


def _object_data(api: Any, namespace: str, kind: str, name: str) -> dict[str, bytes] | None:
    """The keys of a ConfigMap or Secret as bytes; ``None`` when it does not exist."""
    from kubernetes import client

    plural = "configmaps" if kind == "configMap" else "secrets"
    try:
        body = raw_request(api, "GET", f"/api/v1/namespaces/{namespace}/{plural}/{name}")
    except client.ApiException as exc:
        if exc.status == 404:
            return None
        raise
    if kind == "configMap":
        data = {key: value.encode() for key, value in (body.get("data") or {}).items()}
        binary = body.get("binaryData") or {}
        data.update({key: base64.b64decode(value) for key, value in binary.items()})
        return data
    return {key: base64.b64decode(value) for key, value in (body.get("data") or {}).items()}


def _selected(data: Mapping[str, bytes], items: list[dict[str, Any]] | None) -> dict[str, bytes]:
    """``items`` (key -> path) of a volume source, or every key when it lists none."""
    if not items:
        return dict(data)
    return {item["path"]: data[item["key"]] for item in items if item["key"] in data}


@dataclass
class PodRoot:
    """One pod's volumes on this machine (``<root>/volumes/<name>``) and how they are filled."""

    cluster: KubeCluster
    api: Any
    pod: dict[str, Any]  # the stored Pod
    root: Path

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.pod["metadata"]["namespace"])

    @property
    def container(self) -> dict[str, Any]:
        containers = self.pod["spec"]["containers"]
        assert len(containers) == 1, f"pod {self.name} has {len(containers)} containers"
        return dict(containers[0])

    def volume_dir(self, name: str) -> Path:
        return self.root / "volumes" / name

    def file(self, mount_path: str, relative: str) -> Path:
        """Where the file the container sees at ``<mount_path>/<relative>`` lives here."""
        (name,) = (
            m["name"] for m in self.container["volumeMounts"] if m["mountPath"] == mount_path
        )
        return self.volume_dir(name) / relative

    def materialise(self) -> None:
        """Write every mounted volume's content, as the kubelet does at start and on sync."""
        volumes = {volume["name"]: volume for volume in self.pod["spec"].get("volumes", [])}
        for directory in (self.root, self.root / "volumes"):
            directory.mkdir(exist_ok=True)
            directory.chmod(DIRECTORY_MODE)
        for mount in self.container["volumeMounts"]:
            volume = volumes[mount["name"]]
            target = self.volume_dir(volume["name"])
            target.mkdir(exist_ok=True)
            target.chmod(0o1777 if "emptyDir" in volume else DIRECTORY_MODE)
            for relative, content in self._files(volume).items():
                _write(target / relative, content)

    def _files(self, volume: Mapping[str, Any]) -> dict[str, bytes]:
        if "emptyDir" in volume:
            return {}
        if "configMap" in volume or "secret" in volume:
            return self._source_files(volume)
        if "projected" in volume:
            files: dict[str, bytes] = {}
            for source in volume["projected"]["sources"]:
                files.update(self._source_files(source))
            return files
        raise NotImplementedError(f"volume {volume['name']}: no stand-in for {sorted(volume)}")

    def _source_files(self, source: Mapping[str, Any]) -> dict[str, bytes]:
        if "serviceAccountToken" in source:
            spec = source["serviceAccountToken"]
            return {spec["path"]: self.token(spec.get("audience"), spec["expirationSeconds"])}
        if "downwardAPI" in source:
            fields = {"metadata.namespace": self.namespace, "metadata.name": self.name}
            return {
                item["path"]: fields[item["fieldRef"]["fieldPath"]].encode()
                for item in source["downwardAPI"]["items"]
            }
        kind = "configMap" if "configMap" in source else "secret"
        spec = source[kind]
        name = spec.get("name") or spec.get("secretName")
        data = _object_data(self.api, self.namespace, kind, name)
        if data is None:
            if spec.get("optional"):
                return {}
            raise LookupError(f"{kind} {self.namespace}/{name} of pod {self.name} does not exist")
        return _selected(data, spec.get("items"))

    def token(self, audience: str | None, expiration_seconds: int) -> bytes:
        """A ServiceAccount token of this pod, bound to it (what a projected volume holds)."""
        token = self.cluster.service_account_token(
            self.namespace,
            self.pod["spec"]["serviceAccountName"],
            audiences=[audience] if audience else [],
            expiration_seconds=expiration_seconds,
            bound_object={
                "kind": "Pod",
                "apiVersion": "v1",
                "name": self.name,
                "uid": self.pod["metadata"]["uid"],
            },
            create=False,
        )
        return token.encode()

    def remove(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


# -- the process -----------------------------------------------------------------------------------


def override_flags(args: list[str], overrides: Mapping[str, str]) -> list[str]:
    """``args`` with each ``--flag`` of ``overrides`` set to its value: replaced where the args
    give it (``--flag value`` or ``--flag=value``), appended otherwise."""
    result = list(args)
    for flag, value in overrides.items():
        for index, arg in enumerate(result):
            if arg == flag and index + 1 < len(result):
                result[index + 1] = value
                break
            if arg.startswith(f"{flag}="):
                result[index] = f"{flag}={value}"
                break
        else:
            result.append(f"{flag}={value}")
    return result


@dataclass(frozen=True)
class Launch:
    """How to start one pod's container here."""

    #: The container's own command line (ports overridden), as it runs inside the namespaces.
    command: list[str]
    env: dict[str, str]
    #: ``command`` wrapped: namespaces, mounts and host name set up, then exec'd.
    argv: list[str]


def _tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed"
    return path


def _under(path: str, directory: str) -> bool:
    return path.startswith(directory.rstrip("/") + "/")


def hidden_installation(mount_paths: list[str]) -> list[str]:
    """Directories this Python runs from that a volume would hide (a ``/tmp`` emptyDir over a
    virtualenv under /tmp): the outermost ones, each to be mounted back over the volume."""
    candidates = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, *sys.path) if p}
    hidden = sorted(
        path
        for path in candidates
        if os.path.isdir(path) and any(_under(path, target) for target in mount_paths)
    )
    return [path for path in hidden if not any(_under(path, other) for other in hidden)]


def _mount_script(pod: PodRoot) -> str:
    """Shell steps run inside the new namespaces before the container's command is exec'd."""
    mount, mkdir, hostname = (_tool(name) for name in ("mount", "mkdir", "hostname"))
    steps = [
        "set -e",
        f"{mount} -t tmpfs -o mode=755 daprplane-run /run",
        f"{mkdir} -p {STAGING}",
        f"{mount} --bind {shlex.quote(str(pod.root))} {STAGING}",
    ]
    mounts = sorted(pod.container["volumeMounts"], key=lambda m: len(m["mountPath"]))
    kept = hidden_installation([entry["mountPath"] for entry in mounts])
    for index, path in enumerate(kept):
        keep = shlex.quote(f"{KEPT}/{index}")
        steps += [f"{mkdir} -p {keep}", f"{mount} --bind {shlex.quote(path)} {keep}"]
    # Parents before children, as the kubelet orders nested mounts.
    for entry in mounts:
        source = shlex.quote(f"{STAGING}/volumes/{entry['name']}")
        target = shlex.quote(entry["mountPath"])
        steps += [f"{mkdir} -p {target}", f"{mount} --bind {source} {target}"]
        if entry.get("readOnly"):
            steps.append(f"{mount} -o remount,bind,ro {target}")
    # The launchers run from this test's Python: keep it visible where a volume covers it.
    for index, path in enumerate(kept):
        target = shlex.quote(path)
        steps += [
            f"{mkdir} -p {target}",
            f"{mount} --bind {shlex.quote(f'{KEPT}/{index}')} {target}",
        ]
    steps.append(f"{hostname} {shlex.quote(pod.name)}")
    steps.append('exec "$@"')
    return "\n".join(steps)


def launch_for(pod: PodRoot, port_flags: Mapping[str, int | str]) -> Launch:
    """The container of ``pod`` as a local process (see the module docstring)."""
    container = pod.container
    fields = {"metadata.namespace": pod.namespace, "metadata.name": pod.name}
    environ = resolved_environ(container, fields)
    command = expand([*container.get("command", []), *container.get("args", [])], environ)
    command[0] = script(command[0])  # the image's PATH lookup: the launchers beside this Python
    command = override_flags(command, {f"--{flag}": str(port) for flag, port in port_flags.items()})
    server = urlsplit(pod.cluster.server)
    environ.update(
        KUBERNETES_SERVICE_HOST=str(server.hostname),
        KUBERNETES_SERVICE_PORT=str(server.port),
        HOSTNAME=pod.name,
    )
    if os.geteuid() == 0:
        environ[SKIP_VARIABLE] = "true"
    argv = [
        _tool("setpriv"),
        "--pdeathsig",
        "KILL",  # the component dies with the test process
        "--",
        _tool("unshare"),
        "--mount",
        "--uts",
        "--propagation",
        "private",
        "--",
        _tool("sh"),
        "-c",
        _mount_script(pod),
        "pod",
        *command,
    ]
    return Launch(command, environ, argv)
