"""A process's own SVID, fetched at start and renewed at half-life (Dapr ``pkg/security``).

:class:`SvidSource` is what servers and clients hold: ``current`` is always a valid SVID once
``start`` returns, subscribers hear about every renewal, and the ``security-provider`` healthz
target (if given) turns ready with the first SVID. The fetch is a callable: the Sentry client for
every component, or Sentry's own in-process signer.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes

from daprplane.core.background import BackgroundTask
from daprplane.core.health import Target
from daprplane.core.security._observers import Observers
from daprplane.core.security.svid import Svid, load_pem_chain

log = logging.getLogger("dapr.runtime.security")

#: What a fetch may produce: an :class:`Svid`, or a chain (PEM or certificates) and its key.
FetchResult = Svid | tuple[bytes | Sequence[x509.Certificate], PrivateKeyTypes]
Fetch = Callable[[], FetchResult | Awaitable[FetchResult]]


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _as_svid(result: FetchResult) -> Svid:
    if isinstance(result, Svid):
        return result
    chain, key = result
    certificates = load_pem_chain(chain) if isinstance(chain, bytes) else tuple(chain)
    return Svid.from_chain(certificates, key)


class SvidSource(BackgroundTask):
    """Holds the current SVID and renews it.

    Renewal happens at NotBefore + (NotAfter - NotBefore) / 2, checked at least every
    ``check_interval`` seconds (so a suspended process or a clock jump is noticed); a failed
    fetch is retried every ``retry_interval`` seconds, at start as well as later.
    """

    def __init__(
        self,
        fetch: Fetch,
        *,
        target: Target | None = None,
        check_interval: float = 60.0,
        retry_interval: float = 10.0,
        clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self._fetch = fetch
        self._target = target
        self.check_interval = check_interval
        self.retry_interval = retry_interval
        self._clock = clock
        self._svid: Svid | None = None
        self._ready = asyncio.Event()
        self._observers: Observers[Svid] = Observers(log)

    @property
    def current(self) -> Svid:
        if self._svid is None:
            raise RuntimeError("no SVID yet: the security provider is not ready")
        return self._svid

    @property
    def ready(self) -> bool:
        return self._svid is not None

    async def wait_ready(self) -> Svid:
        await self._ready.wait()
        return self.current

    def subscribe(self, callback: Callable[[Svid], None]) -> Callable[[], None]:
        return self._observers.subscribe(callback)

    async def _fetch_once(self) -> Svid:
        result = self._fetch()
        if inspect.isawaitable(result):
            result = await result
        return _as_svid(result)

    async def _fetch_until_success(self) -> Svid:
        while True:
            try:
                return await self._fetch_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("Failed to get an SVID, retrying in %gs: %s", self.retry_interval, error)
                await asyncio.sleep(self.retry_interval)

    def _install(self, svid: Svid) -> None:
        first = self._svid is None
        self._svid = svid
        log.info(
            "%s SVID for %s, valid until %s, renewing at %s",
            "Received" if first else "Renewed",
            svid.spiffe_id,
            svid.not_after.isoformat(),
            svid.renew_at.isoformat(),
        )
        if first:
            self._ready.set()
            if self._target is not None:
                self._target.ready()
        else:
            self._observers.notify(svid)

    async def start(self) -> None:
        """Fetch the first SVID (retrying until it comes), then renew in the background."""
        if self._task is not None:
            return
        if self._svid is None:
            self._install(await self._fetch_until_success())
        self._task = asyncio.create_task(self._rotate(), name="svid-rotation")

    async def renew(self) -> Svid:
        """Fetch a new SVID now (Sentry after its CA changed); errors are the caller's."""
        svid = await self._fetch_once()
        self._install(svid)
        return svid

    async def _rotate(self) -> None:
        while True:
            remaining = (self.current.renew_at - self._clock()).total_seconds()
            if remaining > 0:
                await asyncio.sleep(min(remaining, self.check_interval))
                continue
            try:
                svid = await self._fetch_once()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.error("Failed to renew SVID, retrying in %gs: %s", self.retry_interval, error)
                await asyncio.sleep(self.retry_interval)
                continue
            self._install(svid)
            if svid.renew_at <= self._clock():
                # A TTL shorter than the clock skew (or a wrong clock) would otherwise renew in
                # a tight loop; X.509 times also lose the sub-second part.
                log.warning(
                    "New SVID is already due for renewal; next try in %gs", self.retry_interval
                )
                await asyncio.sleep(self.retry_interval)
