"""Tolerations that make the injector set daprd's ``command`` (``IGNORE_ENTRYPOINT_TOLERATIONS``).

Virtual-node providers (ACI, ECI, Fargate...) ignore a container image's entrypoint, so on pods
that tolerate them daprd needs ``command: ["/daprd"]``. Dapr compares tolerations with Go struct
equality, so a toleration is the tuple of its five fields with Go's zero values filled in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

Toleration = tuple[str, str, str, str, int | None]

_STRING_FIELDS = ("key", "operator", "value", "effect")
_FIELDS = (*_STRING_FIELDS, "tolerationSeconds")


class TolerationsError(ValueError):
    """The env var is not a JSON list of tolerations."""


def parse_tolerations_json(text: str) -> tuple[Toleration, ...]:
    """Decode the env var as Go's encoding/json would: keys match case-insensitively."""
    try:
        items = json.loads(text)
    except ValueError as error:
        raise TolerationsError(str(error)) from error
    if items is None:
        return ()
    if not isinstance(items, list):
        raise TolerationsError("expected a JSON array of tolerations")
    tolerations: list[Toleration] = []
    for item in items:
        if item is None:
            tolerations.append(("", "", "", "", None))
            continue
        if not isinstance(item, dict):
            raise TolerationsError("expected a JSON object for each toleration")
        folded = _fold_keys(item)
        toleration = _toleration(folded)
        if toleration is None:
            raise TolerationsError("toleration field has the wrong type")
        tolerations.append(toleration)
    return tuple(tolerations)


def pod_tolerations(pod_spec: Mapping[str, Any]) -> tuple[Toleration, ...]:
    """The pod's tolerations; ones with ill-typed fields cannot match and are left out."""
    items = pod_spec.get("tolerations") or []
    found = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict) and (toleration := _toleration(item)) is not None:
            found.append(toleration)
    return tuple(found)


def tolerates_any(pod: Sequence[Toleration], wanted: Sequence[Toleration]) -> bool:
    return any(toleration in pod for toleration in wanted)


def _fold_keys(item: Mapping[str, Any]) -> dict[str, Any]:
    # An exact key wins over a case-insensitive one, as in encoding/json.
    folded: dict[str, Any] = {}
    for field in _FIELDS:
        if field in item:
            folded[field] = item[field]
            continue
        for key, value in item.items():
            if key.lower() == field.lower():
                folded[field] = value
    return folded


def _toleration(item: Mapping[str, Any]) -> Toleration | None:
    strings = []
    for field in _STRING_FIELDS:
        value = item.get(field)
        if value is None:
            value = ""
        if not isinstance(value, str):
            return None
        strings.append(value)
    seconds = item.get("tolerationSeconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
        return None
    return (strings[0], strings[1], strings[2], strings[3], seconds)
