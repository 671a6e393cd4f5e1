"""Command-line flags of the sentry CA (``cmd/sentry/options/options.go``).

The logging, metrics and healthz flags every component shares are defined by core, not here.

Dapr leaves ``--jwt-issuer``, ``--jwt-key-id``, ``--oidc-server-tls-cert-file``,
``--oidc-server-tls-key-file``, ``--oidc-jwks-uri`` and ``--oidc-path-prefix`` unset by default;
here the empty string stands for "unset".

Flags Dapr parses but ignores, or only partly honours:

- ``--jwt-key-filename`` and ``--jwks-filename``: a relative value is ignored and the default file
  name is used instead; only an absolute path takes effect.
- ``--oidc-server-tls-enabled``: TLS is used exactly when both the certificate and key files are
  given, whatever this flag says; it only makes the files mandatory.
- ``--metrics-listen-address`` (core): Dapr binds the exporter to every interface. We honour it.
- ``--healthz-listen-address`` (core): honoured only by newer Dapr releases. We honour it.
"""

from __future__ import annotations

import os

from daprplane.core.flags import Flag, boolean, duration, integer, string, string_slice


def default_kubeconfig() -> str:
    """``$HOME/.kube/config``, or empty when ``HOME`` is not set."""
    home = os.environ.get("HOME", "")
    return os.path.join(home, ".kube", "config") if home else ""


FLAGS: tuple[Flag, ...] = (
    string(
        "config",
        "daprsystem",
        "Configuration to load: a YAML file path in standalone mode, the name of a "
        "Configuration resource in $NAMESPACE in kubernetes mode.",
    ),
    string(
        "issuer-credentials",
        "/var/run/secrets/dapr.io/credentials",
        "Directory holding the root certificate and the issuer certificate and key.",
    ),
    string(
        "issuer-ca-filename",
        "ca.crt",
        "Root certificate file; a relative name is looked up in --issuer-credentials.",
    ),
    string(
        "issuer-certificate-filename",
        "issuer.crt",
        "Issuer certificate file; a relative name is looked up in --issuer-credentials.",
    ),
    string(
        "issuer-key-filename",
        "issuer.key",
        "Issuer private key file; a relative name is looked up in --issuer-credentials.",
    ),
    string(
        "trust-domain",
        "localhost",
        "Trust domain of the control plane; overrides the one in the configuration.",
    ),
    integer("port", 50001, "Port of the certificate-signing gRPC API."),
    string(
        "listen-address",
        "",
        "Address the gRPC API binds to; empty means every interface.",
    ),
    string("mode", "standalone", "Runtime mode: standalone or kubernetes."),
    string(
        "kubeconfig",
        default_kubeconfig,
        "Kubeconfig to use when no in-cluster configuration is available "
        "(default: $HOME/.kube/config).",
    ),
    boolean("jwt-enabled", False, "Also issue JWT identity tokens alongside certificates."),
    string(
        "jwt-key-filename",
        "jwt.key",
        "Private key that signs JWTs; only an absolute path overrides the default.",
    ),
    string(
        "jwks-filename",
        "jwks.json",
        "JSON Web Key Set published for JWT verification; only an absolute path overrides "
        "the default.",
    ),
    string(
        "jwt-issuer",
        "",
        "Issuer (iss claim) of the JWTs; empty leaves it unset. Needs --jwt-enabled.",
    ),
    string("jwt-signing-algorithm", "RS256", "Algorithm used to sign JWTs."),
    string(
        "jwt-key-id",
        "",
        "Key ID (kid) of the signing key; empty derives it from the key's thumbprint.",
    ),
    duration("jwt-ttl", "24h", "Lifetime of issued JWTs."),
    boolean(
        "oidc-enabled",
        False,
        "Serve OpenID Connect discovery documents; takes effect only with --jwt-enabled.",
    ),
    integer("oidc-server-listen-port", 9080, "Port of the OIDC discovery server."),
    string(
        "oidc-server-listen-address",
        "localhost",
        "Address the OIDC discovery server binds to.",
    ),
    boolean(
        "oidc-server-tls-enabled",
        True,
        "Require a certificate and key for the OIDC discovery server.",
    ),
    string(
        "oidc-server-tls-cert-file",
        "",
        "TLS certificate of the OIDC discovery server; empty leaves it unset. "
        "Give it together with --oidc-server-tls-key-file.",
    ),
    string(
        "oidc-server-tls-key-file",
        "",
        "TLS private key of the OIDC discovery server; empty leaves it unset. "
        "Give it together with --oidc-server-tls-cert-file.",
    ),
    string(
        "oidc-jwks-uri",
        "",
        "Fixed jwks_uri to advertise in the discovery document; empty leaves it unset.",
    ),
    string(
        "oidc-path-prefix",
        "",
        "Path prefix under which the OIDC endpoints are served; empty leaves it unset.",
    ),
    string_slice(
        "oidc-allowed-hosts",
        (),
        "Comma-separated host names the OIDC discovery server answers for; empty or * allows any.",
    ),
)
