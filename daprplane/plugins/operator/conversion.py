"""Converting Subscriptions between ``dapr.io/v1alpha1`` and ``dapr.io/v2alpha1`` (contract §5.1).

The API server stores Subscriptions as v2alpha1 and asks the operator's ``/convert`` webhook to
turn objects into whichever version a client reads or writes. v1alpha1 is the hub: it has one
``route`` where v2alpha1 has ``routes`` (a ``default`` plus match ``rules``). Going to v1alpha1
keeps ``routes.default`` as ``route`` and drops the rules, so a v2 → v1 → v2 round trip loses
them, as Dapr's does.

Everything else is carried over unchanged, including fields this module does not know: the API
server has already pruned what the schemas do not declare, and a field added to both versions
later must not be lost on the way through an older operator. Fields absent in the source stay
absent. The one exception is v2alpha1's ``routes``, which its schema requires, so a v1alpha1 spec
always becomes a v2alpha1 spec with a ``routes`` object (empty when there was no ``route``).

:func:`review_response` answers a whole ``ConversionReview``. It never raises: whatever arrives,
the API server gets a ``ConversionReview`` back, with ``result.status: Failure`` and a message
saying what was wrong when the request cannot be served.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

GROUP = "dapr.io"
KIND = "Subscription"
V1ALPHA1 = f"{GROUP}/v1alpha1"
V2ALPHA1 = f"{GROUP}/v2alpha1"
VERSIONS = (V1ALPHA1, V2ALPHA1)

REVIEW_KIND = "ConversionReview"
REVIEW_API_VERSION = "apiextensions.k8s.io/v1"
# v1beta1 reviews have the same shape; the API server only sends them when a CRD asks for them.
REVIEW_API_VERSIONS = (REVIEW_API_VERSION, "apiextensions.k8s.io/v1beta1")


class ConversionError(ValueError):
    """An object that is not a Subscription this module can convert."""


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _source_version(obj: Any) -> str:
    """The object's apiVersion, after checking that it is a Subscription in a known version."""
    if not isinstance(obj, Mapping):
        raise ConversionError(f"expected a JSON object, got {_json_type(obj)}")
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if kind != KIND:
        raise ConversionError(f"expected kind {KIND}, got {kind!r}")
    if api_version not in VERSIONS:
        raise ConversionError(
            f"unsupported apiVersion {api_version!r} for {KIND}: expected {V1ALPHA1} or {V2ALPHA1}"
        )
    spec = obj.get("spec")
    if spec is not None and not isinstance(spec, Mapping):
        raise ConversionError(f"spec must be an object, got {_json_type(spec)}")
    return str(api_version)


def _copy(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {key: copy.deepcopy(value) for key, value in obj.items()}


def to_v1alpha1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as a v1alpha1 Subscription (the hub); raises :class:`ConversionError`."""
    if _source_version(obj) == V1ALPHA1:
        return _copy(obj)
    converted = _copy(obj)
    converted["apiVersion"] = V1ALPHA1
    spec = converted.get("spec")
    if spec is None:
        return converted
    routes = spec.pop("routes", None)
    if routes is not None and not isinstance(routes, Mapping):
        raise ConversionError(f"spec.routes must be an object, got {_json_type(routes)}")
    if routes is not None and "default" in routes:
        spec["route"] = routes["default"]
    return converted


def to_v2alpha1(obj: Mapping[str, Any]) -> dict[str, Any]:
    """``obj`` as a v2alpha1 Subscription; raises :class:`ConversionError`."""
    if _source_version(obj) == V2ALPHA1:
        return _copy(obj)
    converted = _copy(obj)
    converted["apiVersion"] = V2ALPHA1
    spec = converted.get("spec")
    if spec is None:
        return converted
    routes: dict[str, Any] = {}
    if "route" in spec:
        routes["default"] = spec.pop("route")
    spec["routes"] = routes
    return converted


CONVERTERS = {V1ALPHA1: to_v1alpha1, V2ALPHA1: to_v2alpha1}


# -- ConversionReview ---------------------------------------------------------------------------


class _ReviewError(Exception):
    """Why a review cannot be served; the message goes back in ``result.message``."""


def _review(api_version: str, response: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": REVIEW_KIND, "response": response}


def _uid_of(review: Any) -> str | None:
    request = review.get("request") if isinstance(review, Mapping) else None
    uid = request.get("uid") if isinstance(request, Mapping) else None
    return uid if isinstance(uid, str) and uid else None


def _converted_objects(review: Any) -> list[dict[str, Any]]:
    """Every object of the review's request in the desired version; raises :class:`_ReviewError`."""
    if not isinstance(review, Mapping):
        raise _ReviewError(f"conversion review must be a JSON object, got {_json_type(review)}")
    api_version = review.get("apiVersion", REVIEW_API_VERSION)
    kind = review.get("kind", REVIEW_KIND)
    if api_version not in REVIEW_API_VERSIONS:
        raise _ReviewError(
            f"unsupported ConversionReview apiVersion {api_version!r}: "
            f"expected {REVIEW_API_VERSION}"
        )
    if kind != REVIEW_KIND:
        raise _ReviewError(f"expected kind {REVIEW_KIND}, got {kind!r}")
    request = review.get("request")
    if not isinstance(request, Mapping):
        raise _ReviewError("conversion review has no request")
    if _uid_of(review) is None:
        raise _ReviewError("conversion request has no uid (a non-empty string)")
    desired = request.get("desiredAPIVersion")
    convert = CONVERTERS.get(desired) if isinstance(desired, str) else None
    if convert is None:
        raise _ReviewError(
            f"unsupported desiredAPIVersion {desired!r}: expected {V1ALPHA1} or {V2ALPHA1}"
        )
    objects = request.get("objects")
    if objects is None:
        objects = []
    if not isinstance(objects, list):
        raise _ReviewError(f"request.objects must be an array, got {_json_type(objects)}")
    converted = []
    for index, obj in enumerate(objects):
        try:
            converted.append(convert(obj))
        except ConversionError as error:
            raise _ReviewError(f"cannot convert object {index} to {desired}: {error}") from None
    return converted


def review_response(review: Any) -> dict[str, Any]:
    """The ``ConversionReview`` answering ``review`` (decoded JSON); never raises.

    The answer has the review's own apiVersion when it is one this module speaks, else
    :data:`REVIEW_API_VERSION`, and echoes the request's uid whenever there is one.
    """
    api_version = REVIEW_API_VERSION
    if isinstance(review, Mapping) and review.get("apiVersion") in REVIEW_API_VERSIONS:
        api_version = str(review["apiVersion"])
    uid = _uid_of(review)
    try:
        converted = _converted_objects(review)
    except _ReviewError as error:
        message = str(error)
    except RecursionError:
        # Objects nested deeper than the interpreter can copy; JSON from the API server never is.
        message = "conversion review is nested too deeply to convert"
    else:
        return _review(
            api_version,
            {"uid": uid, "convertedObjects": converted, "result": {"status": "Success"}},
        )
    response: dict[str, Any] = {} if uid is None else {"uid": uid}
    response["result"] = {"status": "Failure", "message": message}
    return _review(api_version, response)
