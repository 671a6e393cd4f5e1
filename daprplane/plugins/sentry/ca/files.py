"""Standalone storage of the CA: files in ``--issuer-credentials`` (Dapr's ``ca/selfhosted.go``).

A new CA is generated only when none of the three X.509 files exists, and then all three are
written (mode 0600, see :mod:`.atomic`). Some present and others missing is fatal, unlike Dapr,
which would generate over the survivors (:mod:`.completeness`). Files that exist but are empty
or do not verify are fatal too: sentry never overwrites an operator's material. Temporary files
left by an interrupted write are removed at start: they may hold key bytes.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable

from daprplane.plugins.sentry.ca import bundle as bundle_mod
from daprplane.plugins.sentry.ca.atomic import remove_leftovers, write_private, write_private_set
from daprplane.plugins.sentry.ca.completeness import require_all_or_none
from daprplane.plugins.sentry.ca.paths import CredentialFiles
from daprplane.plugins.sentry.ca.store import (
    CaSettings,
    Credentials,
    CredentialsError,
    load_jwt_material,
)
from daprplane.plugins.sentry.watch import DirectoryWatcher

log = logging.getLogger("dapr.sentry.ca")


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CredentialsError(f"failed to read {path}: {error.strerror or error}") from None


class FileCredentialStore:
    """:class:`~daprplane.plugins.sentry.ca.store.CredentialStore` over the credential files."""

    def __init__(self, files: CredentialFiles) -> None:
        self.files = files
        #: Leftovers of interrupted writes are looked for once, before the first load.
        self._swept = False

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
        removed: list[str] = []
        if not self._swept:
            removed = remove_leftovers(files.all())
            self._swept = True
        ca_pem, issuer_pem, key_pem = (
            _read(files.root_cert),
            _read(files.issuer_cert),
            _read(files.issuer_key),
        )
        paths = (files.root_cert, files.issuer_cert, files.issuer_key)
        directories = {os.path.dirname(path) for path in paths}
        # Name the files as briefly as is unambiguous: by name when they share a directory.
        where, names = "", paths
        if len(directories) == 1:
            where = f" in {directories.pop() or '.'}"
            names = tuple(os.path.basename(path) for path in paths)
        generated = not require_all_or_none(
            dict(zip(names, (ca_pem, issuer_pem, key_pem), strict=True)),
            where=where,
            interrupted_write=bool(removed),
        )
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
            write_private_set(
                [
                    (files.root_cert, bundle.trust_anchors_pem),
                    (files.issuer_cert, bundle.issuer_chain_pem),
                    (files.issuer_key, bundle.issuer_key_pem),
                ]
            )
            log.info("Self-signed certs generated and persisted successfully")
        if jwt_generated and settings.jwt.enabled and jwt_material is not None:
            write_private(files.jwt_key, jwt_material.key_pem)
            write_private(files.jwks, jwt_material.jwks_json)
            log.info("JWT signing key generated and persisted successfully")
        return Credentials(bundle=bundle, jwt=jwt_material, generated=generated)
