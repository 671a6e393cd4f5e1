"""What a client puts in a SignCertificate request besides its CSR (Dapr ``pkg/security/token``).

* The token and the validator that should check it: ``$DAPR_SENTRY_TOKEN_FILE`` with JWKS
  (KUBERNETES in kubernetes mode); otherwise, in kubernetes mode, the projected Sentry token and
  then the legacy service-account token with KUBERNETES; otherwise no token and UNKNOWN, which
  lets Sentry apply its default validator. The token is read again for every request, because
  the kubelet rotates projected tokens.
* The requested ID: ``$SENTRY_LOCAL_IDENTITY`` when set, else the app ID.
* The requested trust domain: the control-plane trust domain only for the control-plane services
  in the control-plane namespace; empty otherwise (Sentry then decides).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from daprplane._proto.sentry.v1 import sentry_pb2

TOKEN_FILE_ENV = "DAPR_SENTRY_TOKEN_FILE"
LOCAL_IDENTITY_ENV = "SENTRY_LOCAL_IDENTITY"
SENTRY_TOKEN_PATH = Path("/var/run/secrets/dapr.io/sentrytoken/token")
LEGACY_TOKEN_PATH = Path("/var/run/secrets/kubernetes.io/serviceaccount/token")
CONTROL_PLANE_IDS = frozenset(
    f"dapr-{name}" for name in ("operator", "placement", "injector", "sentry", "scheduler")
)

_Validator = sentry_pb2.SignCertificateRequest.TokenValidator
UNKNOWN = _Validator.Value("UNKNOWN")
INSECURE = _Validator.Value("INSECURE")
KUBERNETES = _Validator.Value("KUBERNETES")
JWKS = _Validator.Value("JWKS")


class TokenError(OSError):
    """A token file that exists (or was named) but cannot be read."""


@dataclass(frozen=True)
class SentryToken:
    token: str
    validator: int  # a SignCertificateRequest.TokenValidator value

    @property
    def validator_name(self) -> str:
        return str(_Validator.Name(self.validator))


def _read(path: Path) -> str:
    try:
        # Tokens never contain whitespace; a hand-written file often ends with a newline.
        return path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as error:
        raise TokenError(f"failed to read token at path {str(path)!r}: {error}") from None


def load_token(
    *,
    kubernetes_mode: bool,
    environ: Mapping[str, str] | None = None,
    sentry_token_path: Path = SENTRY_TOKEN_PATH,
    legacy_token_path: Path = LEGACY_TOKEN_PATH,
) -> SentryToken:
    env = os.environ if environ is None else environ
    token_file = env.get(TOKEN_FILE_ENV)
    if token_file is not None:
        return SentryToken(_read(Path(token_file)), KUBERNETES if kubernetes_mode else JWKS)
    if kubernetes_mode:
        for path in (sentry_token_path, legacy_token_path):
            if path.exists():
                return SentryToken(_read(path), KUBERNETES)
    return SentryToken("", UNKNOWN)


def requested_id(app_id: str, environ: Mapping[str, str] | None = None) -> str:
    env = os.environ if environ is None else environ
    return env.get(LOCAL_IDENTITY_ENV) or app_id


def requested_trust_domain(
    app_id: str,
    namespace: str,
    *,
    control_plane_namespace: str,
    control_plane_trust_domain: str,
) -> str:
    if app_id in CONTROL_PLANE_IDS and namespace == control_plane_namespace:
        return control_plane_trust_domain
    return ""
