"""Standalone storage of the CA: files in ``--issuer-credentials`` (Dapr's ``ca/selfhosted.go``).

The X.509 bundle counts as missing when any of its three files does not exist; then a new CA is
generated and all three files are written (mode 0600). Files that exist but do not verify are
fatal: sentry never overwrites an operator's material.
"""

from __future__ import annotations

import asyncio
import logging
import os
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from daprplane.plugins.sentry.ca import bundle as bundle_mod
from daprplane.plugins.sentry.ca.store import (
    CaSettings,
    Credentials,
    CredentialsError,
    load_jwt_material,
)
from daprplane.plugins.sentry.watch import DirectoryWatcher

log = logging.getLogger("dapr.sentry.ca")


def resolve(directory: str, name: str) -> str:
    """An absolute name is used as it is, a relative one is joined with the directory."""
    return name if os.path.isabs(name) else os.path.join(directory, name)


@dataclass(frozen=True)
class CredentialFiles:
    root_cert: str
    issuer_cert: str
    issuer_key: str
    jwt_key: str
    jwks: str

    @classmethod
    def from_flags(
        cls,
        directory: str,
        ca_filename: str,
        cert_filename: str,
        key_filename: str,
        jwt_key_filename: str,
        jwks_filename: str,
    ) -> CredentialFiles:
        # Dapr uses the JWT file flags only when absolute; otherwise the default names.
        return cls(
            root_cert=resolve(directory, ca_filename),
            issuer_cert=resolve(directory, cert_filename),
            issuer_key=resolve(directory, key_filename),
            jwt_key=jwt_key_filename
            if os.path.isabs(jwt_key_filename)
            else os.path.join(directory, "jwt.key"),
            jwks=jwks_filename
            if os.path.isabs(jwks_filename)
            else os.path.join(directory, "jwks.json"),
        )

    def all(self) -> tuple[str, ...]:
        return (self.root_cert, self.issuer_cert, self.issuer_key, self.jwt_key, self.jwks)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CredentialsError(f"failed to read {path}: {error.strerror or error}") from None


def write_private(path: str, data: bytes) -> None:
    """Write ``data`` with mode 0600, atomically, so a watcher never sees half a file."""
    directory = os.path.dirname(path) or "."
    try:
        fd, temporary = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    except OSError as error:
        raise CredentialsError(f"failed to write {path}: {error.strerror or error}") from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as error:
        os.unlink(temporary)
        raise CredentialsError(f"failed to write {path}: {error.strerror or error}") from None


class FileCredentialStore:
    """:class:`~daprplane.plugins.sentry.ca.store.CredentialStore` over the credential files."""

    def __init__(self, files: CredentialFiles) -> None:
        self.files = files

    def watched_paths(self) -> list[str]:
        return sorted({os.path.dirname(path) or "." for path in self.files.all()})

    async def watch(self, on_change: Callable[[], Awaitable[None]]) -> None:
        # Dapr watches the parent directories of every credential file; so do we, by polling.
        await DirectoryWatcher(self.watched_paths()).run(on_change)

    async def close(self) -> None:
        return None

    async def load(self, settings: CaSettings) -> Credentials:
        return await asyncio.to_thread(self._load, settings)

    def _load(self, settings: CaSettings) -> Credentials:
        files = self.files
        ca_pem, issuer_pem, key_pem = (
            _read(files.root_cert),
            _read(files.issuer_cert),
            _read(files.issuer_key),
        )
        generated = ca_pem is None or issuer_pem is None or key_pem is None
        if generated:
            log.info("Root and issuer certs not found: generating self signed CA")
            bundle = bundle_mod.generate(
                settings.trust_domain, settings.namespace, settings.allowed_clock_skew
            )
        else:
            assert ca_pem is not None and issuer_pem is not None and key_pem is not None
            try:
                bundle = bundle_mod.verify(ca_pem, issuer_pem, key_pem)
            except bundle_mod.BundleError as error:
                raise CredentialsError(f"failed to verify CA bundle: {error}") from None
        jwt_material, jwt_generated = load_jwt_material(
            _read(files.jwt_key), _read(files.jwks), settings.jwt
        )
        if generated:
            write_private(files.root_cert, bundle.trust_anchors_pem)
            write_private(files.issuer_cert, bundle.issuer_chain_pem)
            write_private(files.issuer_key, bundle.issuer_key_pem)
            log.info("Self-signed certs generated and persisted successfully")
        if jwt_generated and settings.jwt.enabled and jwt_material is not None:
            write_private(files.jwt_key, jwt_material.key_pem)
            write_private(files.jwks, jwt_material.jwks_json)
            log.info("JWT signing key generated and persisted successfully")
        return Credentials(bundle=bundle, jwt=jwt_material, generated=generated)
