"""The Lease election's configuration: variable names, timings from the environment, client-go's
checks, and the Lease's name."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.core.kube import lease as lease_mod
from daprplane.core.kube.lease import (
    LeaseConfigError,
    LeaseEnvironment,
    LeaseLeadership,
    LeaseTimings,
)

OPERATOR = LeaseEnvironment.with_prefix("DAPRPLANE_OPERATOR_LEASE_")


def test_variable_names_from_a_prefix() -> None:
    expected = LeaseEnvironment(
        name="DAPRPLANE_OPERATOR_LEASE_NAME",
        lease_duration="DAPRPLANE_OPERATOR_LEASE_DURATION",
        renew_deadline="DAPRPLANE_OPERATOR_LEASE_RENEW_DEADLINE",
        retry_period="DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD",
    )
    assert expected == OPERATOR


def test_defaults_are_client_gos() -> None:
    assert LeaseTimings() == LeaseTimings(15, 10, 2)
    assert LeaseTimings.from_environ({}, variables=OPERATOR) == LeaseTimings(15, 10, 2)


def test_timings_read_only_the_callers_variables() -> None:
    environ = {
        "DAPRPLANE_OPERATOR_LEASE_DURATION": "1m30s",
        "DAPRPLANE_OPERATOR_LEASE_RENEW_DEADLINE": " 20 ",
        "DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": "1500ms",
        # Another component's variables change nothing here.
        "DAPRPLANE_PLACEMENT_LEASE_DURATION": "3s",
    }
    assert LeaseTimings.from_environ(environ, variables=OPERATOR) == LeaseTimings(90, 20, 1.5)
    # An empty value keeps the default.
    partial = {
        "DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": "",
        "DAPRPLANE_OPERATOR_LEASE_DURATION": "16",
    }
    assert LeaseTimings.from_environ(partial, variables=OPERATOR) == LeaseTimings(16, 10, 2)


def test_timings_from_os_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD", "1s")
    assert LeaseTimings.from_environ(variables=OPERATOR).retry_period == 1.0


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("soon", "invalid value for DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD: 'soon'"),
        ("0", "'0' must be positive"),
        ("-1s", "'-1s' must be positive"),
        ("nan", "'nan' must be positive"),
        ("inf", "'inf' must be positive"),
    ],
)
def test_unusable_values_name_the_variable(value: str, message: str) -> None:
    with pytest.raises(LeaseConfigError) as caught:
        LeaseTimings.from_environ(
            {"DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": value}, variables=OPERATOR
        )
    assert message in str(caught.value)


def test_client_go_checks() -> None:
    with pytest.raises(LeaseConfigError, match="greater than the renew deadline"):
        LeaseTimings(lease_duration=10, renew_deadline=10, retry_period=1)
    with pytest.raises(LeaseConfigError, match=r"greater than 1\.2 times the retry period"):
        LeaseTimings(lease_duration=15, renew_deadline=2.4, retry_period=2)
    assert LeaseTimings(lease_duration=15, renew_deadline=2.5, retry_period=2).renew_deadline == 2.5


def test_lease_seconds_round_up_to_whole_seconds() -> None:
    assert LeaseTimings(15, 10, 2).lease_seconds == 15
    assert LeaseTimings(2.1, 1.5, 0.3).lease_seconds == 3
    assert LeaseTimings(0.5, 0.4, 0.1).lease_seconds == 1


def test_micro_time_is_utc_with_microseconds() -> None:
    moment = datetime(2024, 5, 6, 9, 8, 7, 123, tzinfo=timezone(timedelta(hours=2)))
    assert lease_mod._micro_time(moment) == "2024-05-06T07:08:07.000123Z"
    assert lease_mod._micro_time(datetime(2024, 1, 1, tzinfo=UTC)) == "2024-01-01T00:00:00.000000Z"


def test_election_from_environ_takes_name_and_timings_from_the_callers_variables() -> None:
    def factory() -> object:
        raise AssertionError("not called before start")

    election = LeaseLeadership.from_environ(
        "op-1",
        "dapr-system",
        name="operator.dapr.io",
        variables=OPERATOR,
        environ={"DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": "1s"},
        api_factory=factory,
        owns_api=False,
    )
    assert (election.identity, election.namespace, election.name) == (
        "op-1",
        "dapr-system",
        "operator.dapr.io",
    )
    assert election.description == "dapr-system/operator.dapr.io"
    assert election.timings == LeaseTimings(15, 10, 1)
    assert not election.is_leader
    renamed = LeaseLeadership.from_environ(
        "op-1",
        "dapr-system",
        name="operator.dapr.io",
        variables=OPERATOR,
        environ={"DAPRPLANE_OPERATOR_LEASE_NAME": " other "},
    )
    assert renamed.name == "other"
    with pytest.raises(LeaseConfigError, match="renew deadline must be greater"):
        LeaseLeadership.from_environ(
            "op-1",
            "dapr-system",
            name="operator.dapr.io",
            variables=OPERATOR,
            environ={"DAPRPLANE_OPERATOR_LEASE_RETRY_PERIOD": "9s"},
        )


def test_lease_name_is_required() -> None:
    with pytest.raises(TypeError):
        LeaseLeadership("op-1", "dapr-system")  # type: ignore[call-arg]


_TEXT = st.one_of(
    st.text(max_size=12),
    st.from_regex(r"-?[0-9]{0,4}(\.[0-9]{0,3})?(ns|us|ms|s|m|h)?", fullmatch=True),
)


@given(duration=_TEXT, deadline=_TEXT, retry=_TEXT)
def test_any_environment_gives_valid_timings_or_a_config_error(
    duration: str, deadline: str, retry: str
) -> None:
    environ = {
        OPERATOR.lease_duration: duration,
        OPERATOR.renew_deadline: deadline,
        OPERATOR.retry_period: retry,
    }
    try:
        timings = LeaseTimings.from_environ(environ, variables=OPERATOR)
    except LeaseConfigError:
        return
    values = (timings.lease_duration, timings.renew_deadline, timings.retry_period)
    assert all(math.isfinite(v) and v > 0 for v in values)
    assert timings.lease_duration > timings.renew_deadline > 1.2 * timings.retry_period
    assert timings.lease_seconds >= max(1, timings.lease_duration)
