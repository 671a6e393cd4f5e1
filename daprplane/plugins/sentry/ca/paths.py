"""Where sentry's credential files are: names from the flags, resolved against the directory.

Kept apart from the store (which needs cryptography) so that reading the options, and refusing
bad ones, costs no more than the flags themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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
