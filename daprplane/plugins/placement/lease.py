"""Placement's Lease election: the core one (:mod:`daprplane.core.kube.lease`) on placement's
Lease and environment variables.

In kubernetes mode the peers of a placement StatefulSet compete for the Lease
:data:`LEASE_NAME` in ``$NAMESPACE``. A leader that loses the Lease closes its streams and
competes again; a leader that stops (SIGTERM) releases it for a fast failover.

RBAC needed in ``$NAMESPACE``: ``coordination.k8s.io`` ``leases`` ``get`` and ``update`` (may be
restricted to ``resourceNames: [dapr-placement-leader]``) and ``create``.

Timings default to client-go's (15s, 10s, 2s) and can be changed through the environment
(:data:`ENV_LEASE_DURATION`, :data:`ENV_RENEW_DEADLINE`, :data:`ENV_RETRY_PERIOD`, as Go
durations or seconds) and the Lease's name through :data:`ENV_LEASE_NAME`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Self

from daprplane.core.kube import lease as core_lease
from daprplane.core.kube.client import new_api_client
from daprplane.core.kube.lease import LeaseConfigError, LeaseEnvironment

__all__ = [
    "ENVIRONMENT",
    "ENV_LEASE_DURATION",
    "ENV_LEASE_NAME",
    "ENV_RENEW_DEADLINE",
    "ENV_RETRY_PERIOD",
    "LEASE_NAME",
    "LeaseConfigError",
    "LeaseLeadership",
    "LeaseTimings",
]

LEASE_NAME = "dapr-placement-leader"
ENV_LEASE_NAME = "DAPRPLANE_PLACEMENT_LEASE_NAME"
ENV_LEASE_DURATION = "DAPRPLANE_PLACEMENT_LEASE_DURATION"
ENV_RENEW_DEADLINE = "DAPRPLANE_PLACEMENT_LEASE_RENEW_DEADLINE"
ENV_RETRY_PERIOD = "DAPRPLANE_PLACEMENT_LEASE_RETRY_PERIOD"
ENVIRONMENT = LeaseEnvironment(
    name=ENV_LEASE_NAME,
    lease_duration=ENV_LEASE_DURATION,
    renew_deadline=ENV_RENEW_DEADLINE,
    retry_period=ENV_RETRY_PERIOD,
)

_log = logging.getLogger(__name__)


class LeaseTimings(core_lease.LeaseTimings):
    """The core timings, read from placement's variables unless told otherwise."""

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, variables: LeaseEnvironment = ENVIRONMENT
    ) -> Self:
        return super().from_environ(environ, variables=variables)


class LeaseLeadership(core_lease.LeaseLeadership):
    """The core Lease election, on :data:`LEASE_NAME` and placement's variables by default."""

    def __init__(
        self,
        identity: str,
        namespace: str,
        *,
        name: str = LEASE_NAME,
        timings: core_lease.LeaseTimings | None = None,
        api_factory: Callable[[], Any] = new_api_client,
        owns_api: bool = True,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            identity,
            namespace,
            name=name,
            timings=timings,
            api_factory=api_factory,
            owns_api=owns_api,
            log=log or _log,
            clock=clock,
        )

    @classmethod
    def from_environ(
        cls,
        identity: str,
        namespace: str,
        *,
        name: str = LEASE_NAME,
        variables: LeaseEnvironment = ENVIRONMENT,
        environ: Mapping[str, str] | None = None,
        api_factory: Callable[[], Any] = new_api_client,
        owns_api: bool = True,
        log: logging.Logger | None = None,
    ) -> Self:
        return super().from_environ(
            identity,
            namespace,
            name=name,
            variables=variables,
            environ=environ,
            api_factory=api_factory,
            owns_api=owns_api,
            log=log,
        )
