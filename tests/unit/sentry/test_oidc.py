"""The OIDC discovery server, through a real aiohttp server on loopback."""

from __future__ import annotations

import asyncio
import json
import ssl
import warnings

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from daprplane.plugins.sentry import oidc
from daprplane.plugins.sentry.jwt import load_jwt_material
from tests.pki import self_signed

MATERIAL, _ = load_jwt_material(None, None, enabled=True, key_id="", algorithm="RS256")
JWKS = MATERIAL.jwks
DISCOVERY = "/.well-known/openid-configuration"


def make_app(**overrides):
    options = dict(
        jwks=lambda: JWKS,
        jwt_issuer="",
        jwks_uri="",
        path_prefix="",
        allowed_hosts=(),
        tls_configured=False,
        algorithm="RS256",
    )
    options.update(overrides)
    return oidc.application(**options)


async def fetch(app, method, path, headers=None):
    async with TestClient(TestServer(app)) as client:
        response = await client.request(method, path, headers=headers or {}, allow_redirects=False)
        return response.status, dict(response.headers), await response.read()


def discovery_of(**overrides):
    async def run(headers=None):
        status, _, body = await fetch(make_app(**overrides), "GET", DISCOVERY, headers)
        assert status == 200, body
        return json.loads(body)

    return run


# -- documents -----------------------------------------------------------------------------------


async def test_jwks_document():
    status, headers, body = await fetch(make_app(), "GET", "/jwks.json", {"Host": "sentry"})
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "public, max-age=3600"
    assert body == MATERIAL.jwks_json  # json.Marshal of the set: sorted members, no newline


async def test_discovery_document_layout():
    status, headers, body = await fetch(
        make_app(), "GET", DISCOVERY, {"Host": "sentry.example:9080"}
    )
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert headers["Cache-Control"] == "public, max-age=3600"
    assert body == (
        b'{"issuer":"http://sentry.example:9080","jwks_uri":"http://sentry.example:9080/jwks.json",'
        b'"response_types_supported":["id_token"],"subject_types_supported":["public"],'
        b'"id_token_signing_alg_values_supported":["RS256"],"scopes_supported":["openid"],'
        b'"claims_supported":["sub","iss","aud","exp","iat","nbf","use"]}\n'
    )


async def test_discovery_with_tls_and_algorithm():
    document = await discovery_of(tls_configured=True, algorithm="ES256")({"Host": "h"})
    assert document["issuer"] == "https://h"
    assert document["jwks_uri"] == "https://h/jwks.json"
    assert document["id_token_signing_alg_values_supported"] == ["ES256"]


async def test_configured_issuer_and_jwks_uri():
    document = await discovery_of(jwt_issuer="https://issuer.example/tenant/x?q=1")({"Host": "h"})
    assert document["issuer"] == "https://issuer.example/tenant/x?q=1"
    assert document["jwks_uri"] == "https://issuer.example/jwks.json"  # path replaced
    document = await discovery_of(jwks_uri="https://cdn.example/keys")({"Host": "h"})
    assert document == {**document, "issuer": "http://h", "jwks_uri": "https://cdn.example/keys"}


async def test_prefix_moves_endpoints_but_not_the_issuer():
    app = make_app(path_prefix="/oidc/")
    assert (await fetch(app, "GET", "/jwks.json"))[0] == 404
    status, _, body = await fetch(make_app(path_prefix="/oidc/"), "GET", "/oidc/jwks.json")
    assert status == 200 and body == MATERIAL.jwks_json
    status, _, body = await fetch(
        make_app(path_prefix="/oidc"), "GET", "/oidc" + DISCOVERY, {"Host": "h"}
    )
    document = json.loads(body)
    assert document["issuer"] == "http://h"
    assert document["jwks_uri"] == "http://h/oidc/jwks.json"


@pytest.mark.parametrize(
    ("prefix", "paths"),
    [
        ("", ("/jwks.json", DISCOVERY)),
        ("/", ("/jwks.json", DISCOVERY)),
        ("/a/b/", ("/a/b/jwks.json", "/a/b" + DISCOVERY)),
        ("a", ("/a/jwks.json", "/a" + DISCOVERY)),
    ],
)
def test_endpoint_paths(prefix, paths):
    assert oidc.endpoint_paths(prefix) == paths


# -- routing and errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path", ["/", "/jwks", "/jwks.json/", "/JWKS.json", "/.well-known/", "/x/jwks.json"]
)
async def test_other_paths_are_404(path):
    status, headers, body = await fetch(make_app(), "GET", path)
    assert (status, body) == (404, b"404 page not found\n")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"])
@pytest.mark.parametrize("path", ["/jwks.json", DISCOVERY])
async def test_only_get_is_allowed(method, path):
    status, _, body = await fetch(make_app(), method, path)
    assert status == 405
    assert body == (b"" if method == "HEAD" else b"Method not allowed\n")


async def raw_exchange(app, request: bytes) -> bytes:
    """Send bytes as they are: HTTP clients would normalise the paths under test."""
    async with TestServer(app) as server:
        reader, writer = await asyncio.open_connection(server.host, server.port)
        writer.write(request)
        await writer.drain()
        response = await reader.read()
        writer.close()
        return response


@pytest.mark.parametrize(
    ("method", "target", "location", "body"),
    [
        (
            "GET",
            "/a/../jwks.json?x=1",
            "/jwks.json?x=1",
            b'<a href="/jwks.json?x=1">Moved Permanently</a>.\n\n',
        ),
        (
            "GET",
            "/a%2F..%2Fjwks.json",
            "/jwks.json",
            b'<a href="/jwks.json">Moved Permanently</a>.\n\n',
        ),
        ("POST", "//jwks.json", "/jwks.json", b""),
        ("GET", "/./nowhere/", "/nowhere/", b'<a href="/nowhere/">Moved Permanently</a>.\n\n'),
    ],
)
async def test_unclean_paths_are_redirected(method, target, location, body):
    request = (
        f"{method} {target} HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    response = await raw_exchange(make_app(), request.encode())
    head, _, got = response.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 301 ")
    assert f"\r\nLocation: {location}\r\n".encode() in head
    assert got == body


async def test_empty_jwks():
    for jwks in (lambda: None, lambda: {"keys": []}):
        assert (await fetch(make_app(jwks=jwks), "GET", "/jwks.json"))[::2] == (
            404,
            b"JWKS not available\n",
        )
        assert (await fetch(make_app(jwks=jwks), "GET", DISCOVERY))[::2] == (
            404,
            b"OIDC configuration not available\n",
        )


async def test_jwks_is_read_per_request():
    current = {"doc": None}
    app = make_app(jwks=lambda: current["doc"])
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/jwks.json")).status == 404
        current["doc"] = {"keys": [{"kty": "oct", "k": "AA", "kid": "<"}]}
        response = await client.get("/jwks.json")
        assert await response.read() == b'{"keys":[{"k":"AA","kid":"\\u003c","kty":"oct"}]}'


@pytest.mark.parametrize(
    "host", ["a b", "h:port", "[::1", "h\x7f", "h%41", "h/x", "h?x", "h#x", "u@h"]
)
async def test_unusable_host_is_400(host):
    request = make_mocked_request("GET", DISCOVERY, headers={"Host": host}, app=make_app())
    response = await make_app()[oidc.OIDC_SERVER].handle(request)
    assert (response.status, response.body) == (400, b"Invalid host\n")


# -- host allow-list -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("allowed", "headers", "status"),
    [
        (["sentry.example"], {"Host": "sentry.example"}, 200),
        (["sentry.example"], {"Host": "sentry.example:9080"}, 200),
        (["sentry.example:9080"], {"Host": "sentry.example:9080"}, 200),
        (["sentry.example:9080"], {"Host": "sentry.example"}, 403),
        (["sentry.example"], {"Host": "evil.example"}, 403),
        (["sentry.example"], {"Host": "evil.example", "X-Forwarded-Host": "sentry.example"}, 200),
        (["sentry.example"], {"Host": "sentry.example", "X-Forwarded-Host": "evil.example"}, 403),
        (["::1"], {"Host": "[::1]:80"}, 200),
        (["*"], {"Host": "anything"}, 200),
        (["a", "*"], {"Host": "anything"}, 200),
    ],
)
@pytest.mark.parametrize("path", ["/jwks.json", DISCOVERY])
async def test_allowed_hosts(allowed, headers, status, path):
    got, response_headers, body = await fetch(make_app(allowed_hosts=allowed), "GET", path, headers)
    assert got == status
    if status == 403:
        assert body == b"Forbidden: unauthorized domain\n"
        assert response_headers["Content-Type"] == "text/plain; charset=utf-8"


async def test_host_check_comes_before_method_check():
    status, _, _ = await fetch(make_app(allowed_hosts=["a"]), "POST", "/jwks.json", {"Host": "b"})
    assert status == 403


async def test_forwarded_host_names_the_issuer_only_behind_an_allow_list():
    headers = {"Host": "sentry.example", "X-Forwarded-Host": "public.example"}
    assert (await discovery_of()(headers))["issuer"] == "http://sentry.example"
    assert (await discovery_of(allowed_hosts=["*"])(headers))["issuer"] == "http://sentry.example"
    document = await discovery_of(allowed_hosts=["public.example"])(headers)
    assert document["issuer"] == "http://public.example"
    assert document["jwks_uri"] == "http://public.example/jwks.json"


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="signature algorithm is required"):
        make_app(algorithm="")
    with pytest.raises(ValueError, match="invalid JWT issuer URI"):
        make_app(jwt_issuer="https://a\nb")


# -- Go helpers ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "cleaned"),
    [
        ("", "/"),
        ("/", "/"),
        ("//a", "/a"),
        ("/a/./b/", "/a/b/"),
        ("/a/../../b", "/b"),
        ("a", "/a"),
        ("/a//", "/a/"),
    ],
)
def test_clean_path(path, cleaned):
    assert oidc.clean_path(path) == cleaned


@pytest.mark.parametrize(
    ("hostport", "split"),
    [
        ("h:80", ("h", "80")),
        ("h:", ("h", "")),
        ("[::1]:80", ("::1", "80")),
        ("h", None),
        ("a:b:c", None),
        ("[::1]", None),
        ("[::1]x:80", None),
        ("h]:80", None),
        ("[h:80", None),
    ],
)
def test_split_host_port(hostport, split):
    assert oidc.split_host_port(hostport) == split


@pytest.mark.parametrize(
    ("host", "printed"),
    [
        ("h", "h"),
        ("h:9080", "h:9080"),
        ("h:", "h:"),
        ("[::1]:80", "[::1]:80"),
        ("[fe80::1%25en0]", "[fe80::1%25en0]"),
        ("bücher", "b%C3%BCcher"),
        ("a&b", "a&b"),
        ("", ""),
        ("h:x", None),
        ("a b", None),
        ("a%2", None),
        ("a%41", None),
        ("a{", None),
    ],
)
def test_url_host(host, printed):
    assert oidc.url_host(host) == printed


# -- a real server ------------------------------------------------------------------------------


async def test_serve_over_tls_after_the_files_appear(tmp_path):
    pair = self_signed("localhost", hosts=["localhost"], ca=True, kind="ecdsa")
    cert_pem, key_pem = pair.cert_pem, pair.key_pem
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        oidc.serve_oidc(
            make_app(tls_configured=True),
            "127.0.0.1",
            0,
            cert_file=str(cert_file),
            key_file=str(key_file),
            on_ready=ready.set_result,
            poll_interval=0.05,
        )
    )
    try:
        await asyncio.sleep(0.2)
        assert not ready.done()  # still waiting for the files
        cert_file.write_bytes(cert_pem)
        key_file.write_bytes(key_pem)
        port = await asyncio.wait_for(ready, 5)
        context = ssl.create_default_context(cadata=cert_pem.decode())
        async with aiohttp.ClientSession() as session:
            url = f"https://localhost:{port}{DISCOVERY}"
            async with session.get(url, ssl=context) as response:
                assert response.status == 200
                document = await response.json()
        assert document["issuer"] == f"https://localhost:{port}"
        old = ssl.create_default_context(cadata=cert_pem.decode())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            old.maximum_version = ssl.TLSVersion.TLSv1_1
            old.minimum_version = ssl.TLSVersion.TLSv1
        with pytest.raises((ssl.SSLError, aiohttp.ClientError)):
            async with aiohttp.ClientSession() as session:
                await session.get(url, ssl=old)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_serve_plain_http_and_bad_tls_material(tmp_path):
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(
        oidc.serve_oidc(make_app(), "127.0.0.1", 0, on_ready=ready.set_result)
    )
    try:
        port = await asyncio.wait_for(ready, 5)
        url = f"http://127.0.0.1:{port}/jwks.json"
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert await response.read() == MATERIAL.jwks_json
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    (tmp_path / "c").write_text("junk")
    (tmp_path / "k").write_text("junk")
    with pytest.raises(oidc.OidcServerError, match="failed to load TLS certificate and key"):
        await oidc.serve_oidc(
            make_app(), "127.0.0.1", 0, cert_file=str(tmp_path / "c"), key_file=str(tmp_path / "k")
        )


# -- fuzzing -------------------------------------------------------------------------------------

_header_text = st.text(
    st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_characters="\x7f"), max_size=40
)
_APPS = {
    "open": make_app(),
    "allow": make_app(allowed_hosts=["sentry.example", "*.x"]),
    "prefix": make_app(path_prefix="/p/", allowed_hosts=["*"], tls_configured=True),
}


@settings(
    max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    app=st.sampled_from(sorted(_APPS)),
    method=st.sampled_from(["GET", "HEAD", "POST", "PUT", "OPTIONS", "DELETE"]),
    path=st.one_of(
        st.sampled_from(["/jwks.json", DISCOVERY, "/p/jwks.json", "/p" + DISCOVERY]),
        st.text(max_size=30).map(lambda s: "/" + s),
    ),
    host=st.one_of(
        st.none(), _header_text, st.sampled_from(["sentry.example", "sentry.example:1"])
    ),
    forwarded=st.one_of(st.none(), _header_text),
)
def test_fuzz_requests_never_fail(app, method, path, host, forwarded):
    headers = {}
    if host is not None:
        headers["Host"] = host
    if forwarded is not None:
        headers["X-Forwarded-Host"] = forwarded
    try:
        request = make_mocked_request(method, path, headers=headers, app=_APPS[app])
        request.path  # noqa: B018 - URLs the HTTP parser itself would refuse
    except ValueError:
        assume(False)
    response = asyncio.run(_APPS[app][oidc.OIDC_SERVER].handle(request))
    assert response.status in (200, 301, 400, 403, 404, 405)


@settings(max_examples=60, deadline=None)
@given(
    path=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20).filter(
        lambda p: not p.startswith("/")  # "//x" would be an absolute URL to the test client
    ),
    host=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), max_size=20),
)
def test_fuzz_over_the_wire(path, host):
    async def run():
        async with TestClient(TestServer(make_app(allowed_hosts=["sentry.example"]))) as client:
            response = await client.get(
                "/" + path,
                headers={"Host": host or "h", "X-Forwarded-Host": host},
                allow_redirects=False,
            )
            return response.status

    try:
        status = asyncio.run(run())
    except (ValueError, aiohttp.InvalidURL):
        assume(False)
    assert status in (200, 301, 400, 403, 404, 405)


@settings(max_examples=80, deadline=None)
@given(
    target=st.binary(min_size=1, max_size=30).filter(lambda b: not any(c in b for c in b" \r\n")),
    host=st.binary(max_size=30).filter(lambda b: b"\r" not in b and b"\n" not in b),
    method=st.sampled_from([b"GET", b"HEAD", b"POST"]),
)
def test_fuzz_raw_requests_never_get_a_500(target, host, method):
    request = (
        method + b" /" + target + b" HTTP/1.1\r\nHost: " + host + b"\r\nX-Forwarded-Host: " + host
    )
    request += b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    response = asyncio.run(raw_exchange(make_app(allowed_hosts=["sentry.example"]), request))
    status = int(response.split(b" ", 2)[1]) if response.startswith(b"HTTP/1.1 ") else 400
    assert status < 500, response
