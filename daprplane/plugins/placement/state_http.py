"""``GET /placement/state``: the leader's tables, in the JSON Go's ``encoding/json`` writes.

Dapr marshals the ``StatePlacementTables`` proto struct with encoding/json, not protojson: field
names are the proto names (``api_level``), zero values are omitted, enums are numbers, maps are
sorted by key, and ``<``, ``>``, ``&`` are escaped. A follower answers ``{}`` (Dapr: ``null``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from daprplane._proto.placement.v1 import placement_pb2
from daprplane.core.httpserver import Request, Response

#: namespace -> (hosts sorted by name, version), or None when this node does not lead.
Snapshot = Callable[[], Mapping[str, tuple[list[placement_pb2.Host], int]] | None]

# Struct field order of the generated Go type, which encoding/json follows.
_HOST_FIELDS = (
    "name",
    "port",
    "load",
    "entities",
    "id",
    "pod",
    "api_level",
    "namespace",
    "operation",
)


def host_json(host: placement_pb2.Host) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for field in _HOST_FIELDS:
        value = getattr(host, field)
        if field == "entities":
            value = list(value)
        if value:
            result[field] = value
    if host.HasField("version"):
        result["version"] = host.version  # a pointer: present even when 0
    return result


def state_json(snapshot: Mapping[str, tuple[list[placement_pb2.Host], int]] | None) -> bytes:
    tables: dict[str, Any] = {}
    for namespace in sorted(snapshot or {}):
        hosts, version = snapshot[namespace]  # type: ignore[index]
        table: dict[str, Any] = {}
        if hosts:
            table["hosts"] = [host_json(h) for h in hosts]
        if version:
            table["version"] = version
        tables[namespace] = table
    document = {"tables": tables} if tables else {}
    return go_json(document)


# Go escapes these for HTML safety, and writes \b and \f as \u0008 and \u000c. Escapes are
# matched as whole pairs so that an escaped backslash is never read as the start of another.
_GO_REWRITES = re.compile(r"\\[bf]|\\.|[<>&\u2028\u2029]")
_GO_REPLACEMENTS = {"\\b": "\\u0008", "\\f": "\\u000c"}


def _go_escape(match: re.Match[str]) -> str:
    token = match.group(0)
    if token.startswith("\\"):
        return _GO_REPLACEMENTS.get(token, token)
    return f"\\u{ord(token):04x}"


def go_json(document: Any) -> bytes:
    """Compact JSON, its strings escaped as Go's encoder escapes them."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return _GO_REWRITES.sub(_go_escape, text).encode()


def handler(snapshot: Snapshot) -> Callable[[Request], Awaitable[Response]]:
    async def placement_state(_: Request) -> Response:
        return Response(body=state_json(snapshot()), content_type="application/json")

    return placement_state
