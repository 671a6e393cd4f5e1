"""``POST /convert`` served over loopback by aiohttp's test server."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from daprplane.plugins.operator.conversion import V1ALPHA1, V2ALPHA1
from daprplane.plugins.operator.webhook import conversion_application

LOG = logging.getLogger("dapr.operator.test")

SUBSCRIPTION_V1 = {
    "apiVersion": V1ALPHA1,
    "kind": "Subscription",
    "metadata": {"name": "orders", "namespace": "shop"},
    "spec": {"pubsubname": "pubsub", "topic": "orders", "route": "/orders"},
    "scopes": ["app1"],
}


def review(*objects: Any, desired: str = V2ALPHA1) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "request": {"uid": "0b4c7a2e-1", "desiredAPIVersion": desired, "objects": list(objects)},
    }


@pytest.fixture
async def client() -> AsyncIterator[TestClient[Any, Any]]:
    async with TestClient(TestServer(conversion_application(LOG), host="127.0.0.1")) as client:
        yield client


async def test_valid_review_is_converted(client: TestClient[Any, Any]) -> None:
    response = await client.post("/convert", json=review(SUBSCRIPTION_V1))
    assert response.status == 200
    assert response.content_type == "application/json"
    assert await response.json() == {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "ConversionReview",
        "response": {
            "uid": "0b4c7a2e-1",
            "convertedObjects": [
                {
                    "apiVersion": V2ALPHA1,
                    "kind": "Subscription",
                    "metadata": {"name": "orders", "namespace": "shop"},
                    "spec": {
                        "pubsubname": "pubsub",
                        "topic": "orders",
                        "routes": {"default": "/orders"},
                    },
                    "scopes": ["app1"],
                }
            ],
            "result": {"status": "Success"},
        },
    }


async def test_content_type_is_not_checked(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        "/convert",
        data=json.dumps(review(SUBSCRIPTION_V1, desired=V1ALPHA1)),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status == 200
    body = await response.json()
    assert body["response"]["convertedObjects"] == [SUBSCRIPTION_V1]


async def test_a_review_that_cannot_be_served_is_a_failure_review(
    client: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    response = await client.post("/convert", json=review(SUBSCRIPTION_V1, desired="dapr.io/v9"))
    assert response.status == 200
    body = await response.json()
    assert body["kind"] == "ConversionReview"
    assert body["response"]["uid"] == "0b4c7a2e-1"
    assert body["response"]["result"]["status"] == "Failure"
    assert "unsupported desiredAPIVersion 'dapr.io/v9'" in body["response"]["result"]["message"]
    assert "unsupported desiredAPIVersion" in caplog.text


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "cannot decode the ConversionReview: Expecting property name"),
        (b"", "cannot decode the ConversionReview: empty body"),
        (b"\xff\xfe\x00", "cannot decode the ConversionReview"),
        (b'{"request": NaN}', "invalid JSON value NaN"),
        (b"[" * 100_000 + b"]" * 100_000, "cannot decode the ConversionReview"),
    ],
)
async def test_a_body_that_is_not_json_is_a_400(
    client: TestClient[Any, Any], body: bytes, reason: str
) -> None:
    response = await client.post(
        "/convert", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert response.content_type == "text/plain"
    assert reason in await response.text()


async def test_only_post_is_served(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/convert")).status == 405
    assert (await client.post("/other", json=review())).status == 404


async def test_large_reviews_are_accepted(client: TestClient[Any, Any]) -> None:
    # The API server converts whole LIST responses in one review.
    many = [
        {**SUBSCRIPTION_V1, "metadata": {"name": f"s{i}", "namespace": "shop"}}
        for i in range(20_000)
    ]
    response = await client.post("/convert", json=review(*many))
    assert response.status == 200
    converted = (await response.json())["response"]["convertedObjects"]
    assert len(converted) == 20_000
    assert converted[-1]["metadata"]["name"] == "s19999"
    assert converted[-1]["spec"]["routes"] == {"default": "/orders"}
