"""Who gets a sidecar: allowed ServiceAccount globs, allowed UIDs, system:masters (contract §2)."""

from __future__ import annotations

import re

import pytest

from daprplane.plugins.injector.authz import (
    DEFAULT_ALLOWED_SERVICE_ACCOUNTS,
    Authorizer,
    PatternError,
    ServiceAccountMatcher,
    account_uids,
    compile_glob,
)


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("abc", "abc", True),
        ("abc", "abcd", False),
        ("a*", "a", True),
        ("a*", "abc", True),
        ("a*c", "abxc", True),
        ("*", "", True),
        ("a?c", "abc", True),
        ("a?c", "ac", False),
        ("[a-c]x", "bx", True),
        ("[a-c]x", "dx", False),
        ("[^a-c]x", "dx", True),
        ("[^a-c]x", "ax", False),
        ("[!a]x", "!x", True),  # Go negates with ^ only
        ("[!a]x", "bx", False),
        ("a\\*", "a*", True),
        ("a\\*", "ab", False),
        ("[\\]]", "]", True),
        ("[z-a]", "m", False),  # reversed ranges are legal and match nothing
        ("[^z-a]", "m", True),
        ("a.c", "abc", False),  # no regex leaking through
        ("deployment-controller", "deployment-controller-extra", False),
    ],
)
def test_globs_follow_go_path_match(pattern: str, name: str, matches: bool) -> None:
    assert bool(compile_glob(pattern).fullmatch(name)) is matches


@pytest.mark.parametrize("pattern", ["ns-[", "[]", "[a-]", "[-a]", "a\\", "[a", "[a-", "[\\"])
def test_malformed_globs_are_refused(pattern: str) -> None:
    with pytest.raises(PatternError):
        compile_glob(pattern)


@pytest.mark.parametrize("entry", ["nocolon", "a:b:c", ":", " : ", "ns:[", "ns-[:name"])
def test_bad_entries_are_refused(entry: str) -> None:
    with pytest.raises(PatternError, match=re.escape(repr(entry))):
        ServiceAccountMatcher([entry])


def test_settings_add_to_the_built_in_list_and_skip_blanks() -> None:
    matcher = ServiceAccountMatcher.from_settings(" team-*:builder , ,", "ci:runner-?")
    assert len(matcher.patterns) == len(DEFAULT_ALLOWED_SERVICE_ACCOUNTS) + 2
    assert matcher.matches("kube-system", "deployment-controller")
    assert matcher.matches("team-a", "builder")
    assert matcher.matches("ci", "runner-1")
    assert not matcher.matches("ci", "runner-12")
    assert not matcher.matches("kube-system", "deployment-controller-extra")
    assert not matcher.matches("default", "default")


def test_entry_parts_are_trimmed() -> None:
    assert ServiceAccountMatcher([" ns : name "]).matches("ns", "name")


AUTHORIZER = Authorizer(ServiceAccountMatcher.from_settings("apps:*"), frozenset({"uid-1"}))


@pytest.mark.parametrize(
    ("username", "uid", "groups", "allowed"),
    [
        ("system:serviceaccount:kube-system:replicaset-controller", "", (), True),
        ("system:serviceaccount:kube-system:job-controller", "", (), True),
        ("system:serviceaccount:tekton-pipelines:tekton-pipelines-controller", "", (), True),
        ("system:serviceaccount:apps:anything", "", (), True),
        ("system:serviceaccount:default:default", "", (), False),
        ("system:serviceaccount:kube-system", "", (), False),
        ("kubernetes-admin", "", ("system:masters", "system:authenticated"), True),
        ("kubernetes-admin", "", ("system:authenticated",), False),
        ("someone", "uid-1", (), True),
        ("someone", "uid-2", (), False),
        ("", "", (), False),
        ("system:kube-controller-manager", "", (), False),
    ],
)
def test_authorized_users(username: str, uid: str, groups: tuple[str, ...], allowed: bool) -> None:
    assert AUTHORIZER.allows(username, uid, groups) is allowed


def test_uids_come_from_exactly_named_accounts() -> None:
    accounts = [
        {"metadata": {"namespace": "kube-system", "name": "job-controller", "uid": "u1"}},
        {"metadata": {"namespace": "apps", "name": "builder", "uid": "u2"}},
        {"metadata": {"namespace": "apps", "name": "other", "uid": "u3"}},
        {"metadata": {"namespace": "x", "name": "y", "uid": "u4"}},
        {"metadata": {"namespace": "apps", "name": "*", "uid": "u5"}},
    ]
    assert account_uids(accounts, "apps:builder,apps:*") == {"u1", "u2", "u5"}
