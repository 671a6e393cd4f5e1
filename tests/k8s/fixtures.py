"""pytest plugin: the session k8s test cluster and per-test namespaces.

Enable with ``pytest_plugins = ["tests.k8s.fixtures"]`` (or ``-p tests.k8s.fixtures``).

Fixtures:

* ``kube_cluster`` (session): a started ``KubeCluster``.
* ``kube_namespace``: a fresh namespace (with its ``default`` ServiceAccount),
  emptied and deleted after the test.
* ``kube_api``: an admin sync ``kubernetes.client.ApiClient``.

When a test that uses the cluster fails, the tail of the etcd and
kube-apiserver logs written during that test is added to its report.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest

from .cluster import KubeCluster

_LOG_LINES = 150
_active: KubeCluster | None = None
_log_offsets = pytest.StashKey[dict[str, int]]()


@pytest.fixture(scope="session")
def kube_cluster() -> Iterator[KubeCluster]:
    global _active
    cluster = KubeCluster()
    cluster.start()
    _active = cluster
    try:
        yield cluster
    finally:
        _active = None
        cluster.stop()


def _namespace_name(test_name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", test_name.lower()).strip("-")[:40].strip("-")
    return f"{base or 'test'}-{secrets.token_hex(3)}"


@pytest.fixture
def kube_namespace(kube_cluster: KubeCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = kube_cluster.create_namespace(_namespace_name(request.node.name))
    yield name
    kube_cluster.delete_namespace(name)


@pytest.fixture
def kube_api(kube_cluster: KubeCluster) -> Iterator[Any]:
    with kube_cluster.api_client() as api:
        yield api


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    if _active is not None:
        item.stash[_log_offsets] = _active.log_offsets()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    cluster = _active
    if (
        not report.failed
        or cluster is None
        or "kube_cluster" not in getattr(item, "fixturenames", ())
    ):
        return
    since = item.stash.get(_log_offsets, None)
    for name, text in cluster.log_tail(_LOG_LINES, since):
        header = f"{name} log (last {_LOG_LINES} lines written during the test)"
        report.sections.append((header, text or "(nothing logged)"))
