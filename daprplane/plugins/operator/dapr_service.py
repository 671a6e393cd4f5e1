"""The ``<app-id>-dapr`` Service the operator keeps beside every Dapr-enabled workload.

For each Deployment, StatefulSet (and Argo Rollout) whose pod template is annotated
``dapr.io/enabled``, the operator keeps a headless Service named after the app ID. Sidecars find
each other through its DNS records, and Prometheus finds their metrics through its annotations.

This module builds that Service from the workload's JSON and decides whether the live one must be
rewritten. It does no I/O: the reconciler around it only gets, creates and replaces objects, so
every rule about the Service's shape is here and can be tested without an API server.

Where Dapr's operator would build a Service the API server rejects (a port annotation outside
1..65535, an unusable key in ``dapr.io/sidecar-svc-annotations``), this module leaves the bad part
out instead, so one bad annotation does not stop the Service from existing at all.
"""

from __future__ import annotations

import copy
import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "InvalidAppId",
    "desired_service",
    "is_truthy",
    "service_annotations",
    "service_differs",
    "service_name",
    "template_annotations",
    "updated_service",
    "validate_app_id",
    "wants_service",
]

_log = logging.getLogger("dapr.operator.handlers")

# Pod-template annotations the Service is built from.
ENABLED = "dapr.io/enabled"
APP_ID = "dapr.io/app-id"
ENABLE_METRICS = "dapr.io/enable-metrics"
GRPC_PORT = "dapr.io/grpc-port"
INTERNAL_GRPC_PORT = "dapr.io/internal-grpc-port"
METRICS_PORT = "dapr.io/metrics-port"
SIDECAR_SVC_ANNOTATIONS = "dapr.io/sidecar-svc-annotations"

# Annotations the operator writes on the Service when the sidecar exports metrics.
PROMETHEUS_PROBE = "prometheus.io/probe"
PROMETHEUS_SCRAPE = "prometheus.io/scrape"  # deprecated by Dapr since 1.7, still written
PROMETHEUS_PORT = "prometheus.io/port"
PROMETHEUS_PATH = "prometheus.io/path"

SERVICE_SUFFIX = "-dapr"
SERVICE_LABELS: Mapping[str, str] = {ENABLED: "true"}

# daprd always listens for HTTP on 3500 inside the pod; the Service publishes it on 80 even when
# the sidecar's HTTP port is changed, as Dapr's operator does.
HTTP_PORT = 80
HTTP_TARGET_PORT = 3500
DEFAULT_GRPC_PORT = 50001
DEFAULT_INTERNAL_GRPC_PORT = 50002
DEFAULT_METRICS_PORT = 9090

# The Service-spec fields the operator sets and compares. Everything else in a live spec
# (clusterIPs, ipFamilies, sessionAffinity, type, ...) is filled in by the API server.
_PORT_FIELDS = ("name", "protocol", "port", "targetPort", "appProtocol")
# Fields the API server assigns at creation and a replace must carry over unchanged.
_ALLOCATED_SPEC_FIELDS = ("clusterIPs", "ipFamilies", "ipFamilyPolicy")
_OWNER_REFERENCE_FIELDS = ("apiVersion", "kind", "name", "uid", "controller", "blockOwnerDeletion")

_TRUTHY = frozenset({"y", "yes", "true", "t", "on", "1"})
# Go's strings.TrimSpace trims Unicode White_Space. Python's str.strip() also trims \x1c-\x1f,
# which Go keeps, so the set is spelt out.
_GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009"
    "\u200a\u2028\u2029\u202f\u205f\u3000"
)
# strconv.ParseInt(v, 10, 32): ASCII digits with an optional sign; no spaces or underscores,
# which Python's int() would accept.
_GO_INT = re.compile(r"[+-]?[0-9]+")
_INT32_MAX_DIGITS = 10

# Kubernetes' label and name rules, and the wording its own validation uses for them.
_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS1123_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_QUALIFIED_NAME = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_DNS1123_LABEL_MAX = 63
_DNS1123_SUBDOMAIN_MAX = 253
_DNS1123_LABEL_RULE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and "
    "must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


class InvalidAppId(ValueError):
    """The template's ``dapr.io/app-id`` cannot name a Service; the reconciler retries later."""


def is_truthy(value: str | None) -> bool:
    """Dapr's truthiness: after trimming, case-insensitively one of y, yes, true, t, on, 1."""
    return value is not None and value.strip(_GO_SPACE).lower() in _TRUTHY


def service_name(app_id: str) -> str:
    return app_id + SERVICE_SUFFIX


def validate_app_id(app_id: str) -> None:
    """Raise :class:`InvalidAppId` unless ``<app_id>-dapr`` is a valid Service name.

    A Service name must be a DNS-1123 label, so the app ID itself may have at most 58
    characters. The message names both values and states each broken rule in the words the API
    server would use for that Service name.
    """
    if app_id == "":
        raise InvalidAppId("value for the dapr.io/app-id annotation is empty")
    name = service_name(app_id)
    problems = []
    if len(name.encode()) > _DNS1123_LABEL_MAX:
        problems.append(f"must be no more than {_DNS1123_LABEL_MAX} characters")
    if not _DNS1123_LABEL.fullmatch(name):
        # Kubernetes words a name that would be a valid DNS subdomain more helpfully.
        dotted = _DNS1123_SUBDOMAIN.fullmatch(name)
        problems.append("must not contain dots" if dotted else _DNS1123_LABEL_RULE)
    if problems:
        detail = "; ".join(problems)
        raise InvalidAppId(f"invalid app id (input: '{app_id}', service: '{name}'): {detail}")


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _string_map(value: object) -> dict[str, str]:
    """The string-to-string entries of a JSON object; anything else reads as absent."""
    return {k: v for k, v in _mapping(value).items() if isinstance(k, str) and isinstance(v, str)}


def _string(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    return value if isinstance(value, str) else ""


def template_annotations(workload: Mapping[str, Any]) -> Mapping[str, str]:
    """``spec.template.metadata.annotations``; missing or ill-typed parts read as empty."""
    template = _mapping(_mapping(_mapping(workload).get("spec")).get("template"))
    return _string_map(_mapping(template.get("metadata")).get("annotations"))


def wants_service(workload: Mapping[str, Any]) -> bool:
    """Whether the workload should have a Service: Dapr-enabled and not being deleted.

    A workload without Dapr is left alone: its Service, if any, is not deleted (garbage
    collection removes it with its owner).
    """
    if _mapping(_mapping(workload).get("metadata")).get("deletionTimestamp"):
        return False
    return is_truthy(template_annotations(workload).get(ENABLED))


def _metrics_enabled(annotations: Mapping[str, str]) -> bool:
    # Read as the sidecar injector reads it, so that the Service advertises metrics exactly
    # when the injected daprd exports them: on when absent, otherwise the value's truthiness.
    value = annotations.get(ENABLE_METRICS)
    return value is None or is_truthy(value)


def _port(annotations: Mapping[str, str], key: str, default: int) -> int:
    """A port annotation read as ``strconv.ParseInt(v, 10, 32)``, or the default.

    Go's parse accepts a sign and leading zeros, so Dapr's operator would also take 0 and
    negative numbers (and anything up to 2**31-1) and write them into the Service, which the API
    server then rejects: no Service at all. A port outside 1..65535 falls back to the default
    here instead, deliberately.
    """
    value = annotations.get(key)
    if value is None or not _GO_INT.fullmatch(value):
        return default
    digits = value.lstrip("+-").lstrip("0")
    # Go accepts any number of leading zeros; int() of a very long string would raise instead.
    if len(digits) > _INT32_MAX_DIGITS:
        return default
    number = -int(digits or "0") if value.startswith("-") else int(digits or "0")
    return number if 1 <= number <= 65535 else default


def _is_annotation_key(key: str) -> bool:
    """Whether the API server accepts ``key`` as an annotation key (a qualified name).

    The API server checks annotation keys lowercased, so uppercase prefixes are allowed.
    """
    parts = key.lower().split("/")
    if len(parts) == 2:
        prefix, name = parts
        if (
            not prefix
            or len(prefix) > _DNS1123_SUBDOMAIN_MAX
            or not _DNS1123_SUBDOMAIN.fullmatch(prefix)
        ):
            return False
    elif len(parts) == 1:
        name = parts[0]
    else:
        return False
    return 0 < len(name) <= _DNS1123_LABEL_MAX and bool(_QUALIFIED_NAME.fullmatch(name))


def _extra_annotations(text: str) -> list[tuple[str, str]]:
    """``dapr.io/sidecar-svc-annotations``: comma-separated ``key=value`` pairs, trimmed.

    Entries without ``=`` or with an empty key are skipped; a value may be empty and may itself
    contain ``=`` (only the first one splits).
    """
    pairs = []
    for entry in text.split(","):
        key, sep, value = entry.strip(_GO_SPACE).partition("=")
        key = key.strip(_GO_SPACE)
        if sep and key:
            pairs.append((key, value.strip(_GO_SPACE)))
    return pairs


def service_annotations(
    annotations: Mapping[str, str], log: logging.Logger | None = None
) -> dict[str, str]:
    """The Service's annotations, from the pod template's ``annotations``.

    Always ``dapr.io/app-id``; the four ``prometheus.io/*`` scrape hints unless
    ``dapr.io/enable-metrics`` is falsy; then the user's pairs from
    ``dapr.io/sidecar-svc-annotations``. A user key the operator already sets is ignored with a
    warning (other ``dapr.io/*`` keys are fine). A key the API server would refuse is also
    skipped with a warning, where Dapr's operator would fail to write the Service at all.
    """
    logger = log if log is not None else _log
    result = {APP_ID: annotations.get(APP_ID, "")}
    if _metrics_enabled(annotations):
        metrics_port = _port(annotations, METRICS_PORT, DEFAULT_METRICS_PORT)
        result[PROMETHEUS_PROBE] = "true"
        result[PROMETHEUS_SCRAPE] = "true"
        result[PROMETHEUS_PORT] = str(metrics_port)
        result[PROMETHEUS_PATH] = "/"
    reserved = frozenset(result)
    for key, value in _extra_annotations(annotations.get(SIDECAR_SVC_ANNOTATIONS, "")):
        if key in reserved:
            logger.warning(
                "Ignoring annotation %r from %s: the operator sets it itself",
                key,
                SIDECAR_SVC_ANNOTATIONS,
            )
        elif not _is_annotation_key(key):
            logger.warning(
                "Ignoring annotation %r from %s: not a valid annotation key",
                key,
                SIDECAR_SVC_ANNOTATIONS,
            )
        else:
            result[key] = value
    return result


def _service_port(name: str, port: int, target_port: int, app_protocol: str) -> dict[str, Any]:
    return {
        "name": name,
        "protocol": "TCP",
        "port": port,
        "targetPort": target_port,
        "appProtocol": app_protocol,
    }


def desired_service(
    workload: Mapping[str, Any],
    *,
    kind: str,
    api_version: str,
    mtls_enabled: bool,
    log: logging.Logger | None = None,
) -> dict[str, Any]:
    """The ``<app-id>-dapr`` Service for a Dapr-enabled workload, as the operator writes it.

    ``kind`` and ``api_version`` name the workload's type for the controller owner reference
    (``Deployment``/``apps/v1``, ``StatefulSet``/``apps/v1``, ``Rollout``/
    ``argoproj.io/v1alpha1``). ``mtls_enabled`` is ``spec.mtls.enabled`` of the control plane's
    Configuration: with mTLS the internal port speaks TLS, and says so in its ``appProtocol``.

    The selector is the workload's ``spec.selector.matchLabels``; ``matchExpressions`` cannot be
    expressed in a Service selector and are left out. Raises :class:`InvalidAppId`.
    """
    annotations = template_annotations(workload)
    app_id = annotations.get(APP_ID, "")
    validate_app_id(app_id)
    metadata = _mapping(_mapping(workload).get("metadata"))
    selector = _mapping(_mapping(_mapping(workload).get("spec")).get("selector"))
    grpc_port = _port(annotations, GRPC_PORT, DEFAULT_GRPC_PORT)
    internal_port = _port(annotations, INTERNAL_GRPC_PORT, DEFAULT_INTERNAL_GRPC_PORT)
    metrics_port = _port(annotations, METRICS_PORT, DEFAULT_METRICS_PORT)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
            "name": service_name(app_id),
            "namespace": _string(metadata, "namespace"),
            "labels": dict(SERVICE_LABELS),
            "annotations": service_annotations(annotations, log),
            "ownerReferences": [
                {
                    "apiVersion": api_version,
                    "kind": kind,
                    "name": _string(metadata, "name"),
                    "uid": _string(metadata, "uid"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "selector": _string_map(selector.get("matchLabels")),
            # Headless on purpose: clients resolve every sidecar's address through DNS.
            "clusterIP": "None",
            "ports": [
                _service_port("dapr-http", HTTP_PORT, HTTP_TARGET_PORT, "http"),
                _service_port("dapr-grpc", grpc_port, grpc_port, "grpc"),
                _service_port(
                    "dapr-internal", internal_port, internal_port, "tls" if mtls_enabled else "grpc"
                ),
                _service_port("dapr-metrics", metrics_port, metrics_port, "http"),
            ],
        },
    }


def _owner_reference_key(reference: object) -> tuple[Any, ...]:
    ref = _mapping(reference)
    return tuple(ref.get(field) for field in _OWNER_REFERENCE_FIELDS)


def _ports_key(ports: object) -> list[tuple[Any, ...]]:
    if not isinstance(ports, list):
        return []
    return [tuple(_mapping(port).get(field) for field in _PORT_FIELDS) for port in ports]


def service_differs(live: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """Whether the live Service must be replaced to match ``desired``.

    Only what the operator sets is compared:

    - annotations must equal the desired ones exactly: the operator cannot know which keys an
      earlier ``dapr.io/sidecar-svc-annotations`` added, so any extra key may be a stale one;
    - labels must contain the desired ones (other labels are not a difference);
    - the desired controller owner reference must be among the live ones;
    - the selector must be equal (an empty selector reads the same as an absent one);
    - ``clusterIP`` must be ``None``;
    - the ports must match in order on name, protocol, port, targetPort and appProtocol.

    Fields the API server fills in (``clusterIPs``, ``ipFamilies``, ``ipFamilyPolicy``,
    ``sessionAffinity``, ``type``, ``internalTrafficPolicy``, a port's ``nodePort``) are ignored.

    Dapr's operator replaces the Service on every reconcile and counts each as
    ``dapr_operator_service_updated_total``; with this check, only real changes are written and
    counted, and a reconcile does not itself trigger another one through the owned Service.
    """
    live_meta = _mapping(live.get("metadata"))
    want_meta = _mapping(desired.get("metadata"))
    live_spec = _mapping(live.get("spec"))
    want_spec = _mapping(desired.get("spec"))

    if _string_map(live_meta.get("annotations")) != _string_map(want_meta.get("annotations")):
        return True
    live_labels = _mapping(live_meta.get("labels"))
    if any(live_labels.get(k) != v for k, v in _mapping(want_meta.get("labels")).items()):
        return True
    live_owners = live_meta.get("ownerReferences")
    if not isinstance(live_owners, list):
        live_owners = []
    live_owner_keys = {_owner_reference_key(ref) for ref in live_owners}
    if any(
        _owner_reference_key(ref) not in live_owner_keys
        for ref in want_meta.get("ownerReferences", [])
    ):
        return True
    if _mapping(live_spec.get("selector")) != _mapping(want_spec.get("selector")):
        return True
    if live_spec.get("clusterIP") != want_spec.get("clusterIP"):
        return True
    return _ports_key(live_spec.get("ports")) != _ports_key(want_spec.get("ports"))


def updated_service(live: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    """The object to PUT over ``live``: ``desired`` at the live ``resourceVersion``.

    Like Dapr's operator this replaces the whole object, so labels and annotations others added
    are dropped. The addresses the API server allocated at creation (``clusterIPs``, and the
    ``ipFamilies`` and ``ipFamilyPolicy`` chosen with them) are carried over so the replace
    restates them rather than leaving them to be re-derived. They are carried only when the live
    Service is headless like the desired one: a Service that somehow got a cluster IP cannot be
    made headless by a replace (the API server refuses to change an allocated IP), and sending
    its old addresses would only add a second, misleading error to that refusal.
    """
    result = copy.deepcopy(dict(desired))
    live_meta = _mapping(live.get("metadata"))
    metadata = result.setdefault("metadata", {})
    if "resourceVersion" in live_meta:
        metadata["resourceVersion"] = live_meta["resourceVersion"]
    live_spec = _mapping(live.get("spec"))
    spec = result.setdefault("spec", {})
    if live_spec.get("clusterIP") == spec.get("clusterIP"):
        for field in _ALLOCATED_SPEC_FIELDS:
            if field in live_spec:
                spec[field] = copy.deepcopy(live_spec[field])
    return result
