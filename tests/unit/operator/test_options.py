"""The operator's options: ``--watch-interval`` parsing and what ``from_flags`` makes of the flags
and the environment (contract §1.1, §1.2)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.core.flags import SHARED, FlagValues
from daprplane.plugins.operator.flags import FLAGS
from daprplane.plugins.operator.options import (
    DEFAULT_CACHE_SYNC,
    OperatorOptions,
    OptionsError,
    parse_watch_interval,
)

ENV = {"NAMESPACE": "dapr-system"}


def flag_values(**overrides: Any) -> FlagValues:
    """The values the command line yields with no arguments, plus ``overrides`` (by attribute)."""
    flags = [*SHARED, *FLAGS]
    values = {flag.attribute: flag.resolve_default() for flag in flags}
    unknown = set(overrides) - set(values)
    assert not unknown, f"not operator flags: {unknown}"
    values.update(overrides)
    return FlagValues(flags, values)


# -- --watch-interval ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["0", "false", "f", "no", "off", "FALSE", "False", "F", "No", "OFF", " off ", "0 "]
)
def test_off_words_turn_the_watchdog_off(text: str) -> None:
    assert parse_watch_interval(text) is None


@pytest.mark.parametrize("text", ["once", "ONCE", "Once", " once "])
def test_once_is_a_single_pass(text: str) -> None:
    assert parse_watch_interval(text) == 0.0


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("1s", 1.0),
        ("1000ms", 1.0),
        ("1.5s", 1.5),
        ("30s", 30.0),
        ("1m30s", 90.0),
        ("2h", 7200.0),
        (" 10s ", 10.0),
    ],
)
def test_durations_of_at_least_one_second(text: str, seconds: float) -> None:
    assert parse_watch_interval(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["999ms", "500ms", "1ns", "0s", "0.5s", "-1s", "-1h"])
def test_durations_below_one_second_are_refused(text: str) -> None:
    with pytest.raises(OptionsError, match="at least 1s"):
        parse_watch_interval(text)


@pytest.mark.parametrize(
    "text", ["", " ", "true", "yes", "on", "1", "10", "00", "1x", "s", "forever", "1 s", "once!"]
)
def test_garbage_is_refused(text: str) -> None:
    with pytest.raises(OptionsError, match="--watch-interval") as caught:
        parse_watch_interval(text)
    assert repr(text) in str(caught.value)


@pytest.mark.parametrize("text", ["\u0663s", "\uff11\uff10s"])  # Arabic-Indic 3, fullwidth 10
def test_non_ascii_digits_are_refused(text: str) -> None:
    with pytest.raises(OptionsError):
        parse_watch_interval(text)


@given(st.text(max_size=20))
def test_any_text_is_off_once_an_interval_or_refused(text: str) -> None:
    try:
        result = parse_watch_interval(text)
    except OptionsError:
        return
    assert result is None or result == 0.0 or result >= 1.0


# -- from_flags: defaults --------------------------------------------------------------------------


def test_defaults() -> None:
    options = OperatorOptions.from_flags(flag_values(), ENV)
    assert options == OperatorOptions(
        namespace="dapr-system",
        config_name="daprsystem",
        watch_interval=None,
        max_pod_restarts_per_minute=20,
        leader_election=True,
        service_reconciler=True,
        argo_rollouts=False,
        watch_namespace="",
        watchdog_can_patch_pod_labels=False,
        trust_anchors_file="/var/run/secrets/dapr.io/tls/ca.crt",
        listen_address="",
        port=6500,
        webhook_listen_address="",
        webhook_port=19443,
        webhooks=True,
        cache_sync_period=DEFAULT_CACHE_SYNC.total_seconds(),
        kubeconfig="",
    )


def test_flags_reach_the_options() -> None:
    values = flag_values(
        config="other-config",
        watch_interval="once",
        max_pod_restarts_per_minute=-1,
        disable_leader_election=True,
        disable_service_reconciler=True,
        enable_argo_rollout_service_reconciler=True,
        watch_namespace=" apps ",
        watchdog_can_patch_pod_labels=True,
        trust_anchors_file="/tmp/ca.crt",
        listen_address="127.0.0.1",
        port=0,
        webhook_server_listen_address="::1",
        webhook_server_port=65535,
        cache_sync_period=timedelta(minutes=5),
        kubeconfig="/tmp/kubeconfig",
    )
    options = OperatorOptions.from_flags(values, ENV)
    assert options.config_name == "other-config"
    assert options.watch_interval == 0.0
    assert options.max_pod_restarts_per_minute == -1
    assert options.leader_election is False
    assert options.service_reconciler is False
    assert options.argo_rollouts is True
    assert options.watch_namespace == "apps"
    assert options.watchdog_can_patch_pod_labels is True
    assert options.trust_anchors_file == "/tmp/ca.crt"
    assert options.listen_address == "127.0.0.1"
    assert options.port == 0
    assert options.webhook_listen_address == "::1"
    assert options.webhook_port == 65535
    assert options.cache_sync_period == 300.0
    assert options.kubeconfig == "/tmp/kubeconfig"


def test_a_bad_watch_interval_is_fatal() -> None:
    with pytest.raises(OptionsError, match="--watch-interval"):
        OperatorOptions.from_flags(flag_values(watch_interval="100ms"), ENV)


# -- NAMESPACE -------------------------------------------------------------------------------------


def test_namespace_missing() -> None:
    with pytest.raises(OptionsError, match=r"^'NAMESPACE' environment variable not set$"):
        OperatorOptions.from_flags(flag_values(), {})


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_namespace_empty_or_blank(value: str) -> None:
    with pytest.raises(OptionsError, match=r"^'NAMESPACE' environment variable is empty$"):
        OperatorOptions.from_flags(flag_values(), {"NAMESPACE": value})


def test_namespace_is_trimmed() -> None:
    options = OperatorOptions.from_flags(flag_values(), {"NAMESPACE": " dapr-system\n"})
    assert options.namespace == "dapr-system"


# -- ENABLE_WEBHOOKS -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["false", "FALSE", "False", "fAlSe", " false "])
def test_enable_webhooks_false_in_any_case_turns_them_off(value: str) -> None:
    options = OperatorOptions.from_flags(flag_values(), {**ENV, "ENABLE_WEBHOOKS": value})
    assert options.webhooks is False


@pytest.mark.parametrize("value", ["", "true", "0", "no", "off", "f", "falsey"])
def test_enable_webhooks_anything_else_keeps_them(value: str) -> None:
    options = OperatorOptions.from_flags(flag_values(), {**ENV, "ENABLE_WEBHOOKS": value})
    assert options.webhooks is True


# -- --cache-sync-period ---------------------------------------------------------------------------


@pytest.mark.parametrize("zero", [timedelta(0), 0, 0.0])
def test_cache_sync_period_zero_keeps_ten_hours(zero: Any) -> None:
    options = OperatorOptions.from_flags(flag_values(cache_sync_period=zero), ENV)
    assert options.cache_sync_period == 10 * 3600


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(timedelta(seconds=1), 1.0), (timedelta(milliseconds=250), 0.25), (30, 30.0)],
)
def test_cache_sync_period_is_kept(value: Any, seconds: float) -> None:
    options = OperatorOptions.from_flags(flag_values(cache_sync_period=value), ENV)
    assert options.cache_sync_period == seconds


def test_cache_sync_period_must_not_be_negative() -> None:
    with pytest.raises(OptionsError, match="--cache-sync-period"):
        OperatorOptions.from_flags(flag_values(cache_sync_period=timedelta(seconds=-1)), ENV)


# -- ports -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["port", "webhook-server-port"])
@pytest.mark.parametrize("value", [-1, 65536, 100000])
def test_ports_out_of_range_are_fatal(flag: str, value: int) -> None:
    values = flag_values(**{flag.replace("-", "_"): value})
    with pytest.raises(OptionsError, match=f"--{flag}: {value} is out of range"):
        OperatorOptions.from_flags(values, ENV)
