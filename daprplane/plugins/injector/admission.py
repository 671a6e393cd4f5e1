"""AdmissionReview documents: reading the API server's request and writing the answer.

Dapr decodes the review with an empty scheme, so it never checks ``apiVersion``: ``v1`` and
``v1beta1`` reviews are read alike (their request and response shapes are the same) and the
answer echoes the request's ``kind`` and ``apiVersion``, which is what the API server expects.

Decoding problems are answered, as Dapr answers them, with HTTP 200 and ``allowed: false`` plus a
message; a review that decodes but carries no ``request`` (which makes Dapr's handler panic and
drop the connection) gets the same kind of answer.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daprplane.plugins.injector.podsettings import PodSettings


class ReviewError(ValueError):
    """A body that is not a usable AdmissionReview; ``echo`` holds what could still be read."""

    def __init__(self, message: str, echo: Echo | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.echo = echo or Echo()


@dataclass(frozen=True)
class Echo:
    """The parts of a request every answer repeats: ``kind``, ``apiVersion`` and the uid."""

    kind: str | None = None
    api_version: str | None = None
    uid: str | None = None


@dataclass(frozen=True)
class UserInfo:
    username: str = ""
    uid: str = ""
    groups: tuple[str, ...] = ()


@dataclass(frozen=True)
class AdmissionRequest:
    echo: Echo
    #: ``request.kind.kind``: ``Pod`` for the reviews the injector acts on.
    kind: str
    namespace: str
    name: str
    operation: str
    user: UserInfo
    #: ``request.object`` as decoded JSON (``None`` when absent or ``null``).
    object: Any = field(default=None, repr=False)

    @property
    def uid(self) -> str:
        return self.echo.uid or ""

    @functools.cached_property
    def pod(self) -> PodSettings:
        """``object`` read as a pod, once per request: every step of the answer shares it."""
        return PodSettings(self.object)


def _string(value: Any, where: str, echo: Echo) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ReviewError(
            f"cannot unmarshal {json_type(value)} into field {where} of type string", echo
        )
    return value


def _mapping(value: Any, where: str, echo: Echo) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ReviewError(
            f"cannot unmarshal {json_type(value)} into field {where} of type object", echo
        )
    return value


def json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return "null"


def _decode(body: bytes) -> Any:
    try:
        return json.loads(body)
    except RecursionError:
        raise ReviewError("couldn't decode the admission review: JSON nested too deeply") from None
    except ValueError as error:
        # UnicodeDecodeError is a ValueError too.
        raise ReviewError(f"couldn't decode the admission review: {error}") from None


def _echo(document: Mapping[str, Any]) -> Echo:
    kind, api_version = document.get("kind"), document.get("apiVersion")
    request = document.get("request")
    uid = request.get("uid") if isinstance(request, Mapping) else None
    return Echo(
        kind=kind if isinstance(kind, str) and kind else None,
        api_version=api_version if isinstance(api_version, str) and api_version else None,
        uid=uid if isinstance(uid, str) else None,
    )


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of an AdmissionReview body; :class:`ReviewError` if there is none."""
    document = _decode(body)
    if not isinstance(document, Mapping):
        raise ReviewError(
            f"couldn't decode the admission review: expected a JSON object, got "
            f"{json_type(document)}"
        )
    echo = _echo(document)
    for key in ("kind", "apiVersion"):
        if document.get(key) is not None and not isinstance(document[key], str):
            raise ReviewError(
                f"couldn't get version/kind: {key} must be a string, got "
                f"{json_type(document[key])}",
                echo,
            )
    if document.get("request") is None:
        raise ReviewError("the admission review has no request", echo)
    request = _mapping(document["request"], "request", echo)
    kind = _mapping(request.get("kind"), "request.kind", echo)
    user = _mapping(request.get("userInfo"), "request.userInfo", echo)
    groups = user.get("groups")
    if groups is not None and not (
        isinstance(groups, list) and all(isinstance(g, str) for g in groups)
    ):
        raise ReviewError(
            "cannot unmarshal request.userInfo.groups: expected an array of strings", echo
        )
    return AdmissionRequest(
        echo=echo,
        kind=_string(kind.get("kind"), "request.kind.kind", echo),
        namespace=_string(request.get("namespace"), "request.namespace", echo),
        name=_string(request.get("name"), "request.name", echo),
        operation=_string(request.get("operation"), "request.operation", echo),
        user=UserInfo(
            username=_string(user.get("username"), "request.userInfo.username", echo),
            uid=_string(user.get("uid"), "request.userInfo.uid", echo),
            groups=tuple(groups or ()),
        ),
        object=request.get("object"),
    )


# -- reading the pod --------------------------------------------------------------------------
# One-off questions about a pod outside a request; the webhook asks ``review.pod``.


def dapr_enabled(obj: Any) -> bool:
    """Dapr's pre-check (:attr:`PodSettings.enabled`)."""
    return PodSettings(obj).enabled


def app_id_of(obj: Any) -> str:
    """The app id metrics and logs name (:attr:`PodSettings.app_id`)."""
    return PodSettings(obj).app_id


# -- answers ----------------------------------------------------------------------------------


def _review(echo: Echo, response: dict[str, Any]) -> bytes:
    document: dict[str, Any] = {}
    if echo.kind is not None:
        document["kind"] = echo.kind
    if echo.api_version is not None:
        document["apiVersion"] = echo.api_version
    document["response"] = response
    return json.dumps(document, separators=(",", ":")).encode()


def _response(echo: Echo, allowed: bool) -> dict[str, Any]:
    # Go's AdmissionResponse.UID has no omitempty: the member is always there.
    return {"uid": echo.uid or "", "allowed": allowed}


def allowed(echo: Echo, patch: Sequence[Mapping[str, Any]] | None = None) -> bytes:
    """``allowed: true``, with the JSON patch (base64, ``patchType: JSONPatch``) if non-empty."""
    response = _response(echo, True)
    if patch:
        encoded = json.dumps(list(patch), separators=(",", ":")).encode()
        response["patch"] = base64.b64encode(encoded).decode()
        response["patchType"] = "JSONPatch"
    return _review(echo, response)


def denied(echo: Echo, message: str) -> bytes:
    """``allowed: false`` with ``message``: the API server rejects the object with it."""
    response = _response(echo, False)
    response["status"] = {"metadata": {}, "message": message}
    return _review(echo, response)
