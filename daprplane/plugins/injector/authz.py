"""Who may get a sidecar injected (Dapr ``service/serviceaccountmatcher.go`` and ``handler.go``).

A pod is injected only when the review's user is one of:

* a ServiceAccount (``system:serviceaccount:<ns>:<name>``) matching an allowed ``ns:name`` glob:
  the built-in controllers of :data:`DEFAULT_ALLOWED_SERVICE_ACCOUNTS`, plus the comma lists in
  ``ALLOWED_SERVICE_ACCOUNTS`` and the deprecated ``ALLOWED_SERVICE_ACCOUNTS_PREFIX_NAMES``;
* a user whose UID is that of an allowed ServiceAccount named exactly (looked up at start);
* a member of ``system:masters``.

Anyone else gets the pod admitted unchanged.

Globs follow Go's ``path.Match``, which Python has no equivalent of: ``fnmatch`` negates classes
with ``!`` rather than ``^``, has no ``\\`` escape and accepts malformed patterns that Dapr
refuses at start, so patterns are translated here.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_ALLOWED_SERVICE_ACCOUNTS: tuple[str, ...] = (
    "kube-system:replicaset-controller",
    "kube-system:replication-controller",
    "kube-system:deployment-controller",
    "kube-system:cronjob-controller",
    "kube-system:job-controller",
    "kube-system:statefulset-controller",
    "kube-system:daemon-set-controller",
    "openshift-operator-lifecycle-manager:olm-operator-serviceaccount",
    "tekton-pipelines:tekton-pipelines-controller",
    "mirrord:mirrord-operator",
)
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
MASTERS_GROUP = "system:masters"


class PatternError(ValueError):
    """An allowed-ServiceAccount pattern Dapr refuses at start."""


def _escaped(pattern: str, i: int) -> tuple[str, int]:
    """One class character at ``pattern[i]`` (Go ``getEsc``); returns it and the next index."""
    if i >= len(pattern) or pattern[i] in "-]":
        raise PatternError("syntax error in pattern")
    if pattern[i] == "\\":
        i += 1
        if i >= len(pattern):
            raise PatternError("syntax error in pattern")
    char, i = pattern[i], i + 1
    if i >= len(pattern):
        raise PatternError("syntax error in pattern")
    return char, i


def _class(pattern: str, i: int) -> tuple[str, int]:
    """The regex for the class opening at ``pattern[i - 1] == '['``."""
    negated = i < len(pattern) and pattern[i] == "^"
    if negated:
        i += 1
    ranges: list[str] = []
    count = 0
    while True:
        if i < len(pattern) and pattern[i] == "]" and count > 0:
            i += 1
            break
        low, i = _escaped(pattern, i)
        high = low
        if pattern[i] == "-":
            high, i = _escaped(pattern, i + 1)
        if low <= high:  # Go accepts a reversed range; it just matches nothing
            ranges.append(f"{re.escape(low)}-{re.escape(high)}")
        count += 1
    if not ranges:
        return ("(?s:.)" if negated else "(?!)"), i
    return f"[{'^' if negated else ''}{''.join(ranges)}]", i


def compile_glob(pattern: str) -> re.Pattern[str]:
    """``pattern`` in Go ``path.Match`` syntax as an anchored regex; :class:`PatternError` if Go
    would report ``ErrBadPattern``."""
    parts: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        i += 1
        if char == "*":
            parts.append("[^/]*")
        elif char == "?":
            parts.append("[^/]")
        elif char == "[":
            regex, i = _class(pattern, i)
            parts.append(regex)
        elif char == "\\":
            if i >= len(pattern):
                raise PatternError("syntax error in pattern")
            parts.append(re.escape(pattern[i]))
            i += 1
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.DOTALL)


@dataclass(frozen=True)
class AccountPattern:
    text: str
    namespace: re.Pattern[str]
    name: re.Pattern[str]

    def matches(self, namespace: str, name: str) -> bool:
        return bool(self.namespace.fullmatch(namespace) and self.name.fullmatch(name))


def parse_pattern(text: str) -> AccountPattern:
    if text.count(":") != 1:
        raise PatternError(f"invalid service account pattern {text!r}: expected 'namespace:name'")
    namespace, name = (part.strip() for part in text.split(":"))
    if not namespace and not name:
        raise PatternError(f"invalid service account pattern {text!r}: namespace and name empty")
    try:
        return AccountPattern(text, compile_glob(namespace), compile_glob(name))
    except PatternError as error:
        raise PatternError(f"invalid service account pattern {text!r}: {error}") from None


def split_list(value: str) -> list[str]:
    """A comma list of patterns, blank entries dropped."""
    return [entry.strip() for entry in value.split(",") if entry.strip()]


class ServiceAccountMatcher:
    def __init__(self, patterns: Iterable[str]) -> None:
        self.patterns = tuple(parse_pattern(p) for p in patterns)

    @classmethod
    def from_settings(cls, allowed: str = "", prefix_names: str = "") -> ServiceAccountMatcher:
        """The built-in list plus the two environment lists (each ``a:b,c:d``)."""
        return cls(
            [*DEFAULT_ALLOWED_SERVICE_ACCOUNTS, *split_list(allowed), *split_list(prefix_names)]
        )

    def matches(self, namespace: str, name: str) -> bool:
        return any(pattern.matches(namespace, name) for pattern in self.patterns)


def exact_accounts(allowed: str = "") -> list[tuple[str, str]]:
    """The ``(namespace, name)`` pairs whose UIDs are collected at start: the built-in list and
    ``ALLOWED_SERVICE_ACCOUNTS`` read literally (Dapr does not expand globs here)."""
    pairs = []
    for entry in [*DEFAULT_ALLOWED_SERVICE_ACCOUNTS, *split_list(allowed)]:
        namespace, _, name = entry.partition(":")
        pairs.append((namespace, name))
    return pairs


def account_uids(service_accounts: Iterable[Mapping[str, Any]], allowed: str = "") -> set[str]:
    """UIDs of the listed ServiceAccounts named exactly by :func:`exact_accounts`."""
    wanted = set(exact_accounts(allowed))
    uids = set()
    for account in service_accounts:
        metadata = account.get("metadata") or {}
        key = (metadata.get("namespace", ""), metadata.get("name", ""))
        if key in wanted and metadata.get("uid"):
            uids.add(str(metadata["uid"]))
    return uids


@dataclass(frozen=True)
class Authorizer:
    matcher: ServiceAccountMatcher
    uids: frozenset[str] = frozenset()

    def allows(self, username: str, uid: str, groups: Iterable[str]) -> bool:
        if username.startswith(SERVICE_ACCOUNT_PREFIX):
            parts = username[len(SERVICE_ACCOUNT_PREFIX) :].split(":")
            if len(parts) >= 2 and self.matcher.matches(parts[0], parts[1]):
                return True
        if uid and uid in self.uids:
            return True
        return MASTERS_GROUP in groups
