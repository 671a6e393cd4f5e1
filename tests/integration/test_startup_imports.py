"""What each launcher imports on its way to healthy, or to a fatal start-up error.

Start-up time is mostly imports, so these tests pin down the ones a component and its flags do
not need: another component's code, the Kubernetes client in standalone mode, plotting, the
local supervisor, aiohttp for the healthz and metrics ports. The launchers run as real
subprocesses under ``python -X importtime``, which lists every module the process imported.
Only the built-in plugins load (``DAPRPLANE_PLUGINS``), as in the container image.
``-X importtime`` reports ``import`` statements, not ``importlib.import_module`` calls (which
is how entry points and a component's service module are loaded), so the tests look at the
modules those import.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.launchers import free_port, script, wait_until_healthy

BUILT_IN = {"DAPRPLANE_PLUGINS": "placement,sentry,injector,operator,injector-registry-mirror"}
_IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s*(\S+)$", re.MULTILINE)


def imported(stderr: str) -> set[str]:
    return set(_IMPORTED.findall(stderr))


def _importtime(name: str, *args: str) -> list[str]:
    return [sys.executable, "-X", "importtime", script(name), *args]


def run_until_healthy(name: str, *args: str) -> set[str]:
    """Start the launcher, wait for /healthz 200, stop it with SIGTERM; its imported modules."""
    healthz = free_port()
    process = subprocess.Popen(
        _importtime(
            name,
            f"--healthz-port={healthz}",
            "--healthz-listen-address=127.0.0.1",
            f"--metrics-port={free_port()}",
            "--metrics-listen-address=127.0.0.1",
            *args,
        ),
        env=BUILT_IN,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd="/",
    )
    try:
        wait_until_healthy(process, healthz, what=name)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=30)
    assert process.returncode == 0, out + err
    return imported(err)


def run_to_exit(name: str, *args: str, env: dict[str, str] | None = None) -> tuple[str, set[str]]:
    result = subprocess.run(
        _importtime(name, f"--healthz-port={free_port()}", f"--metrics-port={free_port()}", *args),
        env={**BUILT_IN, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout, imported(result.stderr)


def under(modules: set[str], *packages: str) -> set[str]:
    """The modules of ``modules`` that are ``packages`` or inside them."""
    return {m for m in modules if any(m == p or m.startswith(p + ".") for p in packages)}


#: Never needed to run a component: the local supervisor, plotting, the placement tools.
NEVER = ("daprplane.core.local", "matplotlib", "numpy", "daprplane.plugins.placement.cli")


def other_components(modules: set[str], component: str) -> set[str]:
    """Modules of the other built-in components beyond what registering them takes (their
    ``plugin``, ``flags`` and ``hookspecs`` modules)."""
    others = [f"daprplane.plugins.{name}" for name in COMPONENTS if name != component]
    registering = {
        f"{package}.{module}" for package in others for module in ("plugin", "flags", "hookspecs")
    }
    return under(modules, *others) - registering - set(others)


COMPONENTS = ("placement", "sentry", "injector", "operator")


def test_placement_imports_neither_kubernetes_nor_other_components(tmp_path: Path) -> None:
    modules = run_until_healthy(
        "daprplane-placement",
        f"--port={free_port()}",
        "--listen-address=127.0.0.1",
        f"--initial-cluster=dapr-placement-0=127.0.0.1:{free_port()}",
    )
    assert {"grpc", "daprplane.plugins.placement.server"} <= modules  # the measurement works
    assert under(modules, "kubernetes", *NEVER) == set()
    assert other_components(modules, "placement") == set()


def test_standalone_sentry_imports_no_kubernetes_and_no_aiohttp(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("")
    (tmp_path / "creds").mkdir()
    modules = run_until_healthy(
        "daprplane-sentry",
        f"--config={tmp_path / 'config.yaml'}",
        f"--issuer-credentials={tmp_path / 'creds'}",
        f"--port={free_port()}",
        "--listen-address=127.0.0.1",
    )
    assert "grpc" in modules and "daprplane.plugins.sentry.server" in modules
    # The healthz and metrics ports are served without aiohttp.
    assert {"daprplane.core.httpserver", "prometheus_client"} <= modules
    unneeded = under(
        modules,
        "kubernetes",
        "aiohttp",
        "daprplane.core.kube",
        "daprplane.plugins.sentry.validators.jwks",
        "daprplane.plugins.sentry.validators.kubernetes",
        "daprplane.plugins.sentry.oidc",
        *NEVER,
    )
    assert unneeded == set()
    assert other_components(modules, "sentry") == set()


@pytest.mark.parametrize(
    ("launcher", "args", "env", "message"),
    [
        ("daprplane-sentry", ["--mode=bogus"], {}, "Invalid options: invalid mode: bogus"),
        ("daprplane-injector", [], {"NAMESPACE": "x"}, "required key SIDECAR_IMAGE missing"),
        ("daprplane-operator", [], {}, "'NAMESPACE' environment variable not set"),
    ],
)
def test_an_early_fatal_error_exits_before_the_heavy_imports(
    launcher: str, args: list[str], env: dict[str, str], message: str
) -> None:
    out, modules = run_to_exit(launcher, *args, env=env)
    assert message in out
    heavy = under(modules, "grpc", "kubernetes", "aiohttp", "daprplane.core.kube", *NEVER)
    assert heavy == set()


def test_daprplane_still_lists_and_runs_its_lazy_commands() -> None:
    listing = subprocess.run(
        [script("daprplane"), "--help"], env={}, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0
    commands = listing.stdout.split("Commands:")[1].split()
    assert {"up", "status", "placement", "plugins", "version"} <= set(commands)
    for argv in (["up", "--help"], ["status", "--help"], ["placement", "locate", "--help"]):
        result = subprocess.run(
            [script("daprplane"), *argv], env={}, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        assert "Usage:" in result.stdout
    tool = subprocess.run(
        [script("daprplane-placement"), "simulate", "--help"],
        env={},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert tool.returncode == 0 and "Usage: daprplane-placement simulate" in tool.stdout
