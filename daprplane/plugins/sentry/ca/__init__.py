"""Sentry's certificate authority: the trust bundle, workload signing and storage seams.

The names below load on first use, so reading the options (which name the credential files)
does not import cryptography: a sentry refused at its options exits before that cost.
"""

from __future__ import annotations

from daprplane.core.lazy import lazy_attributes

_HOMES = {
    "BundleError": "bundle",
    "TrustBundle": "bundle",
    "generate": "bundle",
    "verify": "bundle",
    "CaSettings": "store",
    "Credentials": "store",
    "CredentialsError": "store",
    "CredentialStore": "store",
    "JwtSettings": "store",
    "sign_workload": "workload",
}

__all__ = sorted(_HOMES)


__getattr__ = lazy_attributes(__name__, _HOMES)
