"""The pieces of ``daprplane up`` / ``status`` that need no process: record, hints, reports."""

from __future__ import annotations

import datetime
import json
import shlex
import subprocess
import tempfile
from pathlib import Path

import click
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daprplane.core.local import record as records
from daprplane.core.local.certs import CertificateInfo, describe_expiry, first_certificate
from daprplane.core.local.layout import StateDir, default_state_dir
from daprplane.core.local.local_status import metric_values, table_versions
from daprplane.core.local.plan import Settings, sidecar_hints, standalone
from daprplane.core.local.report import ComponentStatus, StatusReport, render_text

NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=datetime.UTC)


def _record(pid: int = 1) -> records.UpRecord:
    return records.UpRecord(
        pid=pid,
        started_at=1.5,
        mode="standalone",
        listen_address="127.0.0.1",
        trust_domain="localhost",
        namespace="default",
        trust_anchors="/x/certs/ca.crt",
        components=(
            records.RunningComponent("sentry", 10, "127.0.0.1:50001", 1, 2, "/x/logs/sentry.log"),
        ),
    )


def test_record_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "up.json"
    assert records.read(path) is None
    records.write(path, _record())
    assert records.read(path) == _record()
    records.remove(path)
    assert not path.exists()


@given(st.text() | st.binary().map(lambda b: b.decode("latin-1")))
def test_a_damaged_record_is_reported_not_raised(text: str) -> None:
    try:
        parsed = records.UpRecord.from_json(text)
    except (ValueError, TypeError, KeyError, AttributeError):
        return
    assert isinstance(parsed, records.UpRecord)  # pragma: no cover - random text is never one


@given(
    st.one_of(
        st.none(),
        st.integers(),
        st.lists(st.integers()),
        st.dictionaries(st.text(max_size=5), st.integers() | st.text(max_size=5)),
    )
)
def test_unreadable_records_raise_record_error(value: object) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "up.json"
        path.write_text(json.dumps(value))
        with pytest.raises(records.RecordError):
            records.read(path)


def test_process_alive() -> None:
    import os

    assert records.process_alive(os.getpid())
    finished = subprocess.Popen(["true"])
    finished.wait()
    assert not records.process_alive(finished.pid)


def test_default_state_dir_follows_the_environment() -> None:
    assert default_state_dir({"DAPRPLANE_HOME": "/srv/dp"}) == Path("/srv/dp")
    assert default_state_dir({}).name == ".daprplane"


def test_prepare_creates_private_directories(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "s")
    state.prepare()
    assert (state.root.stat().st_mode & 0o777) == 0o700
    assert state.certs.is_dir() and state.logs.is_dir()
    state.sentry_config.write_text("kind: Configuration\n")
    state.prepare()  # never overwrites a user's edits
    assert state.sentry_config.read_text() == "kind: Configuration\n"


def test_standalone_plan_wires_placement_to_sentry(tmp_path: Path) -> None:
    settings = Settings(StateDir(tmp_path), sentry_port=7001, placement_port=7005)
    sentry, placement = standalone(settings)
    assert sentry.address == "127.0.0.1:7001" and placement.address == "127.0.0.1:7005"
    assert f"--sentry-address={sentry.address}" in placement.argv
    assert f"--trust-anchors-file={tmp_path / 'certs' / 'ca.crt'}" in placement.argv
    assert f"--issuer-credentials={tmp_path / 'certs'}" in sentry.argv
    assert len({sentry.healthz_port, sentry.metrics_port, placement.healthz_port}) == 3


def test_default_hints_need_no_control_plane_flags(tmp_path: Path) -> None:
    settings = Settings(StateDir(tmp_path))
    hints = sidecar_hints(settings, standalone(settings))
    assert hints.flags == (
        "--enable-mtls",
        "--sentry-address 127.0.0.1:50001",
        "--placement-host-address 127.0.0.1:50005",
    )


_TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1)


@settings(max_examples=40, deadline=None)
@given(
    trust_domain=_TEXT,
    namespace=_TEXT,
    state_name=_TEXT.filter(lambda n: "/" not in n and len(n.encode()) < 200),
)
def test_hints_survive_a_shell_whatever_the_values(
    trust_domain: str, namespace: str, state_name: str
) -> None:
    with tempfile.TemporaryDirectory() as directory:
        state = StateDir(Path(directory) / state_name)
        state.prepare()
        state.trust_anchors.write_text("ANCHORS")
        plan_settings = Settings(state, trust_domain=trust_domain, namespace=namespace)
        hints = sidecar_hints(plan_settings, standalone(plan_settings))
        words = shlex.split(" ".join(hints.flags))
        if trust_domain != "localhost":
            assert words[words.index("--control-plane-trust-domain") + 1] == trust_domain
        if namespace != "default":
            assert words[words.index("--control-plane-namespace") + 1] == namespace
        export = hints.shell_lines()[0]
        shell = subprocess.run(
            ["sh", "-c", f'{export}\nprintf %s "$DAPR_TRUST_ANCHORS"'],
            capture_output=True,
            check=True,
        )
        assert shell.stdout == b"ANCHORS"


def test_metric_values_and_tables() -> None:
    text = (
        "# HELP dapr_placement_leader_status x\n# TYPE dapr_placement_leader_status gauge\n"
        "dapr_placement_leader_status 1.0\n"
        "# HELP dapr_placement_runtimes_total x\n# TYPE dapr_placement_runtimes_total gauge\n"
        "dapr_placement_runtimes_total 3.0\n"
    )
    assert metric_values(text) == {
        "dapr_placement_leader_status": 1.0,
        "dapr_placement_runtimes_total": 3.0,
    }
    state = {"tables": {"": {"version": 2}, "default": {"version": 5, "hosts": [{}, {}]}}}
    assert table_versions(state) == {
        "table[(none)]": "v2, 0 hosts",
        "table[default]": "v5, 2 hosts",
    }
    assert table_versions({}) == {}
    assert table_versions(None) == {}
    assert table_versions({"tables": {"x": "not a table"}}) == {}


@pytest.mark.parametrize(
    ("left", "expected"),
    [
        (datetime.timedelta(days=30, hours=1), "(in 30 days)"),
        (datetime.timedelta(hours=20), "(in 20 hours)"),
        (datetime.timedelta(minutes=90), "(in 90 minutes)"),
        (datetime.timedelta(seconds=-1), "EXPIRED"),
    ],
)
def test_describe_expiry(left: datetime.timedelta, expected: str) -> None:
    assert expected in describe_expiry(CertificateInfo("CN=x", NOW + left), NOW)


def test_unreadable_certificates_are_unknown() -> None:
    assert first_certificate(b"") is None
    assert (
        first_certificate(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n") is None
    )
    assert describe_expiry(None) == "unknown"


def test_render_text_and_ok() -> None:
    report = StatusReport(
        "local",
        "/x",
        [
            ComponentStatus("sentry", True, True, "pid 1", {"address": "a:1"}),
            ComponentStatus("placement", False, False, "pid 2"),
        ],
    )
    assert report.ok is False
    text = click.unstyle(render_text(report))
    assert "sentry     pid 1  healthy      address a:1" in text
    assert "placement  pid 2  not running" in text
    assert json.loads(report.to_json())["ok"] is False
    report.components.pop()
    assert report.ok is True
    report.problems.append("stale")
    assert report.ok is False
