"""Trust anchors: the root certificates every peer chain must verify to.

Control-plane services read them from ``--trust-anchors-file`` and follow changes to it (a
Kubernetes ConfigMap mount is replaced atomically by the kubelet); Sentry holds its own bundle in
process. Both are a :class:`TrustAnchorSource`: a current :class:`TrustBundle` plus subscribers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from daprplane.core.background import BackgroundTask
from daprplane.core.security._observers import Observers

log = logging.getLogger("dapr.runtime.security")


class TrustAnchorsError(ValueError):
    """Trust-anchor material that holds no usable certificate."""


@dataclass(frozen=True)
class TrustBundle:
    certificates: tuple[x509.Certificate, ...]

    @classmethod
    def from_pem(cls, data: bytes) -> TrustBundle:
        try:
            certificates = tuple(x509.load_pem_x509_certificates(data))
        except (ValueError, x509.InvalidVersion) as error:
            raise TrustAnchorsError(f"failed to parse trust anchors: {error}") from None
        return cls(certificates)

    @property
    def pem(self) -> bytes:
        return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.certificates)


class TrustAnchorSource(Protocol):
    @property
    def current(self) -> TrustBundle: ...

    def subscribe(self, callback: Callable[[TrustBundle], None]) -> Callable[[], None]: ...


class StaticTrustAnchors:
    """A bundle held in memory (Sentry's own CA, ``$DAPR_TRUST_ANCHORS``); ``update`` swaps it."""

    def __init__(self, bundle: TrustBundle) -> None:
        self._bundle = bundle
        self._observers: Observers[TrustBundle] = Observers(log)

    @classmethod
    def from_pem(cls, data: bytes | str) -> StaticTrustAnchors:
        return cls(TrustBundle.from_pem(data.encode() if isinstance(data, str) else data))

    @property
    def current(self) -> TrustBundle:
        return self._bundle

    def subscribe(self, callback: Callable[[TrustBundle], None]) -> Callable[[], None]:
        return self._observers.subscribe(callback)

    def update(self, bundle: TrustBundle) -> None:
        if bundle != self._bundle:
            self._bundle = bundle
            self._observers.notify(bundle)


class TrustAnchorsFile(BackgroundTask):
    """A PEM bundle file, re-read every ``poll_interval`` seconds while started.

    ``start`` waits for the file to exist and hold certificates, as Dapr's services do; a file
    that exists but does not parse is an error then. Later, an unparsable rewrite is logged and the
    previous bundle stays in force. Polling the content (rather than inotify) also catches the
    kubelet's symlink swap and same-second rewrites, and costs one small read per interval.
    """

    def __init__(self, path: str | Path, *, poll_interval: float = 0.5) -> None:
        self.path = Path(path)
        self.poll_interval = poll_interval
        self._bundle: TrustBundle | None = None
        self._raw: bytes | None = None
        self._observers: Observers[TrustBundle] = Observers(log)

    @property
    def current(self) -> TrustBundle:
        if self._bundle is None:
            raise RuntimeError("trust anchors are not loaded yet")
        return self._bundle

    def subscribe(self, callback: Callable[[TrustBundle], None]) -> Callable[[], None]:
        return self._observers.subscribe(callback)

    def _read(self) -> bytes | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as error:
            log.warning("Failed to read trust anchors file %s: %s", self.path, error)
            return None
        return data if data.strip() else None

    async def start(self) -> None:
        if self._task is not None:
            return
        data = self._read()
        if data is None:
            log.info("Trust anchors file %s not found, waiting for it", self.path)
            while data is None:
                await asyncio.sleep(self.poll_interval)
                data = self._read()
        try:
            self._bundle = TrustBundle.from_pem(data)
        except TrustAnchorsError as error:
            raise TrustAnchorsError(f"{self.path}: {error}") from None
        self._raw = data
        self._task = asyncio.create_task(self._watch(), name=f"trust-anchors:{self.path}")

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_interval)
            data = self._read()
            if data is None or data == self._raw:
                continue
            self._raw = data
            try:
                bundle = TrustBundle.from_pem(data)
            except TrustAnchorsError as error:
                log.error("Ignoring new content of %s: %s", self.path, error)
                continue
            if bundle != self._bundle:
                log.info(
                    "Trust anchors file %s changed; using %d certificates",
                    self.path,
                    len(bundle.certificates),
                )
                self._bundle = bundle
                self._observers.notify(bundle)
