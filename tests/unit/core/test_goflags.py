"""Go pflag syntax, parsed by the real launcher commands (nothing is launched)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from daprplane.core import cli, goflags
from daprplane.core.component import ComponentSpec
from daprplane.core.flags import SHARED, boolean, duration, integer, string, string_slice
from daprplane.core.host import PluginHost

FLAGS = (
    string("mode", "standalone", "mode"),
    integer("port", 50005, "port"),
    boolean("tls-enabled", False, "tls"),
    boolean("metadata-enabled", True, "metadata"),
    duration("disseminate-timeout", "8s", "timeout"),
    string_slice("initial-cluster", ("p0=127.0.0.1:8201",), "peers"),
    integer("replicationFactor", 100, "camelCase as Dapr spells it"),
    integer("max-api-level", 10, "old", deprecated="it does nothing"),
)


async def _never(_: Any) -> None:  # pragma: no cover - nothing is launched here
    raise AssertionError


def command() -> click.Command:
    spec = ComponentSpec(name="demo", summary="demo", run=_never, flags=FLAGS)
    return cli.component_command(spec, PluginHost(environ={}))


def parse(*args: str) -> dict[str, Any]:
    with command().make_context("demo", list(args)) as ctx:
        return dict(ctx.params)


def test_defaults_are_daprs() -> None:
    values = parse()
    assert values["port"] == 50005
    assert values["tls_enabled"] is False
    assert values["disseminate_timeout"] == timedelta(seconds=8)
    assert values["initial_cluster"] == ("p0=127.0.0.1:8201",)
    assert values["replication_factor"] == 100
    assert values["log_level"] == "info"
    assert values["metrics_port"] == "9090"
    assert values["healthz_port"] == 8080
    assert values["enable_metrics"] is True


@pytest.mark.parametrize(
    "args",
    [
        ["--port=6000"],
        ["--port", "6000"],
        ["-port=6000"],
        ["-port", "6000"],
    ],
)
def test_every_value_form(args: list[str]) -> None:
    assert parse(*args)["port"] == 6000


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--tls-enabled"], True),
        (["-tls-enabled"], True),
        (["--tls-enabled=true"], True),
        (["--tls-enabled=false"], False),
        (["--tls-enabled=0"], False),
        (["--tls-enabled=T"], True),
        (["-tls-enabled=FALSE"], False),
    ],
)
def test_booleans(args: list[str], expected: bool) -> None:
    assert parse(*args)["tls_enabled"] is expected


def test_bare_boolean_does_not_take_the_next_argument() -> None:
    # pflag reads "--metadata-enabled false" as a bare true followed by a stray argument.
    with pytest.raises(click.UsageError):
        parse("--metadata-enabled", "false")


def test_a_value_that_looks_like_a_flag_is_still_a_value() -> None:
    assert parse("--mode", "--tls-enabled")["mode"] == "--tls-enabled"
    assert parse("--mode", "--tls-enabled")["tls_enabled"] is False


@pytest.mark.parametrize(
    ("text", "expected"),
    [("8s", 8), ("1m30s", 90), ("500ms", 0.5), ("2h0m0s", 7200), ("0", 0)],
)
def test_go_durations(text: str, expected: float) -> None:
    assert parse(f"--disseminate-timeout={text}")["disseminate_timeout"] == timedelta(
        seconds=expected
    )


def test_string_slices_split_on_commas_and_append() -> None:
    values = parse("--initial-cluster", "a=1,b=2", "--initial-cluster=c=3")
    assert values["initial_cluster"] == ("a=1", "b=2", "c=3")


def test_camel_case_flag_name() -> None:
    assert parse("--replicationFactor=7")["replication_factor"] == 7
    assert parse("-replicationFactor", "9")["replication_factor"] == 9


def test_deprecated_flag_is_accepted_with_a_notice(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse("--max-api-level=20")["max_api_level"] == 20
    assert "Flag --max-api-level has been deprecated, it does nothing" in capsys.readouterr().err


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["-bogus=1"],
        ["--port=abc"],
        ["--tls-enabled=maybe"],
        ["--disseminate-timeout=8"],
        ["--disseminate-timeout=fast"],
        ["--port"],
    ],
)
def test_bad_flags_exit_2_with_usage(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        command().main(args=args, prog_name="demo", standalone_mode=True)
    assert exited.value.code == 2
    assert "Usage: demo" in capsys.readouterr().err


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (["--help"], ["-h"], ["-help"]):
        with pytest.raises(SystemExit) as exited:
            command().main(args=args, prog_name="demo")
        assert exited.value.code == 0
        out = capsys.readouterr().out
        assert "--disseminate-timeout" in out
        assert "--max-api-level" not in out  # deprecated flags are hidden, as pflag hides them


def test_normalize_leaves_double_dash_terminator_alone() -> None:
    assert goflags.normalize(["-port", "1", "--", "-x"], FLAGS) == ["--port", "1", "--", "-x"]


def test_shared_flags_are_present_once() -> None:
    names = [flag.name for flag in SHARED]
    assert len(names) == len(set(names)) == 8


ARG = st.one_of(
    st.sampled_from(["--port", "-port", "--tls-enabled", "--mode", "--", "-h", "=", "-", "--x"]),
    st.text(max_size=12),
)


@given(st.lists(ARG, max_size=6))
def test_any_command_line_parses_or_exits_cleanly(args: list[str]) -> None:
    try:
        with command().make_context("demo", list(args)) as ctx:
            assert set(ctx.params) >= {"port", "tls_enabled", "initial_cluster"}
    except click.ClickException as error:
        assert error.exit_code == 2
    except click.exceptions.Exit as exit_:
        assert exit_.exit_code == 0


@click.command("echo")
@click.option("--word", default="")
def _echo(word: str) -> None:
    click.echo(f"echo:{word}")


def test_component_with_tools_runs_a_tool_instead_of_launching() -> None:
    spec = ComponentSpec(name="demo", summary="demo", run=_never, flags=FLAGS, commands=[_echo])
    group = cli.component_command(spec, PluginHost(environ={}))
    runner = CliRunner()
    result = runner.invoke(group, ["-port", "6000", "echo", "--word", "-x"])
    assert result.exit_code == 0, result.output
    # The tool's arguments are its own: "-x" is not rewritten as a Go flag.
    assert result.output == "echo:-x\n"
    with group.make_context("demo", ["-tls-enabled", "-port", "7"]) as ctx:
        assert ctx.params["tls_enabled"] is True and ctx.params["port"] == 7
