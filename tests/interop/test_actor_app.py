"""The interop actor app on its own: Dapr's app-side actor protocol as daprd will call it.

Fast and daprd-free, so that a failing interop test can be told apart from a broken app.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import test_utils, web

from tests.interop.actor_app import ACTOR_SETTINGS, ActorHost, build_app

Client = test_utils.TestClient[web.Request, web.Application]


@pytest.fixture
async def client() -> AsyncIterator[Client]:
    host = ActorHost("app-x", ("Counter",))
    async with test_utils.TestClient(test_utils.TestServer(build_app(host))) as test_client:
        yield test_client


async def put(client: Client, path: str) -> tuple[int, object]:
    response = await client.put(path, json={})
    body = await response.json() if response.content_type == "application/json" else None
    return response.status, body


async def test_config_names_the_actor_types_and_settings(client: Client) -> None:
    response = await client.get("/dapr/config")
    assert response.status == 200
    assert await response.json() == {"entities": ["Counter"], **ACTOR_SETTINGS}
    assert (await client.get("/healthz")).status == 200


async def test_actor_activates_on_first_call_and_counts(client: Client) -> None:
    assert await put(client, "/actors/Counter/a/method/increment") == (200, {"count": 1})
    assert await put(client, "/actors/Counter/a/method/increment") == (200, {"count": 2})
    status, whoami = await put(client, "/actors/Counter/a/method/whoami")
    assert status == 200
    assert isinstance(whoami, dict)
    assert (whoami["app"], whoami["type"], whoami["id"], whoami["count"]) == (
        "app-x",
        "Counter",
        "a",
        2,
    )
    view = await (await client.get("/introspect")).json()
    assert view["active"] == [["Counter", "a"]]
    assert view["activations"] == [["Counter", "a"]]
    assert view["pid"] == whoami["pid"]


async def test_deactivation_drops_the_state(client: Client) -> None:
    await put(client, "/actors/Counter/a/method/increment")
    assert (await client.delete("/actors/Counter/a")).status == 200
    view = await (await client.get("/introspect")).json()
    assert (view["active"], view["deactivations"]) == ([], [["Counter", "a"]])
    assert await put(client, "/actors/Counter/a/method/increment") == (200, {"count": 1})
    # Deactivating an actor that is not active is harmless and recorded as nothing.
    assert (await client.delete("/actors/Counter/never")).status == 200
    assert (await (await client.get("/introspect")).json())["deactivations"] == [["Counter", "a"]]


async def test_unknown_types_methods_and_verbs_are_refused(client: Client) -> None:
    assert (await put(client, "/actors/Other/a/method/increment"))[0] == 404
    assert (await put(client, "/actors/Counter/a/method/explode"))[0] == 404
    assert (await client.post("/actors/Counter/a/method/increment")).status == 404
    view = await (await client.get("/introspect")).json()
    # The unknown method still activated the actor (daprd activates on any call); the wrong
    # verb did not reach it.
    assert view["activations"] == [["Counter", "a"]]
