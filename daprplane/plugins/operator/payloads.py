"""The operator's payload bytes: Dapr objects shaped and encoded as Go's ``encoding/json`` would.

Every operator RPC carries JSON of a Go CRD struct, and sidecars decode it into the same struct.
The API server's JSON of a custom resource already decodes there, but it omits fields the Go
struct always writes (an empty ``auth``, a ``null`` creation timestamp, empty secret references),
and clients that compare payloads with Go's own output see those gaps. :func:`go_shape` fills them
in for the fields whose shape is pinned, and :func:`encode` writes bytes the way Go does.

Only pinned fields are touched. Anything else, including fields this module does not know (a
newer CRD version's), is passed through, as is any field of an unexpected type: shaping never
raises and never mutates its input. Key order is the input's, with added keys last; sidecars
decode by name, so order never matters to them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from daprplane.plugins.operator.kinds import COMPONENTS, CONFIGURATIONS, DAPR_KINDS, HTTP_ENDPOINTS

_KNOWN_KINDS = frozenset(kind.kind for kind in DAPR_KINDS)
#: Kinds whose struct has ``Scopes []string `json:"scopes,omitempty"```.
_SCOPED_KINDS = frozenset(kind.kind for kind in DAPR_KINDS if kind.scoped)


def _zero_if_null(value: object, default: object) -> object:
    """Go decodes JSON null into a field's zero value and writes that back."""
    return default if value is None else value


def _with_creation_timestamp(metadata: object) -> object:
    # ObjectMeta.CreationTimestamp is a struct, so Go writes it even when zero, as null.
    if metadata is None:
        return {"creationTimestamp": None}
    if not isinstance(metadata, Mapping):
        return metadata
    shaped = dict(metadata)
    shaped.setdefault("creationTimestamp", None)
    return shaped


def _name_value_pair(pair: object) -> object:
    """A ``NameValuePair``: ``value`` (null when unset) and ``secretKeyRef`` (a struct, never
    omitted) always present; ``envRef`` only when non-empty."""
    if not isinstance(pair, Mapping):
        return pair
    shaped = dict(pair)
    shaped.setdefault("value", None)
    ref = shaped.get("secretKeyRef")
    if ref is None:
        shaped["secretKeyRef"] = {"name": "", "key": ""}
    elif isinstance(ref, Mapping):
        shaped_ref = dict(ref)
        for field in ("name", "key"):
            shaped_ref[field] = _zero_if_null(shaped_ref.get(field), "")
        shaped["secretKeyRef"] = shaped_ref
    if shaped.get("envRef") in ("", None):
        shaped.pop("envRef", None)
    return shaped


def _name_value_pairs(pairs: object) -> object:
    if not isinstance(pairs, list):
        return pairs
    return [_name_value_pair(pair) for pair in pairs]


def _with_auth(obj: dict[str, Any]) -> None:
    # The embedded Auth struct ({secretStore}) has no omitempty effect: it is always written.
    auth = obj.get("auth")
    if auth is None:
        obj["auth"] = {"secretStore": ""}
    elif isinstance(auth, Mapping):
        obj["auth"] = {**auth, "secretStore": _zero_if_null(auth.get("secretStore"), "")}


def _shape_component(obj: dict[str, Any]) -> None:
    _with_auth(obj)
    spec = obj.get("spec")
    if spec is None:
        spec = {}
    if not isinstance(spec, Mapping):
        return
    shaped = dict(spec)
    for field, zero in (("type", ""), ("version", ""), ("ignoreErrors", False)):
        shaped[field] = _zero_if_null(shaped.get(field), zero)
    # A nil slice is written as null; the API server's JSON of a Component always has a list.
    shaped["metadata"] = _name_value_pairs(shaped.get("metadata"))
    shaped["initTimeout"] = _zero_if_null(shaped.get("initTimeout"), "")
    obj["spec"] = shaped


def _shape_http_endpoint(obj: dict[str, Any]) -> None:
    _with_auth(obj)
    spec = obj.get("spec")
    if isinstance(spec, Mapping) and "headers" in spec:
        obj["spec"] = {**spec, "headers": _name_value_pairs(spec["headers"])}


def _shape_configuration(obj: dict[str, Any]) -> None:
    spec = obj.get("spec")
    tracing = spec.get("tracing") if isinstance(spec, Mapping) else None
    otel = tracing.get("otel") if isinstance(tracing, Mapping) else None
    if not isinstance(otel, Mapping) or "headers" not in otel:
        return
    assert isinstance(spec, Mapping) and isinstance(tracing, Mapping)
    otel = {**otel, "headers": _name_value_pairs(otel["headers"])}
    obj["spec"] = {**spec, "tracing": {**tracing, "otel": otel}}


_SPEC_SHAPERS: dict[str, Callable[[dict[str, Any]], None]] = {
    COMPONENTS.kind: _shape_component,
    HTTP_ENDPOINTS.kind: _shape_http_endpoint,
    CONFIGURATIONS.kind: _shape_configuration,
}


def go_shape(kind: str, obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` (an object of Dapr kind ``kind``) as Go writes the typed struct.

    Unknown kinds come back as a shallow copy. The result shares untouched parts with ``obj``.
    """
    shaped = dict(obj)
    if kind not in _KNOWN_KINDS:
        return shaped
    shaped["metadata"] = _with_creation_timestamp(shaped.get("metadata"))
    if kind in _SCOPED_KINDS and shaped.get("scopes", ...) in ([], None):
        del shaped["scopes"]
    shaper = _SPEC_SHAPERS.get(kind)
    if shaper is not None:
        shaper(shaped)
    return shaped


def strip_type_meta(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` without ``kind``/``apiVersion``: stream events carry objects as watched, bare."""
    return {key: value for key, value in obj.items() if key not in ("kind", "apiVersion")}


def with_type_meta(obj: Mapping[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    """``obj`` with ``kind``/``apiVersion``, as List and Get responses carry them."""
    return {"kind": kind, "apiVersion": api_version, **strip_type_meta(obj)}


# Go's encoder writes <, > and & escaped (HTML-safe by default), U+2028/U+2029 escaped (for
# JavaScript), and each unencodable code unit as the escape \ufffd. Python's json module does
# none of these, so strings get this table applied after json.dumps has quoted them.
_GO_STRING_ESCAPES: dict[int, str] = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
    # A Python str may hold lone surrogates (from "\ud800" in JSON); UTF-8 cannot.
    **{surrogate: "\\ufffd" for surrogate in range(0xD800, 0xE000)},
}


def _go_float(number: float) -> str:
    """A float64 as Go's encoder writes it: the shortest round-tripping digits, positional
    between 1e-6 and 1e21, otherwise exponent form without a leading zero in the exponent."""
    if not math.isfinite(number):
        raise ValueError(f"json: unsupported value: {number}")
    shortest = repr(number)
    magnitude = abs(number)
    if magnitude != 0 and (magnitude < 1e-6 or magnitude >= 1e21):
        # repr writes this range in exponent form too ("1e-07", "1.5e+21"); Go then trims a
        # two-digit negative exponent's leading zero.
        return shortest.replace("e-0", "e-")
    positional = format(Decimal(shortest), "f")
    if "." in positional:
        positional = positional.rstrip("0").rstrip(".")
    return positional


def _encode_into(value: object, parts: list[str]) -> None:
    # Written by hand because json.dumps has no hook for float formatting or string escaping.
    if isinstance(value, str):
        parts.append(json.dumps(value, ensure_ascii=False).translate(_GO_STRING_ESCAPES))
    elif value is None or isinstance(value, bool | int):
        parts.append(json.dumps(value))
    elif isinstance(value, float):
        parts.append(_go_float(value))
    elif isinstance(value, Mapping):
        parts.append("{")
        for index, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"json: object keys must be strings, not {type(key).__name__}")
            if index:
                parts.append(",")
            _encode_into(key, parts)
            parts.append(":")
            _encode_into(item, parts)
        parts.append("}")
    elif isinstance(value, list | tuple):
        parts.append("[")
        for index, item in enumerate(value):
            if index:
                parts.append(",")
            _encode_into(item, parts)
        parts.append("]")
    else:
        raise TypeError(f"json: unsupported type: {type(value).__name__}")


def encode(obj: object) -> bytes:
    """Compact UTF-8 JSON of ``obj``, byte for byte as Go's ``json.Marshal`` writes it.

    Raises ValueError for NaN or infinities and TypeError for values JSON cannot hold, as Go's
    ``json.Marshal`` fails on them.
    """
    parts: list[str] = []
    _encode_into(obj, parts)
    return "".join(parts).encode("utf-8")
