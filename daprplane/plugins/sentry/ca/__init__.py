"""Sentry's certificate authority: the trust bundle, workload signing and storage seams."""

from daprplane.plugins.sentry.ca.bundle import BundleError, TrustBundle, generate, verify
from daprplane.plugins.sentry.ca.store import (
    CaSettings,
    Credentials,
    CredentialsError,
    CredentialStore,
    JwtSettings,
)
from daprplane.plugins.sentry.ca.workload import sign_workload

__all__ = [
    "BundleError",
    "CaSettings",
    "CredentialStore",
    "Credentials",
    "CredentialsError",
    "JwtSettings",
    "TrustBundle",
    "generate",
    "sign_workload",
    "verify",
]
