from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from daprplane.core.security import csr, tokens


@pytest.mark.parametrize(
    ("algorithm", "kind"),
    [
        (csr.KeyAlgorithm.ED25519, ed25519.Ed25519PublicKey),
        (csr.KeyAlgorithm.RSA, rsa.RSAPublicKey),
    ],
)
def test_csr_has_empty_subject_and_valid_signature(algorithm: csr.KeyAlgorithm, kind: type) -> None:
    key = csr.generate_key(algorithm)
    pem = csr.create_csr(key)
    assert pem.startswith(b"-----BEGIN CERTIFICATE REQUEST-----\n")
    request = x509.load_pem_x509_csr(pem)
    assert request.is_signature_valid
    assert len(request.subject) == 0
    assert isinstance(request.public_key(), kind)
    assert request.public_key() == key.public_key()


def test_default_key_is_ed25519_and_rsa_is_2048() -> None:
    assert isinstance(csr.generate_key(), ed25519.Ed25519PrivateKey)
    key = csr.generate_key(csr.KeyAlgorithm.RSA)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert csr.private_key_pem(key).startswith(b"-----BEGIN PRIVATE KEY-----")


@pytest.fixture
def paths(tmp_path: Path) -> dict[str, Path]:
    return {"sentry_token_path": tmp_path / "sentry", "legacy_token_path": tmp_path / "legacy"}


def test_token_file_env_uses_jwks_standalone_and_kubernetes_in_kubernetes(
    tmp_path: Path, paths: dict[str, Path]
) -> None:
    token_file = tmp_path / "tok"
    token_file.write_text("abc.def.ghi\n")
    env = {tokens.TOKEN_FILE_ENV: str(token_file)}
    paths["sentry_token_path"].write_text("projected")
    standalone = tokens.load_token(kubernetes_mode=False, environ=env, **paths)
    assert standalone == tokens.SentryToken("abc.def.ghi", tokens.JWKS)
    assert standalone.validator_name == "JWKS"
    kube = tokens.load_token(kubernetes_mode=True, environ=env, **paths)
    assert kube == tokens.SentryToken("abc.def.ghi", tokens.KUBERNETES)


def test_missing_named_token_file_is_an_error(tmp_path: Path, paths: dict[str, Path]) -> None:
    env = {tokens.TOKEN_FILE_ENV: str(tmp_path / "absent")}
    with pytest.raises(tokens.TokenError, match="failed to read token at path"):
        tokens.load_token(kubernetes_mode=False, environ=env, **paths)


def test_kubernetes_mode_prefers_projected_then_legacy_token(paths: dict[str, Path]) -> None:
    assert tokens.load_token(kubernetes_mode=True, environ={}, **paths) == tokens.SentryToken(
        "", tokens.UNKNOWN
    )
    paths["legacy_token_path"].write_text("legacy")
    assert tokens.load_token(kubernetes_mode=True, environ={}, **paths) == tokens.SentryToken(
        "legacy", tokens.KUBERNETES
    )
    paths["sentry_token_path"].write_text("projected")
    assert tokens.load_token(kubernetes_mode=True, environ={}, **paths) == tokens.SentryToken(
        "projected", tokens.KUBERNETES
    )


def test_standalone_without_token_file_sends_no_token(paths: dict[str, Path]) -> None:
    paths["sentry_token_path"].write_text("projected")
    assert tokens.load_token(kubernetes_mode=False, environ={}, **paths) == tokens.SentryToken(
        "", tokens.UNKNOWN
    )


@pytest.mark.parametrize("app_id", sorted(tokens.CONTROL_PLANE_IDS))
def test_control_plane_ids_request_the_control_plane_trust_domain(app_id: str) -> None:
    rule = {"control_plane_namespace": "dapr-system", "control_plane_trust_domain": "cluster.local"}
    assert tokens.requested_trust_domain(app_id, "dapr-system", **rule) == "cluster.local"
    assert tokens.requested_trust_domain(app_id, "default", **rule) == ""


def test_apps_request_no_trust_domain() -> None:
    rule = {"control_plane_namespace": "dapr-system", "control_plane_trust_domain": "cluster.local"}
    assert tokens.requested_trust_domain("myapp", "dapr-system", **rule) == ""
    assert tokens.requested_trust_domain("dapr-other", "dapr-system", **rule) == ""


def test_local_identity_overrides_app_id() -> None:
    assert tokens.requested_id("dapr-placement", {}) == "dapr-placement"
    assert (
        tokens.requested_id("dapr-placement", {tokens.LOCAL_IDENTITY_ENV: ""}) == "dapr-placement"
    )
    assert tokens.requested_id("x", {tokens.LOCAL_IDENTITY_ENV: "other"}) == "other"
