"""Run helm on ``deploy/charts/daprplane`` and look into what it renders.

Values are written to a temporary file and passed with ``-f``, as a user's values file would be,
so nested maps and lists reach the chart exactly as given.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tests.helm.binary import helm_binary

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "deploy" / "charts" / "daprplane"
CHART_CRDS_DIR = CHART_DIR / "crds"
DEPLOY_CRDS_DIR = REPO_ROOT / "deploy" / "crds"
HELM_TIMEOUT = 120.0


class HelmError(RuntimeError):
    """helm exited non-zero; the message carries its output."""


def run_helm(
    *args: str, values: Mapping[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm with ``args`` (and ``-f <values>`` when given); never raises on exit codes."""
    with tempfile.TemporaryDirectory(prefix="daprplane-helm-") as scratch:
        command = [str(helm_binary()), *args]
        if values is not None:
            values_file = Path(scratch) / "values.yaml"
            values_file.write_text(yaml.safe_dump(dict(values), sort_keys=False))
            command += ["-f", str(values_file)]
        # helm keeps caches and a repository config under these, and its Kubernetes client a
        # discovery cache under $HOME/.kube: all of it stays in the scratch directory.
        env = {
            "HOME": scratch,
            "HELM_CACHE_HOME": f"{scratch}/cache",
            "HELM_CONFIG_HOME": f"{scratch}/config",
            "HELM_DATA_HOME": f"{scratch}/data",
            "PATH": "/usr/bin:/bin",
        }
        return subprocess.run(
            command, capture_output=True, text=True, env=env, timeout=HELM_TIMEOUT, check=False
        )


def lint(values: Mapping[str, Any] | None = None) -> subprocess.CompletedProcess[str]:
    return run_helm("lint", "--strict", str(CHART_DIR), values=values)


@dataclass(frozen=True)
class Rendered:
    """The documents ``helm template`` printed, with lookups by kind and name."""

    documents: list[dict[str, Any]]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.documents)

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [doc for doc in self.documents if doc["kind"] == kind]

    def names(self, kind: str) -> set[str]:
        return {doc["metadata"]["name"] for doc in self.of_kind(kind)}

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [doc for doc in self.of_kind(kind) if doc["metadata"]["name"] == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {kind} named {name!r} rendered")
        return found[0]

    def workloads(self) -> list[dict[str, Any]]:
        return self.of_kind("Deployment") + self.of_kind("StatefulSet")

    def workload(self, name: str) -> dict[str, Any]:
        found = [doc for doc in self.workloads() if doc["metadata"]["name"] == name]
        if len(found) != 1:
            raise KeyError(f"{len(found)} workloads named {name!r} rendered")
        return found[0]

    def container(self, workload: str) -> dict[str, Any]:
        containers = self.workload(workload)["spec"]["template"]["spec"]["containers"]
        assert len(containers) == 1, f"{workload} has {len(containers)} containers"
        return dict(containers[0])


def render(
    values: Mapping[str, Any] | None = None,
    *,
    release: str = "daprplane",
    namespace: str = "dapr-system",
    include_crds: bool = False,
) -> Rendered:
    """``helm template``; raises :class:`HelmError` when helm refuses the values."""
    args = ["template", release, str(CHART_DIR), "--namespace", namespace]
    if include_crds:
        args.append("--include-crds")
    result = run_helm(*args, values=values)
    if result.returncode != 0:
        raise HelmError(f"helm template failed ({result.returncode}):\n{result.stderr}")
    documents = [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return Rendered(documents)


def env_of(container: Mapping[str, Any]) -> dict[str, Any]:
    """``name -> value`` of a container's env; ``valueFrom`` entries map to that dict."""
    env: dict[str, Any] = {}
    for entry in container.get("env", []):
        assert entry["name"] not in env, f"env {entry['name']} set twice"
        env[entry["name"]] = entry["value"] if "value" in entry else entry["valueFrom"]
    return env
