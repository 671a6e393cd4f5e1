"""Sentry's options: the flags, checked as Dapr's ``Options.Validate`` checks them."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from daprplane.plugins.sentry.ca.paths import CredentialFiles

MODES = ("kubernetes", "standalone")


class OptionsError(ValueError):
    """Invalid flags; fatal at start (exit 1)."""


@dataclass(frozen=True)
class SentryOptions:
    mode: str
    config: str
    files: CredentialFiles
    trust_domain: str
    port: int
    listen_address: str
    namespace: str
    kubeconfig: str
    jwt_enabled: bool
    jwt_issuer: str
    jwt_signing_algorithm: str
    jwt_key_id: str
    jwt_ttl: timedelta
    oidc_enabled: bool
    flags: Any

    @classmethod
    def from_flags(cls, flags: Any, environ: Mapping[str, str] | None = None) -> SentryOptions:
        env = os.environ if environ is None else environ
        if flags.mode not in MODES:
            raise OptionsError(f"invalid mode: {flags.mode}")
        if flags.jwt_issuer and not flags.jwt_enabled:
            raise OptionsError("jwt-issuer cannot be set when jwt-enabled is false")
        if flags.oidc_enabled and flags.oidc_server_tls_enabled:
            if not flags.oidc_server_tls_cert_file:
                raise OptionsError(
                    "oidc-server-tls-cert-file is required when OIDC HTTP server is enabled "
                    "(unless oidc-server-tls-enabled is false)"
                )
            if not flags.oidc_server_tls_key_file:
                raise OptionsError(
                    "oidc-server-tls-key-file is required when OIDC HTTP server is enabled "
                    "(unless oidc-server-tls-enabled is false)"
                )
        if bool(flags.oidc_server_tls_cert_file) != bool(flags.oidc_server_tls_key_file):
            raise OptionsError(
                "oidc-server-tls-cert-file and oidc-server-tls-key-file must be set together"
            )
        if not 0 <= flags.port <= 65535:
            raise OptionsError(f"invalid port: {flags.port}")
        return cls(
            mode=flags.mode,
            config=flags.config,
            files=CredentialFiles.from_flags(
                flags.issuer_credentials,
                flags.issuer_ca_filename,
                flags.issuer_certificate_filename,
                flags.issuer_key_filename,
                flags.jwt_key_filename,
                flags.jwks_filename,
            ),
            trust_domain=flags.trust_domain,
            port=flags.port,
            listen_address=flags.listen_address,
            namespace=env.get("NAMESPACE") or "default",
            kubeconfig=flags.kubeconfig,
            jwt_enabled=flags.jwt_enabled,
            jwt_issuer=flags.jwt_issuer,
            jwt_signing_algorithm=flags.jwt_signing_algorithm,
            jwt_key_id=flags.jwt_key_id,
            jwt_ttl=flags.jwt_ttl,
            oidc_enabled=flags.oidc_enabled,
            flags=flags,
        )

    @property
    def grpc_address(self) -> str:
        host = self.listen_address
        if ":" in host and not host.startswith("["):
            host = f"[{host}]"  # an IPv6 literal
        return f"{host or '[::]'}:{self.port}"
