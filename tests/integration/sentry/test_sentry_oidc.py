"""Sentry's OIDC discovery server end to end: a relying party verifies Sentry's JWTs with the keys
the discovery document points it to, as a cloud provider's OIDC federation would."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import jwt

from tests.integration.launchers import free_port
from tests.integration.sentry.client import ca_stub
from tests.integration.sentry.conftest import run_sentry
from tests.integration.sentry.test_sentry_standalone import _request


def _get_json(url: str) -> tuple[dict[str, object], dict[str, str]]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response), dict(response.headers)


def test_tokens_verify_with_the_published_jwks(tmp_path: Path) -> None:
    oidc_port = free_port()
    with run_sentry(
        tmp_path / "creds",
        "--jwt-enabled",
        "--oidc-enabled",
        "--oidc-server-tls-enabled=false",
        "--oidc-server-listen-address=127.0.0.1",
        f"--oidc-server-listen-port={oidc_port}",
        "--oidc-path-prefix=/sentry/",
    ) as sentry:
        base = f"http://127.0.0.1:{oidc_port}/sentry"
        discovery, _ = _get_json(f"{base}/.well-known/openid-configuration")
        # No --jwt-issuer: the issuer is derived from the request, without the path prefix.
        assert discovery["issuer"] == f"http://127.0.0.1:{oidc_port}"
        assert discovery["jwks_uri"] == f"{base}/jwks.json"
        assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
        jwks, headers = _get_json(str(discovery["jwks_uri"]))
        assert headers["Cache-Control"] == "public, max-age=3600"

        with ca_stub(sentry.port, sentry.trust_anchors) as (stub, _):
            response = stub.SignCertificate(_request(jwt_audiences=["sts.example"]), timeout=10)
        assert sentry.stop()[0] == 0

    token = response.per_audience_jwts["sts.example"].value
    kid = jwt.get_unverified_header(token)["kid"]
    (published,) = [key for key in jwks["keys"] if key["kid"] == kid]  # type: ignore[index,union-attr]
    signing_key = jwt.PyJWK(published).key
    claims = jwt.decode(token, signing_key, algorithms=["RS256"], audience="sts.example")
    assert claims["sub"] == "spiffe://public/ns/default/myapp"
    assert "d" not in published  # the private half is never published
