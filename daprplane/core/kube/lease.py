"""Leader election on a ``coordination.k8s.io/v1`` Lease, shared by every component.

The replicas of a component compete for one Lease (its name and namespace chosen by the
component) the way client-go's ``leaderelection`` package does, on the asyncio API client of
:mod:`daprplane.core.kube.client`:

* every write is a create or a ``resourceVersion``-guarded replace, so of two replicas racing
  for the Lease exactly one wins and the other gets a conflict;
* a replica takes a Lease held by another only after watching it stay unchanged for the whole
  lease duration, measured on its own clock (no clock agreement between nodes is needed);
* a leader renews every retry period and steps down once it has gone a renew deadline (shorter
  than the lease duration) without a successful renewal, before any other replica can take
  over; it then calls the :meth:`~daprplane.core.kube.leadership.Leadership.on_lost` callbacks
  and competes again as a follower (a component for which losing is fatal exits from there);
* a leader that leaves (:meth:`LeaseLeadership.aclose`) clears ``holderIdentity`` so a
  follower takes over at its next retry instead of after a lease duration.

RBAC needed in the Lease's namespace: ``coordination.k8s.io`` ``leases`` ``get`` and ``update``
(may be restricted to ``resourceNames`` naming the Lease) and ``create``.

Timings default to client-go's (15s, 10s, 2s). Each component names its own environment
variables (:class:`LeaseEnvironment`) through which the timings (Go durations or seconds) and
the Lease's name can be changed.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self

from daprplane.core import goduration
from daprplane.core.background import cancel_and_wait
from daprplane.core.kube.client import (
    KubeApiError,
    KubeConfigError,
    new_api_client,
    path_of,
    request,
)
from daprplane.core.kube.leadership import Leadership
from daprplane.core.runtime import FatalError

#: client-go's retry jitter: followers wait between 1x and 1.2x the retry period.
JITTER = 1.2
#: How long a leader leaving tries to release the Lease.
RELEASE_TIMEOUT = 2.0


class LeaseConfigError(ValueError):
    """Timings from the environment that cannot be parsed or that client-go would refuse."""


@dataclass(frozen=True)
class LeaseEnvironment:
    """The names of the environment variables that configure one component's election."""

    name: str
    lease_duration: str
    renew_deadline: str
    retry_period: str

    @classmethod
    def with_prefix(cls, prefix: str) -> LeaseEnvironment:
        """``<prefix>NAME``, ``<prefix>DURATION``, ``<prefix>RENEW_DEADLINE`` and
        ``<prefix>RETRY_PERIOD``."""
        return cls(
            name=f"{prefix}NAME",
            lease_duration=f"{prefix}DURATION",
            renew_deadline=f"{prefix}RENEW_DEADLINE",
            retry_period=f"{prefix}RETRY_PERIOD",
        )


def _seconds(name: str, text: str) -> float:
    try:
        value = goduration.parse(text).total_seconds()
    except ValueError:
        try:
            value = float(text)
        except ValueError:
            raise LeaseConfigError(f"invalid value for {name}: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise LeaseConfigError(f"invalid value for {name}: {text!r} must be positive")
    return value


@dataclass(frozen=True)
class LeaseTimings:
    lease_duration: float = 15.0
    renew_deadline: float = 10.0
    retry_period: float = 2.0

    def __post_init__(self) -> None:
        # client-go's own checks (NewLeaderElector).
        if self.lease_duration <= self.renew_deadline:
            raise LeaseConfigError("lease duration must be greater than the renew deadline")
        if self.renew_deadline <= JITTER * self.retry_period:
            raise LeaseConfigError(
                f"renew deadline must be greater than {JITTER} times the retry period"
            )

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, *, variables: LeaseEnvironment
    ) -> Self:
        """The defaults, each replaced by its variable in ``environ`` (``os.environ``) if set."""
        env = os.environ if environ is None else environ
        defaults = cls()
        values: dict[str, float] = {}
        for field, name in (
            ("lease_duration", variables.lease_duration),
            ("renew_deadline", variables.renew_deadline),
            ("retry_period", variables.retry_period),
        ):
            text = env.get(name, "").strip()
            values[field] = _seconds(name, text) if text else getattr(defaults, field)
        return cls(**values)

    @property
    def lease_seconds(self) -> int:
        """``spec.leaseDurationSeconds`` (whole seconds, at least 1)."""
        return max(1, math.ceil(self.lease_duration))


def _micro_time(moment: datetime) -> str:
    """A ``metav1.MicroTime`` in the API's JSON form."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class LeaseLeadership(Leadership):
    """Leads while holding the Lease ``name`` in ``namespace`` as ``identity``.

    :meth:`start` calls ``api_factory`` for the ``kubernetes.aio`` ApiClient it talks through.
    With ``owns_api`` (the default) the election created that client and :meth:`aclose` closes
    it; a component that passes a factory returning a client it shares sets ``owns_api=False``
    and closes the client itself.
    """

    def __init__(
        self,
        identity: str,
        namespace: str,
        *,
        name: str,
        timings: LeaseTimings | None = None,
        api_factory: Callable[[], Any] = new_api_client,
        owns_api: bool = True,
        log: logging.Logger | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self.identity = identity
        self.namespace = namespace
        self.name = name
        self.timings = timings or LeaseTimings()
        self._api_factory = api_factory
        self._owns_api = owns_api
        self.log = log or logging.getLogger(__name__)
        self._clock = clock
        self._api: Any = None
        self._task: asyncio.Task[None] | None = None
        #: The Lease as last read or written, and when (local clock) it last changed.
        self._observed: dict[str, Any] | None = None
        self._observed_version: str | None = None
        self._observed_at = 0.0
        #: Start of the last successful acquisition or renewal (local clock).
        self._renewed_at = 0.0
        self._last_error = ""

    @classmethod
    def from_environ(
        cls,
        identity: str,
        namespace: str,
        *,
        name: str,
        variables: LeaseEnvironment,
        environ: Mapping[str, str] | None = None,
        api_factory: Callable[[], Any] = new_api_client,
        owns_api: bool = True,
        log: logging.Logger | None = None,
    ) -> Self:
        """An election on the Lease ``name`` (or ``variables.name`` when set) with the timings
        of ``variables``, read from ``environ`` (``os.environ``); raises
        :class:`LeaseConfigError`."""
        env = os.environ if environ is None else environ
        return cls(
            identity,
            namespace,
            name=env.get(variables.name, "").strip() or name,
            timings=LeaseTimings.from_environ(env, variables=variables),
            api_factory=api_factory,
            owns_api=owns_api,
            log=log,
        )

    @property
    def description(self) -> str:
        return f"{self.namespace}/{self.name}"

    # -- API ---------------------------------------------------------------------------------

    def _path(self, *, item: bool = True) -> str:
        segments = ["apis", "coordination.k8s.io", "v1", "namespaces", self.namespace, "leases"]
        return path_of(*segments, self.name) if item else path_of(*segments)

    def _observe(self, lease: Mapping[str, Any]) -> None:
        version = (lease.get("metadata") or {}).get("resourceVersion")
        if self._observed is None or version != self._observed_version:
            self._observed_at = self._clock()
        self._observed = dict(lease)
        self._observed_version = version

    def _holder(self) -> str:
        spec = (self._observed or {}).get("spec") or {}
        return str(spec.get("holderIdentity") or "")

    def _held_by_another(self) -> bool:
        """Another replica holds the Lease and has renewed it within a lease duration."""
        holder = self._holder()
        return (
            bool(holder)
            and holder != self.identity
            and self._observed_at + self.timings.lease_duration > self._clock()
        )

    async def _try_acquire_or_renew(self) -> bool:
        """One attempt; ``False`` when another replica holds the Lease or won a race for it."""
        now = _micro_time(datetime.now(UTC))
        try:
            lease = await request(self._api, "GET", self._path())
        except KubeApiError as error:
            if not error.not_found:
                raise
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace},
                "spec": {
                    "holderIdentity": self.identity,
                    "leaseDurationSeconds": self.timings.lease_seconds,
                    "acquireTime": now,
                    "renewTime": now,
                    "leaseTransitions": 0,
                },
            }
            try:
                created = await request(self._api, "POST", self._path(item=False), body=body)
            except KubeApiError as error:
                if error.conflict:  # another replica created it first
                    return False
                raise
            self._observe(created)
            return True
        self._observe(lease)
        if self._held_by_another():
            return False
        spec = dict(lease.get("spec") or {})
        if self._holder() != self.identity:
            spec["acquireTime"] = now
            spec["leaseTransitions"] = int(spec.get("leaseTransitions") or 0) + 1
        spec.update(
            holderIdentity=self.identity,
            leaseDurationSeconds=self.timings.lease_seconds,
            renewTime=now,
        )
        # metadata carries the resourceVersion read above: a concurrent write makes this a 409.
        updated = {**lease, "spec": spec}
        try:
            replaced = await request(self._api, "PUT", self._path(), body=updated)
        except KubeApiError as error:
            if error.conflict:
                return False
            raise
        self._observe(replaced)
        return True

    async def _attempt(self, timeout: float) -> bool:
        """:meth:`_try_acquire_or_renew` within ``timeout``; API errors count as failure."""
        if timeout <= 0:
            return False
        try:
            # Not asyncio.wait_for: on Python 3.11 it drops a cancellation that arrives as the
            # attempt completes, and the election would then outlive aclose().
            async with asyncio.timeout(timeout):
                result = await self._try_acquire_or_renew()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            message = (
                f"timed out after {timeout:.3g}s"
                if isinstance(error, TimeoutError)
                else str(error) or type(error).__name__
            )
            if message != self._last_error:
                self.log.error(
                    "error retrieving or updating lease %s: %s", self.description, message
                )
            self._last_error = message
            return False
        self._last_error = ""
        return result

    # -- the election loop -------------------------------------------------------------------

    async def start(self) -> None:
        try:
            self._api = self._api_factory()
        except KubeConfigError as error:
            raise FatalError(
                f"leader election on a Lease needs the Kubernetes API: {error}"
            ) from None
        self.log.info(
            "Attempting to acquire leader lease %s as %s", self.description, self.identity
        )
        self._task = asyncio.create_task(self._run(), name=f"lease-{self.name}")

    async def _run(self) -> None:
        timings = self.timings
        while True:
            if self.is_leader:
                await self._renew()
            else:
                started = self._clock()
                if await self._attempt(timings.renew_deadline):
                    self._renewed_at = started
                    self.log.info("Successfully acquired lease %s", self.description)
                    self._gained()
                    await asyncio.sleep(timings.retry_period)
                else:
                    await asyncio.sleep(timings.retry_period * random.uniform(1.0, JITTER))

    async def _renew(self) -> None:
        """Renew once, or step down at the renew deadline or when another replica holds the
        Lease."""
        timings = self.timings
        started = self._clock()
        deadline = self._renewed_at + timings.renew_deadline
        if await self._attempt(deadline - started):
            self._renewed_at = started
            deadline = started + timings.renew_deadline
        elif self._held_by_another():
            self.log.warning("Lease %s is held by %s", self.description, self._holder())
            self._lost()
            return
        if self._clock() >= deadline:
            self.log.error(
                "Failed to renew lease %s within %gs", self.description, timings.renew_deadline
            )
            self._lost()
            return
        # Never sleep past the deadline: the check above must run before it passes.
        await asyncio.sleep(max(0.0, min(timings.retry_period, deadline - self._clock())))

    async def _release(self) -> None:
        """Clear ``holderIdentity`` if this replica still holds the Lease (client-go's
        release)."""
        lease = await request(self._api, "GET", self._path())
        spec = dict(lease.get("spec") or {})
        if spec.get("holderIdentity") != self.identity:
            return
        now = _micro_time(datetime.now(UTC))
        spec.update(holderIdentity="", leaseDurationSeconds=1, acquireTime=now, renewTime=now)
        await request(self._api, "PUT", self._path(), body={**lease, "spec": spec})
        self.log.info("Released lease %s", self.description)

    async def aclose(self) -> None:
        task, self._task = self._task, None
        await cancel_and_wait(task)
        api = self._api
        if api is None:
            return
        try:
            if self.is_leader:
                # Stop leader-only work before a successor can be elected.
                self._lost()
                try:
                    async with asyncio.timeout(RELEASE_TIMEOUT):
                        await self._release()
                except Exception as error:
                    self.log.warning("Failed to release lease %s: %s", self.description, error)
        finally:
            self._api = None
            if self._owns_api:
                await api.close()
