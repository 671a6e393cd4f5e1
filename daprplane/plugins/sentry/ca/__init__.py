"""Sentry's certificate authority: the trust bundle, workload signing and storage seams.

The names below load on first use, so reading the options (which name the credential files)
does not import cryptography: a sentry refused at its options exits before that cost.
"""

from __future__ import annotations

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{home}"), name)
