from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from daprplane.core.security import authz
from daprplane.core.security.dialer import split_address
from daprplane.core.security.spiffe import parse
from tests.pki import SentryCA, pem_of

CA = SentryCA()
APP = "spiffe://public/ns/default/myapp"


class Aborted(Exception):
    pass


@dataclass
class FakeContext:
    certificate_pem: bytes | None = None
    peer_name: str = "ipv4:127.0.0.1:4242"
    aborted: list[tuple[grpc.StatusCode, str]] = field(default_factory=list)

    def peer(self) -> str:
        return self.peer_name

    def auth_context(self) -> dict[str, list[bytes]]:
        if self.certificate_pem is None:
            return {"transport_security_type": [b"ssl"]}
        return {"x509_pem_cert": [self.certificate_pem]}

    async def abort(self, code: grpc.StatusCode, details: str) -> None:
        self.aborted.append((code, details))
        raise Aborted(details)


def _context(*uris: str) -> FakeContext:
    leaf = CA.leaf(list(uris), ed25519.Ed25519PrivateKey.generate().public_key())
    return FakeContext(pem_of(leaf))


def test_peer_id_from_auth_context() -> None:
    identity = authz.peer_id(_context(APP))
    assert str(identity) == APP and identity.namespace == "default" and identity.app_id == "myapp"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        (FakeContext(), "no client certificate"),
        (FakeContext(b"garbage"), "failed to parse"),
        (_context(), "no URI SAN"),
        (_context(APP, "spiffe://public/ns/default/other"), "more than one URI SAN"),
        (_context("spiffe://public/ns/default"), "malformed SPIFFE ID"),
        (_context("spiffe://public/ns/default/app/extra"), "malformed SPIFFE ID"),
        (_context("spiffe://public/workload"), "malformed SPIFFE ID"),
    ],
)
def test_unauthenticated_peers(context: FakeContext, message: str) -> None:
    with pytest.raises(authz.UnauthenticatedError, match=message):
        authz.peer_id(context)


def test_relayed_peers_are_found_by_grpc_peer_string() -> None:
    leaf = CA.leaf([APP], ed25519.Ed25519PrivateKey.generate().public_key())
    context = FakeContext(peer_name="unix:/tmp/x/p1")
    authz.register_relayed_peer("unix:/tmp/x/p1", leaf)
    try:
        assert str(authz.peer_id(context)) == APP
    finally:
        authz.unregister_relayed_peer("unix:/tmp/x/p1")
    with pytest.raises(authz.UnauthenticatedError):
        authz.peer_id(context)


def test_authorizers() -> None:
    identity = parse(APP)
    authz.allow_any(identity)
    authz.allow_ids(APP, "spiffe://x/ns/y/z")(identity)
    authz.allow_trust_domains(["public"])(identity)
    authz.allow_namespace("default")(identity)
    with pytest.raises(authz.PermissionDeniedError, match="unexpected ID"):
        authz.allow_ids("spiffe://public/ns/default/MyApp")(identity)  # case-sensitive
    with pytest.raises(authz.PermissionDeniedError, match="trust domain"):
        authz.allow_trust_domains(["cluster.local"])(identity)
    with pytest.raises(authz.PermissionDeniedError, match="namespace"):
        authz.allow_namespace("dapr-system")(identity)


async def test_authorize_aborts_with_the_right_code() -> None:
    assert str(await authz.authorize(_context(APP), authz.allow_namespace("default"))) == APP
    denied = _context(APP)
    with pytest.raises(Aborted):
        await authz.authorize(denied, authz.allow_namespace("dapr-system"))
    assert denied.aborted[0][0] is grpc.StatusCode.PERMISSION_DENIED
    anonymous = FakeContext()
    with pytest.raises(Aborted):
        await authz.authorize(anonymous)
    assert anonymous.aborted == [
        (grpc.StatusCode.UNAUTHENTICATED, "peer presented no client certificate")
    ]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("localhost:50001", ("localhost", 50001)),
        ("dapr-sentry.dapr-system.svc:443", ("dapr-sentry.dapr-system.svc", 443)),
        ("[::1]:443", ("::1", 443)),
        ("dns:///127.0.0.1:1", ("127.0.0.1", 1)),
    ],
)
def test_split_address(address: str, expected: tuple[str, int]) -> None:
    assert split_address(address) == expected


@pytest.mark.parametrize("address", ["localhost", ":443", "host:0", "host:x", "host:70000"])
def test_split_address_rejects(address: str) -> None:
    with pytest.raises(ValueError, match="invalid address"):
        split_address(address)
