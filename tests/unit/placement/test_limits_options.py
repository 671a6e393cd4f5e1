"""The report limits: their defaults, and the environment variables that change them."""

from __future__ import annotations

import pytest

from daprplane.plugins.placement.options import (
    DEFAULT_MAX_ACTOR_TYPES_PER_HOST,
    DEFAULT_MAX_HOST_TABLE_SIZE,
    DEFAULT_MAX_MESSAGE_SIZE,
    ENV_MAX_ACTOR_TYPES_PER_HOST,
    ENV_MAX_HOST_TABLE_SIZE,
    ENV_MAX_MESSAGE_SIZE,
    Limits,
    OptionsError,
    PlacementOptions,
    limits_from_env,
)
from daprplane.plugins.placement.server import host_table_size, transport_limit
from tests.unit.placement.machine import host
from tests.unit.placement.test_options import _flags


def test_defaults_are_grpcs_message_limit_and_generous_per_host_limits() -> None:
    limits = PlacementOptions.from_flags(_flags(), environ={}).limits
    assert limits == Limits()
    assert limits.max_message_size == DEFAULT_MAX_MESSAGE_SIZE == 4 * 1024 * 1024
    assert limits.max_actor_types_per_host == DEFAULT_MAX_ACTOR_TYPES_PER_HOST == 10_000
    assert limits.max_host_table_size == DEFAULT_MAX_HOST_TABLE_SIZE == 64 * 1024 * 1024


def test_environment_overrides() -> None:
    environ = {
        ENV_MAX_MESSAGE_SIZE: "1048576",
        ENV_MAX_ACTOR_TYPES_PER_HOST: " 50 ",
        ENV_MAX_HOST_TABLE_SIZE: "8_000_000",
    }
    limits = PlacementOptions.from_flags(_flags(), environ=environ).limits
    assert limits == Limits(1_048_576, 50, 8_000_000)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        (ENV_MAX_MESSAGE_SIZE, "0"),
        (ENV_MAX_MESSAGE_SIZE, "4MiB"),
        (ENV_MAX_MESSAGE_SIZE, str(2**31)),
        (ENV_MAX_ACTOR_TYPES_PER_HOST, "-1"),
        (ENV_MAX_HOST_TABLE_SIZE, "lots"),
    ],
)
def test_invalid_values_are_fatal_at_start(name: str, value: str) -> None:
    with pytest.raises(OptionsError) as caught:
        limits_from_env({name: value})
    assert str(caught.value).startswith(f"invalid value for {name}: ")


def test_grpc_itself_refuses_only_far_larger_messages_than_the_limit() -> None:
    assert transport_limit(Limits(max_message_size=4 << 20)) == 8 << 20
    assert transport_limit(Limits(max_message_size=1000)) == 1000 + (1 << 20)
    assert transport_limit(Limits(max_message_size=1 << 30)) == 2**31 - 1


def test_a_hosts_table_share_grows_with_the_square_of_its_types() -> None:
    for count in (10, 100, 1000):
        report = host("10.0.0.1:50002", [f"BenchActorType{i:06d}" for i in range(count)])
        size = host_table_size(report, report.ByteSize())
        assert report.ByteSize() * count < size < (report.ByteSize() + 100) * count
