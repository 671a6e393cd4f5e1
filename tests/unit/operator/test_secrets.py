"""Secret resolution of the objects the operator serves: value forms, gating, errors, lookups."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daprplane.plugins.operator.secrets import (
    SecretError,
    resolve_component,
    resolve_configuration,
    resolve_http_endpoint,
    resolve_mcp_server,
    secret_text,
)

Resolver = Callable[[Mapping[str, Any], str, Any], Awaitable[dict[str, Any]]]
RESOLVERS: tuple[Resolver, ...] = (
    resolve_component,
    resolve_http_endpoint,
    resolve_mcp_server,
    resolve_configuration,
)


def b64(raw: bytes | str) -> str:
    return base64.b64encode(raw.encode() if isinstance(raw, str) else raw).decode()


class FakeSecrets:
    """Secrets of one namespace, counting lookups; data values are base64 as the API sends."""

    def __init__(self, secrets: dict[str, Any] | None = None, namespace: str = "default") -> None:
        self.secrets = secrets or {}
        self.namespace = namespace
        self.calls: list[tuple[str, str]] = []

    async def __call__(self, namespace: str, name: str) -> Mapping[str, str] | None:
        self.calls.append((namespace, name))
        if namespace != self.namespace:
            return None
        return self.secrets.get(name)


def pair(name: str, secret: str | None = None, key: str | None = None, **extra: Any) -> dict:
    item: dict[str, Any] = {"name": name, **extra}
    if secret is not None:
        item["secretKeyRef"] = {"name": secret, "key": key if key is not None else ""}
    return item


def component(*pairs: dict, auth: Any = ..., namespace: str = "default") -> dict:
    obj: dict[str, Any] = {
        "metadata": {"name": "statestore", "namespace": namespace},
        "spec": {"type": "state.redis", "version": "v1", "metadata": list(pairs)},
    }
    if auth is not ...:
        obj["auth"] = auth
    return obj


# --- Components -------------------------------------------------------------------------------


async def test_component_value_is_base64_of_the_secret_bytes() -> None:
    secrets = FakeSecrets({"creds": {"password": b64("hunter1")}})
    obj = component(pair("redisPassword", "creds", "password"))
    resolved = await resolve_component(obj, "default", secrets)
    entry = resolved["spec"]["metadata"][0]
    assert entry["value"] == "aHVudGVyMQ=="
    # What the sidecar receives for the value: the JSON string of that base64.
    assert json.dumps(entry["value"]) == '"aHVudGVyMQ=="'
    assert entry["secretKeyRef"] == {"name": "creds", "key": "password"}
    assert entry["name"] == "redisPassword"
    assert secrets.calls == [("default", "creds")]


async def test_component_binary_secret_round_trips_through_base64() -> None:
    raw = bytes(range(256))
    secrets = FakeSecrets({"blob": {"k": b64(raw)}})
    resolved = await resolve_component(component(pair("p", "blob", "k")), "default", secrets)
    assert base64.b64decode(resolved["spec"]["metadata"][0]["value"]) == raw


@pytest.mark.parametrize(
    "ref", [{"name": "creds", "key": ""}, {"name": "creds"}, {"name": "creds", "key": None}]
)
async def test_component_key_defaults_to_secret_name(ref: dict) -> None:
    secrets = FakeSecrets({"creds": {"creds": b64("by-name"), "other": b64("x")}})
    obj = component({"name": "p", "secretKeyRef": ref})
    resolved = await resolve_component(obj, "default", secrets)
    assert resolved["spec"]["metadata"][0]["value"] == b64("by-name")


@pytest.mark.parametrize(
    "auth",
    [..., None, {}, {"secretStore": ""}, {"secretStore": None}, {"secretStore": "kubernetes"}],
)
async def test_component_resolved_for_the_kubernetes_store(auth: Any) -> None:
    secrets = FakeSecrets({"creds": {"password": b64("pw")}})
    obj = component(pair("p", "creds", "password"), auth=auth)
    resolved = await resolve_component(obj, "default", secrets)
    assert resolved["spec"]["metadata"][0]["value"] == b64("pw")


@pytest.mark.parametrize("auth", [{"secretStore": "vault"}, {"secretStore": "Kubernetes"}, "odd"])
async def test_component_of_another_store_is_left_alone(auth: Any) -> None:
    secrets = FakeSecrets({"creds": {"password": b64("pw")}})
    obj = component(pair("p", "creds", "password"), auth=auth)
    resolved = await resolve_component(obj, "default", secrets)
    assert resolved == obj
    assert secrets.calls == []


async def test_component_missing_key_leaves_value_unchanged() -> None:
    secrets = FakeSecrets({"creds": {"other": b64("x")}})
    obj = component(pair("p", "creds", "password", value="fallback"), pair("q", "creds", "nope"))
    resolved = await resolve_component(obj, "default", secrets)
    assert resolved == obj
    assert "value" not in resolved["spec"]["metadata"][1]


async def test_component_missing_secret_is_an_error_naming_everything() -> None:
    secrets = FakeSecrets({}, namespace="prod")
    obj = component(pair("p", "gone", "password"), pair("q", "gone", "other"), namespace="prod")
    with pytest.raises(SecretError) as raised:
        await resolve_component(obj, "prod", secrets)
    error = raised.value
    assert (error.namespace, error.secret, error.key) == ("prod", "gone", "password")
    assert error.resource == "Component prod/statestore"
    for part in ("prod/gone", "password", "Component prod/statestore", "not found"):
        assert part in str(error)
    assert secrets.calls == [("prod", "gone")]


async def test_component_secrets_come_from_the_requested_namespace() -> None:
    secrets = FakeSecrets({"creds": {"password": b64("pw")}}, namespace="team-a")
    # The object claims another namespace; the caller's namespace decides where Secrets live.
    obj = component(pair("p", "creds", "password"), namespace="elsewhere")
    resolved = await resolve_component(obj, "team-a", secrets)
    assert resolved["spec"]["metadata"][0]["value"] == b64("pw")
    assert secrets.calls == [("team-a", "creds")]


async def test_each_distinct_secret_is_looked_up_once() -> None:
    secrets = FakeSecrets({"a": {"x": b64("1"), "y": b64("2")}, "b": {"b": b64("3")}})
    obj = component(
        pair("one", "a", "x"),
        pair("two", "a", "y"),
        pair("three", "b"),
        pair("four", "a", "missing"),
        pair("plain", value="v"),
        pair("empty-ref", "", "x"),
    )
    resolved = await resolve_component(obj, "default", secrets)
    assert [entry.get("value") for entry in resolved["spec"]["metadata"]] == [
        b64("1"),
        b64("2"),
        b64("3"),
        None,
        "v",
        None,
    ]
    assert sorted(secrets.calls) == [("default", "a"), ("default", "b")]


async def test_no_lookup_without_a_named_secret_key_ref() -> None:
    secrets = FakeSecrets({})
    obj = component(
        pair("plain", value="v"),
        {"name": "null-ref", "secretKeyRef": None},
        {"name": "no-name", "secretKeyRef": {"key": "k"}},
        {"name": "null-name", "secretKeyRef": {"name": None, "key": "k"}},
    )
    assert await resolve_component(obj, "default", secrets) == obj
    assert secrets.calls == []


async def test_rotated_secret_gives_the_new_value_on_the_next_call() -> None:
    secrets = FakeSecrets({"creds": {"password": b64("hunter1")}})
    obj = component(pair("p", "creds", "password"))
    first = await resolve_component(obj, "default", secrets)
    secrets.secrets["creds"] = {"password": b64("hunter2")}
    second = await resolve_component(obj, "default", secrets)
    assert first["spec"]["metadata"][0]["value"] == b64("hunter1")
    assert second["spec"]["metadata"][0]["value"] == b64("hunter2")
    assert len(secrets.calls) == 2


async def test_input_is_never_mutated_and_result_is_new() -> None:
    secrets = FakeSecrets({"creds": {"password": b64("pw")}})
    obj = component(pair("p", "creds", "password"), pair("q", value="kept"))
    before = copy.deepcopy(obj)
    resolved = await resolve_component(obj, "default", secrets)
    assert obj == before
    assert resolved is not obj
    assert resolved["spec"] is not obj["spec"]
    assert resolved["spec"]["metadata"] is not obj["spec"]["metadata"]
    unchanged = await resolve_component(component(pair("q", value="v")), "default", secrets)
    assert isinstance(unchanged, dict)


async def test_lookup_failure_becomes_a_secret_error_with_its_cause() -> None:
    class Boom(RuntimeError):
        pass

    async def failing(namespace: str, name: str) -> Mapping[str, str] | None:
        raise Boom("api server unavailable")

    with pytest.raises(SecretError, match="api server unavailable") as raised:
        await resolve_component(component(pair("p", "creds", "k")), "default", failing)
    assert isinstance(raised.value.__cause__, Boom)


async def test_lookup_secret_error_passes_through_untouched() -> None:
    original = SecretError("failed to get secret default/creds: forbidden")

    async def failing(namespace: str, name: str) -> Mapping[str, str] | None:
        raise original

    with pytest.raises(SecretError) as raised:
        await resolve_component(component(pair("p", "creds", "k")), "default", failing)
    assert raised.value is original


@pytest.mark.parametrize("bad", ["not base64!", "aGk", 42, None])
async def test_malformed_secret_data_is_an_error(bad: Any) -> None:
    secrets = FakeSecrets({"creds": {"k": bad}})
    with pytest.raises(SecretError, match="malformed base64"):
        await resolve_component(component(pair("p", "creds", "k")), "default", secrets)


async def test_malformed_secret_map_is_an_error() -> None:
    secrets = FakeSecrets({"creds": ["not", "a", "map"]})
    with pytest.raises(SecretError, match="malformed data"):
        await resolve_component(component(pair("p", "creds", "k")), "default", secrets)


@pytest.mark.parametrize(
    "spec", ["text", None, {"metadata": "text"}, {"metadata": [1, "x", None, {"name": "n"}]}]
)
async def test_component_ill_typed_fields_pass_through(spec: Any) -> None:
    obj = {"metadata": {"name": "c"}, "spec": spec}
    assert await resolve_component(obj, "default", FakeSecrets()) == obj


# --- HTTPEndpoints ----------------------------------------------------------------------------


def endpoint(auth: Any = ...) -> dict:
    obj: dict[str, Any] = {
        "metadata": {"name": "ext", "namespace": "default"},
        "spec": {
            "baseUrl": "https://example.com",
            "headers": [pair("Authorization", "api", "token"), pair("X-Plain", value="p")],
            "clientTLS": {
                "certificate": {"secretKeyRef": {"name": "tls", "key": "tls.crt"}},
                "privateKey": {"secretKeyRef": {"name": "tls", "key": "tls.key"}},
                "rootCA": {"value": "inline-ca"},
                "renegotiation": "Never",
            },
        },
    }
    if auth is not ...:
        obj["auth"] = auth
    return obj


async def test_http_endpoint_headers_and_client_tls_are_resolved() -> None:
    secrets = FakeSecrets(
        {"api": {"token": b64("Bearer t")}, "tls": {"tls.crt": b64("CERT"), "tls.key": b64("KEY")}}
    )
    obj = endpoint()
    before = copy.deepcopy(obj)
    resolved = await resolve_http_endpoint(obj, "default", secrets)
    assert obj == before
    assert resolved["spec"]["headers"][0]["value"] == b64("Bearer t")
    assert resolved["spec"]["headers"][0]["secretKeyRef"] == {"name": "api", "key": "token"}
    assert resolved["spec"]["headers"][1] == {"name": "X-Plain", "value": "p"}
    tls = resolved["spec"]["clientTLS"]
    assert tls["certificate"] == {
        "secretKeyRef": {"name": "tls", "key": "tls.crt"},
        "value": b64("CERT"),
    }
    assert tls["privateKey"]["value"] == b64("KEY")
    assert tls["rootCA"] == {"value": "inline-ca"}
    assert tls["renegotiation"] == "Never"
    assert resolved["spec"]["baseUrl"] == "https://example.com"
    assert sorted(secrets.calls) == [("default", "api"), ("default", "tls")]


async def test_http_endpoint_tls_key_defaults_and_missing_key() -> None:
    secrets = FakeSecrets({"ca": {"ca": b64("CA")}, "tls": {}})
    obj = {
        "metadata": {"name": "ext"},
        "spec": {
            "clientTLS": {
                "rootCA": {"secretKeyRef": {"name": "ca"}},
                "certificate": {"secretKeyRef": {"name": "tls", "key": "tls.crt"}, "value": "x"},
            }
        },
    }
    resolved = await resolve_http_endpoint(obj, "default", secrets)
    assert resolved["spec"]["clientTLS"]["rootCA"]["value"] == b64("CA")
    assert resolved["spec"]["clientTLS"]["certificate"]["value"] == "x"


async def test_http_endpoint_of_another_store_is_left_alone() -> None:
    secrets = FakeSecrets({})
    obj = endpoint(auth={"secretStore": "vault"})
    assert await resolve_http_endpoint(obj, "default", secrets) == obj
    assert secrets.calls == []


async def test_http_endpoint_missing_secret_is_an_error() -> None:
    with pytest.raises(SecretError, match="HTTPEndpoint default/ext") as raised:
        await resolve_http_endpoint(
            endpoint(auth={"secretStore": "kubernetes"}), "default", FakeSecrets()
        )
    assert raised.value.secret == "api"


# --- MCPServers -------------------------------------------------------------------------------


def mcp_server(endpoint_spec: dict) -> dict:
    return {
        "metadata": {"name": "tools", "namespace": "default"},
        "spec": {"endpoint": endpoint_spec},
    }


@pytest.mark.parametrize("transport", ["streamableHTTP", "sse"])
async def test_mcp_http_transport_headers_are_resolved(transport: str) -> None:
    secrets = FakeSecrets({"mcp": {"token": b64("t0k")}})
    obj = mcp_server({transport: {"url": "https://mcp", "headers": [pair("Auth", "mcp", "token")]}})
    before = copy.deepcopy(obj)
    resolved = await resolve_mcp_server(obj, "default", secrets)
    assert obj == before
    assert resolved["spec"]["endpoint"][transport]["headers"][0]["value"] == b64("t0k")
    assert resolved["spec"]["endpoint"][transport]["url"] == "https://mcp"


async def test_mcp_stdio_env_is_resolved() -> None:
    secrets = FakeSecrets({"mcp": {"mcp": b64("s3cret")}})
    obj = mcp_server({"stdio": {"command": "tool", "env": [pair("TOKEN", "mcp")]}})
    resolved = await resolve_mcp_server(obj, "default", secrets)
    assert resolved["spec"]["endpoint"]["stdio"]["env"][0]["value"] == b64("s3cret")


@pytest.mark.parametrize(
    ("store", "resolved_expected"), [("", True), ("kubernetes", True), ("vault", False)]
)
async def test_mcp_gated_on_the_http_transports_secret_store(
    store: str, resolved_expected: bool
) -> None:
    secrets = FakeSecrets({"mcp": {"token": b64("t")}})
    obj = mcp_server(
        {
            "streamableHTTP": {
                "url": "https://mcp",
                "headers": [pair("Auth", "mcp", "token")],
                "auth": {"secretStore": store},
            }
        }
    )
    resolved = await resolve_mcp_server(obj, "default", secrets)
    header = resolved["spec"]["endpoint"]["streamableHTTP"]["headers"][0]
    assert ("value" in header) is resolved_expected
    assert bool(secrets.calls) is resolved_expected


async def test_mcp_null_transport_is_not_set() -> None:
    secrets = FakeSecrets({"mcp": {"token": b64("t")}})
    obj = mcp_server(
        {"streamableHTTP": None, "sse": {"url": "u", "headers": [pair("A", "mcp", "token")]}}
    )
    resolved = await resolve_mcp_server(obj, "default", secrets)
    assert resolved["spec"]["endpoint"]["sse"]["headers"][0]["value"] == b64("t")


async def test_mcp_missing_secret_is_an_error() -> None:
    obj = mcp_server({"stdio": {"command": "tool", "env": [pair("TOKEN", "gone", "k")]}})
    with pytest.raises(SecretError, match="MCPServer default/tools"):
        await resolve_mcp_server(obj, "default", FakeSecrets())


# --- Configurations ---------------------------------------------------------------------------


def configuration(*headers: dict) -> dict:
    return {
        "metadata": {"name": "appconfig", "namespace": "default"},
        "spec": {
            "tracing": {
                "samplingRate": "1",
                "otel": {"endpointAddress": "otel:4317", "headers": list(headers)},
            },
            "features": [{"name": "x", "enabled": True}],
        },
    }


async def test_configuration_header_gets_the_raw_secret_text() -> None:
    secrets = FakeSecrets({"otel": {"api-key": b64("hunter1")}})
    obj = configuration(pair("x-api-key", "otel", "api-key"), pair("x-plain", value="v"))
    before = copy.deepcopy(obj)
    resolved = await resolve_configuration(obj, "default", secrets)
    assert obj == before
    headers = resolved["spec"]["tracing"]["otel"]["headers"]
    assert headers[0]["value"] == "hunter1"
    assert headers[0]["secretKeyRef"] == {"name": "otel", "key": "api-key"}
    assert headers[1] == {"name": "x-plain", "value": "v"}
    assert resolved["spec"]["tracing"]["samplingRate"] == "1"
    assert resolved["spec"]["features"] == obj["spec"]["features"]
    assert secrets.calls == [("default", "otel")]


@pytest.mark.parametrize("key", ["", None])
async def test_configuration_header_needs_a_key(key: str | None) -> None:
    secrets = FakeSecrets({"otel": {"otel": b64("x")}})
    obj = configuration({"name": "x-api-key", "secretKeyRef": {"name": "otel", "key": key}})
    with pytest.raises(SecretError, match="secret key is required for header x-api-key"):
        await resolve_configuration(obj, "default", secrets)
    assert secrets.calls == []


async def test_configuration_missing_key_is_an_error() -> None:
    secrets = FakeSecrets({"otel": {"other": b64("x")}})
    obj = configuration(pair("x-api-key", "otel", "api-key"))
    with pytest.raises(SecretError) as raised:
        await resolve_configuration(obj, "default", secrets)
    assert (raised.value.secret, raised.value.key) == ("otel", "api-key")
    assert "x-api-key" in str(raised.value)
    assert "Configuration default/appconfig" in str(raised.value)


async def test_configuration_missing_secret_is_an_error() -> None:
    with pytest.raises(SecretError, match="not found"):
        await resolve_configuration(configuration(pair("h", "gone", "k")), "default", FakeSecrets())


async def test_configuration_is_not_gated_on_any_store() -> None:
    secrets = FakeSecrets({"otel": {"k": b64("v")}})
    obj = {**configuration(pair("h", "otel", "k")), "auth": {"secretStore": "vault"}}
    resolved = await resolve_configuration(obj, "default", secrets)
    assert resolved["spec"]["tracing"]["otel"]["headers"][0]["value"] == "v"


async def test_configuration_non_utf8_secret_becomes_replacement_characters() -> None:
    # Go writes each byte outside valid UTF-8 as U+FFFD; a truncated sequence is two bytes here.
    raw = b"ok\xff\xe2\x82-\xc3\xa9"
    secrets = FakeSecrets({"otel": {"k": b64(raw)}})
    resolved = await resolve_configuration(
        configuration(pair("h", "otel", "k")), "default", secrets
    )
    assert resolved["spec"]["tracing"]["otel"]["headers"][0]["value"] == "ok\ufffd\ufffd\ufffd-é"


def test_secret_text_of_valid_utf8_is_unchanged() -> None:
    assert secret_text("héllo ✓ 😀".encode()) == "héllo ✓ 😀"
    assert secret_text(b"\xed\xa0\x80") == "\ufffd" * 3  # an encoded surrogate is not UTF-8


async def test_configuration_without_headers_needs_no_lookup() -> None:
    secrets = FakeSecrets()
    obj = {"metadata": {"name": "c"}, "spec": {"tracing": {"otel": {"headers": None}}}}
    assert await resolve_configuration(obj, "default", secrets) == obj
    assert secrets.calls == []


# --- Any input --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=12,
)


def mostly(shape: st.SearchStrategy[Any], odd: st.SearchStrategy[Any] = json_values) -> Any:
    """``shape`` nine times in ten, otherwise any JSON value (an ill-typed field)."""
    return st.integers(0, 9).flatmap(lambda roll: odd if roll == 0 else shape)


secret_names = mostly(st.sampled_from(["a", "b", "c"]), st.just("") | st.none() | json_scalars)
key_names = mostly(st.sampled_from(["", "k", "a"]), st.none() | json_scalars)
secret_key_refs = mostly(st.fixed_dictionaries({"name": secret_names}, optional={"key": key_names}))
pairs = mostly(
    st.lists(
        mostly(
            st.fixed_dictionaries(
                {"name": st.text(max_size=4)},
                optional={
                    "value": json_values,
                    "secretKeyRef": secret_key_refs,
                    "envRef": json_values,
                },
            )
        ),
        min_size=1,
        max_size=4,
    )
)
auths = mostly(
    st.fixed_dictionaries(
        {}, optional={"secretStore": mostly(st.sampled_from(["", "kubernetes", "vault"]))}
    )
)
tls_documents = mostly(
    st.fixed_dictionaries({}, optional={"value": json_values, "secretKeyRef": secret_key_refs})
)
http_transports = mostly(
    st.fixed_dictionaries({"url": st.text(max_size=4), "headers": pairs}, optional={"auth": auths})
)
stdio_transports = mostly(st.fixed_dictionaries({"command": st.just("c"), "env": pairs}))


def objects_with(spec: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "metadata": mostly(st.fixed_dictionaries({"name": mostly(st.text(max_size=4))})),
            "spec": mostly(spec),
        },
        optional={"auth": auths, "kind": json_scalars, "scopes": json_values},
    )


components = objects_with(st.fixed_dictionaries({"type": st.just("state.x"), "metadata": pairs}))
http_endpoints = objects_with(
    st.fixed_dictionaries(
        {"baseUrl": st.just("u")},
        optional={
            "headers": pairs,
            "clientTLS": mostly(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "certificate": tls_documents,
                        "privateKey": tls_documents,
                        "rootCA": tls_documents,
                    },
                )
            ),
        },
    )
)
mcp_endpoints = (
    st.fixed_dictionaries({"streamableHTTP": http_transports})
    | st.fixed_dictionaries({"sse": http_transports})
    | st.fixed_dictionaries({"stdio": stdio_transports})
    # Against the CRD's rule: none, several, or null transports.
    | st.fixed_dictionaries(
        {},
        optional={
            "streamableHTTP": http_transports | st.none(),
            "sse": http_transports | st.none(),
            "stdio": stdio_transports | st.none(),
        },
    )
)
mcp_servers = objects_with(st.fixed_dictionaries({"endpoint": mostly(mcp_endpoints)}))
configurations = objects_with(
    st.fixed_dictionaries(
        {
            "tracing": mostly(
                st.fixed_dictionaries({"otel": mostly(st.fixed_dictionaries({"headers": pairs}))})
            )
        }
    )
)
secret_data = mostly(
    st.dictionaries(
        st.sampled_from(["k", "a", "b", ""]),
        mostly(st.binary(max_size=8).map(b64), json_scalars),
        max_size=3,
    ),
    st.none() | json_values,
)
# "a" and "b" exist (their data may still be odd), "c" only sometimes: both paths get exercised.
secret_stores = st.fixed_dictionaries(
    {"a": secret_data, "b": secret_data}, optional={"c": secret_data}
)
any_dicts = json_values.filter(lambda value: isinstance(value, dict))
cases = st.sampled_from(
    [
        (resolve_component, components),
        (resolve_http_endpoint, http_endpoints),
        (resolve_mcp_server, mcp_servers),
        (resolve_configuration, configurations),
    ]
).flatmap(lambda case: st.tuples(st.just(case[0]), mostly(case[1], any_dicts)))


@given(case=cases, stored=secret_stores, namespace=st.sampled_from(["default", ""]))
def test_any_input_only_raises_secret_error_and_is_never_mutated(
    case: tuple[Resolver, dict], stored: dict, namespace: str
) -> None:
    resolver, obj = case
    before = copy.deepcopy(obj)
    stored_before = copy.deepcopy(stored)
    secrets = FakeSecrets(stored, namespace=namespace)
    try:
        resolved = asyncio.run(resolver(obj, namespace, secrets))
    except SecretError:
        pass
    else:
        assert isinstance(resolved, dict)
        assert resolved is not obj
        # Only values change: the same top-level keys, and TypeMeta/metadata untouched.
        assert resolved.keys() == obj.keys()
        assert resolved.get("metadata") == obj.get("metadata")
    assert obj == before
    assert stored == stored_before
    names = [name for _, name in secrets.calls]
    assert len(names) == len(set(names)), "a Secret was looked up twice in one call"
    assert all(isinstance(name, str) and name for name in names)
