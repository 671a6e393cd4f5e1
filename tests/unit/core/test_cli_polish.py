"""The launchers' help, flag errors, ``--version``, ``plugins`` and JSON errors, through click.

The commands are the real ones (``cli.main``'s group, the component commands, ``status``); only
the process around them is click's test runner.
"""

from __future__ import annotations

import json
import re
from typing import Any

import click
import pytest
from click.testing import CliRunner

from daprplane import __version__
from daprplane.core import cli
from daprplane.core.component import ComponentSpec
from daprplane.core.flags import integer, string, string_slice
from daprplane.core.host import PluginHost, PluginRecord, Status
from daprplane.core.local.commands import status

FLAGS = (
    integer("port", 50005, "port"),
    string("trust-anchors-file", "/ca.crt", "anchors"),
    string_slice("allowed-hosts", (), "hosts"),
    string_slice("initial-cluster", ("p0=127.0.0.1:8201",), "peers"),
)


async def _never(_: Any) -> None:  # pragma: no cover - nothing is launched here
    raise AssertionError


def command() -> click.Command:
    spec = ComponentSpec(name="demo", summary="demo", run=_never, flags=FLAGS)
    return cli.component_command(spec, PluginHost(environ={}))


def invoke(target: click.Command, *args: str) -> Any:
    return CliRunner().invoke(target, list(args), prog_name="demo")


def option_line(help_text: str, flag: str) -> str:
    return next(line for line in help_text.splitlines() if line.strip().startswith(flag + " "))


# -- help ---------------------------------------------------------------------------------------


def test_help_names_what_each_value_is() -> None:
    out = invoke(command(), "--help").stdout
    assert re.search(r"--metrics-port PORT\s", out)
    assert re.search(r"--healthz-port PORT\s", out)
    assert re.search(r"--port PORT\s", out)
    assert re.search(r"--trust-anchors-file FILE\s", out)
    assert re.search(r"--log-file FILE\s", out)
    assert re.search(r"--allowed-hosts TEXT,\.\.\.\s", out)
    assert re.search(r"--log-as-json BOOL\s", out)


def test_help_shows_no_empty_tuple_default() -> None:
    out = invoke(command(), "--help").stdout
    assert "()" not in out
    assert "default" not in option_line(out, "--allowed-hosts")
    assert "p0=127.0.0.1:8201" in out  # a list that has a default still shows it


# -- flag errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "first_line"),
    [
        (["--bogus"], "unknown flag: --bogus"),
        (["-bogus=1"], "unknown flag: --bogus"),
        (["-x"], "unknown shorthand flag: 'x' in -x"),
        (["--port"], "flag needs an argument: --port"),
    ],
)
def test_a_flag_error_prints_pflags_message_then_the_full_usage(
    args: list[str], first_line: str
) -> None:
    result = invoke(command(), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == first_line
    assert lines[1].startswith("Usage: demo")
    # Every flag is listed, as pflag's PrintDefaults lists them.
    for flag in ("--log-level", "--healthz-port", "--port", "--initial-cluster", "-h, --help"):
        assert flag in result.stderr


def test_a_bad_value_keeps_its_explanation() -> None:
    result = invoke(command(), "--port=abc")
    assert result.exit_code == 2
    assert "'abc' is not a valid integer" in result.stderr.splitlines()[0]
    assert "Usage: demo" in result.stderr


# -- version and plugins --------------------------------------------------------------------------


def test_version_flag_of_the_daprplane_command() -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0


def test_version_flag_prints_what_the_version_command_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        cli.main(["--version"])
    flag = capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["version"])
    assert flag == capsys.readouterr().out
    assert flag.startswith(f"daprplane {__version__}\nring: ")


def test_plugin_table_has_headers_and_aligned_columns() -> None:
    records = [
        PluginRecord("placement", "daprplane 0.1.0", Status.LOADED, components=("placement",)),
        PluginRecord("broken", "other 2.0", Status.FAILED, "import failed: ImportError: x"),
    ]
    header, first, second = cli.plugin_table(records)
    assert header.split() == ["PLUGIN", "STATUS", "DISTRIBUTION", "COMPONENTS", "REASON"]
    for name in ("STATUS", "DISTRIBUTION", "COMPONENTS"):
        column = header.index(name)
        assert first[column - 2 : column] == "  " and first[column] != " "
    assert second.split()[:2] == ["broken", "failed"]
    assert second.endswith("import failed: ImportError: x")
    assert first == first.rstrip()


def test_unknown_plugin_names_are_warned_about_and_the_selection_still_holds() -> None:
    host = PluginHost(environ={"DAPRPLANE_PLUGINS": "nosuch", "DAPRPLANE_DISABLE_PLUGINS": "typo"})
    host.load_entry_points()
    assert host.components == {}
    assert all(record.status is Status.DISABLED for record in host.records)
    allow, disable = host.selection_warnings()
    assert allow.startswith("DAPRPLANE_PLUGINS names plugins that are not installed: nosuch ")
    assert "placement" in allow and "sentry" in allow  # the installed ones are listed
    assert disable.startswith("DAPRPLANE_DISABLE_PLUGINS names plugins that are not installed: ")
    assert "typo" in disable


def test_known_names_give_no_warning() -> None:
    host = PluginHost(environ={"DAPRPLANE_PLUGINS": "placement, sentry"})
    host.load_entry_points()
    assert host.selection_warnings() == []
    assert set(host.components) == {"placement", "sentry"}


# -- JSON errors ----------------------------------------------------------------------------------


def test_status_json_with_a_missing_kubeconfig_is_a_json_error(tmp_path: Any) -> None:
    missing = str(tmp_path / "nope")
    result = invoke(status, "--json", "--kubeconfig", missing)
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "error": f"unable to load kubeconfig: stat {missing}: no such file or directory",
    }
    assert result.stderr == ""


def test_status_without_json_keeps_the_plain_error(tmp_path: Any) -> None:
    result = invoke(status, "--kubeconfig", str(tmp_path / "nope"))
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("Error: unable to load kubeconfig")


def test_errors_as_json_leaves_usage_errors_alone() -> None:
    @click.command()
    @click.option("--json", "as_json", is_flag=True)
    @click.option("--fail", type=click.Choice(["usage", "tool"]))
    def tool(as_json: bool, fail: str) -> None:
        with cli.errors_as_json(as_json):
            if fail == "usage":
                raise click.BadParameter("bad", param_hint="--fail")
            raise click.ClickException("it broke")

    usage = invoke(tool, "--json", "--fail", "usage")
    assert usage.exit_code == 2 and usage.stdout == "" and "bad" in usage.stderr
    broken = invoke(tool, "--json", "--fail", "tool")
    assert broken.exit_code == 1 and json.loads(broken.stdout) == {"ok": False, "error": "it broke"}
    plain = invoke(tool, "--fail", "tool")
    assert plain.exit_code == 1 and plain.stderr == "Error: it broke\n"
