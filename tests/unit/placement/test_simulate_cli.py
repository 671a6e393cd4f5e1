"""``daprplane placement simulate``: through click's runner and through the console script."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from daprplane.plugins.placement.cli import COMMANDS, simulate

BIN = Path(sys.executable).parent


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(simulate, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_commands_are_exported() -> None:
    assert [c.name for c in COMMANDS] == ["locate", "simulate"]


def test_text_report() -> None:
    code, out, _ = run("--hosts", "8", "--actors", "20k", "--scenario", "scale-out:2")
    assert code == 0, out
    assert out.startswith("scenario scale-out:2: 20,000 actors, replication factor 100")
    assert "before        8" in out and "after        10" in out
    assert "(ideal 20.00%)" in out


@pytest.mark.parametrize("ring", ["rust", "python"])
def test_json_is_reproducible_and_ring_independent(ring: str) -> None:
    args = [
        "--hosts",
        "6",
        "--actors",
        "9000",
        "--replication-factor",
        "20",
        "--scenario",
        "scale-in:1",
        "--json",
        "--chunk",
        "4000",
    ]
    outputs = []
    for choice in (ring, "rust" if ring == "python" else "python"):
        code, out, _ = run(*args, "--ring", choice)
        assert code == 0, out
        data = json.loads(out)
        assert data["ring"] == choice
        data.pop("ring")
        data.pop("seconds")
        outputs.append(data)
    assert outputs[0] == outputs[1]
    assert outputs[0]["hosts_before"] == 6 and outputs[0]["hosts_after"] == 5
    assert 0 < outputs[0]["moved_fraction"] < 0.5


def test_host_names_and_per_host_json() -> None:
    code, out, _ = run("--hosts", "a:1,b:1,c:1", "--actors", "3000", "--json", "--per-host")
    assert code == 0, out
    data = json.loads(out)
    assert set(data["before"]["per_host"]) == {"a:1", "b:1", "c:1"}
    assert sum(data["before"]["per_host"].values()) == 3000


def test_rolling_restart_report() -> None:
    code, out, _ = run("--hosts", "4", "--actors", "2000", "--scenario", "rolling-restart")
    assert code == 0, out
    assert "during the restart: 8 table changes" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scenario", "explode"], "unknown scenario"),
        (["--actors", "lots"], "not a count"),
        (["--hosts", "0"], "at least one host"),
        (["--hosts", "a,a"], "unique"),
        (["--replication-factor", "0"], "replication-factor"),
    ],
)
def test_bad_arguments_exit_2(args: list[str], message: str) -> None:
    code, _, err = run(*args)
    assert code == 2 and message in err


def test_impossible_scenario_exits_1() -> None:
    code, _, err = run("--hosts", "3", "--scenario", "scale-in:3")
    assert code == 1
    assert err == "error: scale-in:3 would remove every one of the 3 hosts\n"


def test_plot_without_matplotlib_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import fails as if not installed
    code, out, err = run("--plot", "/tmp/never-written.png", "--actors", "10")
    assert code == 1 and out == ""
    assert "pip install 'daprplane[plot]'" in err


def test_plot_writes_a_png(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    target = tmp_path / "loads.png"
    code, out, _ = run(
        "--hosts", "5", "--actors", "5000", "--scenario", "rolling-restart", "--plot", str(target)
    )
    assert code == 0, out
    assert target.read_bytes().startswith(b"\x89PNG")


def _wired() -> bool:
    help_text = subprocess.run(
        [str(BIN / "daprplane"), "placement", "--help"],
        capture_output=True,
        text=True,
        env={},
        cwd="/",
        timeout=60,
    ).stdout
    return "simulate" in help_text


def test_console_script() -> None:
    assert _wired(), "`daprplane placement --help` does not list `simulate`"
    result = subprocess.run(
        [
            str(BIN / "daprplane"),
            "placement",
            "simulate",
            "--hosts",
            "5",
            "--actors",
            "1M",
            "--scenario",
            "scale-out:1",
            "--json",
        ],
        capture_output=True,
        text=True,
        env={},
        cwd="/",
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["actors"] == 1_000_000 and data["hosts_after"] == 6
    assert data["after"]["actors"] == 1_000_000


def test_console_script_error_exits_1() -> None:
    assert _wired(), "`daprplane placement --help` does not list `simulate`"
    result = subprocess.run(
        [str(BIN / "daprplane"), "placement", "simulate", "--scenario", "scale-in:99"],
        capture_output=True,
        text=True,
        env={},
        cwd="/",
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        "error: scale-in:99 would remove every one of the 10 hosts"
    )


def _simulate_in_subprocess(
    prelude: str, *args: str, **popen: object
) -> subprocess.CompletedProcess[str]:
    script = f"{prelude}\nfrom daprplane.core.cli import main\nmain()\n"
    return subprocess.run(
        [sys.executable, "-c", script, "placement", "simulate", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
        **popen,  # type: ignore[call-overload]
    )


def test_simulate_needs_neither_grpc_nor_protobuf() -> None:
    # ``None`` in sys.modules makes an import fail as if the package were not installed.
    hide = "import sys\nfor name in ('grpc', 'google', 'google.protobuf'): sys.modules[name] = None"
    result = _simulate_in_subprocess(hide, "--hosts", "4", "--actors", "2000", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["actors"] == 2000


def test_a_broken_ring_extension_is_one_clear_line(tmp_path: Path) -> None:
    import shutil

    import daprplane

    package = Path(daprplane.__file__).parent
    copy = tmp_path / "daprplane"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "ring" / "_ring_rs.abi3.so").write_bytes(b"\x7fELF but not really")
    result = _simulate_in_subprocess(
        "", "--hosts", "3", "--actors", "100", "--ring", "rust", env={"PYTHONPATH": str(tmp_path)}
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: the placement ring cannot be loaded: ")
    assert "Traceback" not in result.stderr
