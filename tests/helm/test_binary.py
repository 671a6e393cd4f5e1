"""The helm the chart tests use: pinned, stamped with its versions, cached, and overridable."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest

from tests.helm import binary
from tests.helm.chart import run_helm


def executable(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexit 0\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def test_pinned_version_comes_from_the_tools_module() -> None:
    go_mod = (binary.TOOLS_DIR / "go.mod").read_text()
    version = binary.helm_version()
    assert re.fullmatch(r"v3\.\d+\.\d+", version)
    assert f"helm.sh/helm/v3 {version}" in go_mod
    key = binary.cache_key()
    assert re.fullmatch(rf"{re.escape(version)}-[0-9a-f]{{10}}", key)
    assert binary.cache_key() == key


def test_built_helm_reports_its_versions(tmp_path: Path) -> None:
    result = run_helm("version", "--template", "{{ .Version }}")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == binary.helm_version()
    # Templates see the Kubernetes version of helm's client libraries, not helm's v1.20 fallback.
    chart = tmp_path / "probe"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: probe\nversion: 0.1.0\n")
    (chart / "templates" / "version.yaml").write_text(
        "# {{ .Capabilities.KubeVersion.Major }}.{{ .Capabilities.KubeVersion.Minor }}\n"
    )
    rendered = run_helm("template", "probe", str(chart))
    assert rendered.returncode == 0, rendered.stderr
    assert f"# 1.{binary.kube_minor_version()}" in rendered.stdout


def test_override_names_the_binary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = executable(tmp_path / "bin" / "helm")
    monkeypatch.setenv(binary.HELM_ENV, str(fake))
    assert binary.helm_binary() == fake
    monkeypatch.setenv(binary.HELM_ENV, str(tmp_path / "missing"))
    with pytest.raises(RuntimeError, match=binary.HELM_ENV):
        binary.helm_binary()


def test_cached_binary_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(binary.HELM_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cached = executable(tmp_path / "daprplane" / "helm" / binary.cache_key() / "helm")

    def no_build(dest: Path) -> float:
        raise AssertionError(f"helm was built into {dest} although it is cached")

    monkeypatch.setattr(binary, "build", no_build)
    assert binary.helm_binary() == cached
    # Without it, helm_binary builds one.
    cached.unlink()
    with pytest.raises(AssertionError, match="although it is cached"):
        binary.helm_binary()
