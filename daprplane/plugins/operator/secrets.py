"""Fill ``secretKeyRef`` values in from Kubernetes Secrets before an object reaches a sidecar.

Sidecars cannot read Secrets themselves, so the operator resolves the references of the objects
it serves: Component metadata, HTTPEndpoint headers and client TLS documents, MCPServer headers or
stdio environment, and Configuration OpenTelemetry headers.

Two value forms exist, and sidecars rely on the difference:

* Components, HTTPEndpoints and MCPServers get the **base64** of the secret's bytes; the sidecar
  decodes it again when the store is Kubernetes. The API server already sends ``Secret.data``
  values as standard base64 of those bytes, so the value is that same string (decoded and
  encoded again here, which yields the API server's own text and rejects malformed data).
* Configuration OTel headers get the **raw secret text**.

Every resolver returns a new dict and never mutates its input: one cached object feeds many
streams. Only the containers along a changed path are copied; the rest is shared with the input,
so callers treat results as read-only too. Each distinct Secret is looked up once per call, and
never remembered between calls, so a rotated Secret shows up on the next request.

Input is the API server's JSON, but an ill-typed field (a string where a list belongs, say) is
left as it is rather than raising: the only exception a resolver raises is :class:`SecretError`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

#: ``await lookup(namespace, name)`` gives the Secret's ``data`` (values base64, as the API server
#: sends them) or None when the Secret does not exist.
SecretLookup = Callable[[str, str], Awaitable[Mapping[str, str] | None]]

#: ``auth.secretStore`` values that mean "the Kubernetes secret store": only then does the
#: operator resolve references. Another store's references are resolved by the sidecar.
_KUBERNETES_STORES = ("", "kubernetes")

#: Secret bytes that are not UTF-8 become lone surrogates under ``surrogateescape``.
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


class SecretError(Exception):
    """A referenced Secret is missing or unusable; the object cannot be served."""

    def __init__(
        self,
        message: str,
        *,
        namespace: str = "",
        secret: str = "",
        key: str = "",
        resource: str = "",
    ) -> None:
        super().__init__(message)
        self.namespace = namespace
        self.secret = secret
        self.key = key
        #: The referencing object, e.g. ``Component default/statestore``.
        self.resource = resource


class _SecretReader:
    """The Secrets one object refers to, each looked up at most once."""

    def __init__(self, namespace: str, lookup: SecretLookup, resource: str) -> None:
        self.namespace = namespace
        self.resource = resource
        self._lookup = lookup
        self._fetched: dict[str, Mapping[str, Any]] = {}

    def error(self, message: str, secret: str, key: str) -> SecretError:
        return SecretError(
            f"{self.resource}: {message}",
            namespace=self.namespace,
            secret=secret,
            key=key,
            resource=self.resource,
        )

    async def data(self, secret: str, key: str) -> Mapping[str, Any]:
        """``data`` of Secret ``secret``; ``key`` only names the reference in errors."""
        if secret in self._fetched:
            return self._fetched[secret]
        try:
            data = await self._lookup(self.namespace, secret)
        except SecretError:
            raise
        except Exception as error:
            # Whatever the lookup's failure, the caller only needs "this object cannot be
            # served"; the original error stays attached as the cause.
            raise self.error(
                f"failed to get secret {self.namespace}/{secret} (key {key!r}): {error}",
                secret,
                key,
            ) from error
        if data is None:
            raise self.error(
                f"secret {self.namespace}/{secret} not found (key {key!r})", secret, key
            )
        if not isinstance(data, Mapping):
            raise self.error(f"secret {self.namespace}/{secret} has malformed data", secret, key)
        self._fetched[secret] = data
        return data

    async def raw_bytes(self, secret: str, key: str) -> bytes | None:
        """The decoded bytes under ``key``, or None when the Secret has no such key."""
        data = await self.data(secret, key)
        if key not in data:
            return None
        encoded = data[key]
        try:
            if not isinstance(encoded, str):
                raise ValueError("not a string")
            return base64.b64decode(encoded, validate=True)
        except (ValueError, binascii.Error):
            raise self.error(
                f"secret {self.namespace}/{secret} holds malformed base64 under key {key!r}",
                secret,
                key,
            ) from None

    async def base64_value(self, secret: str, key: str) -> str | None:
        """Standard base64 of the bytes under ``key`` (the form daprd decodes), or None."""
        raw = await self.raw_bytes(secret, key)
        return None if raw is None else base64.b64encode(raw).decode("ascii")


def _describe(kind: str, namespace: str, obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata")
    name = metadata.get("name") if isinstance(metadata, Mapping) else None
    return f"{kind} {namespace}/{name if isinstance(name, str) else ''}"


def _go_string(value: object) -> str | None:
    """A JSON string field as Go decodes it: null is "", and other types do not fit (None)."""
    if value is None:
        return ""
    return value if isinstance(value, str) else None


def _secret_ref(holder: object) -> tuple[str, str] | None:
    """``(secret, key)`` of a ``secretKeyRef`` worth resolving, the key left as written."""
    if not isinstance(holder, Mapping):
        return None
    ref = holder.get("secretKeyRef")
    if not isinstance(ref, Mapping):
        return None
    name, key = _go_string(ref.get("name")), _go_string(ref.get("key"))
    if not name or key is None:
        return None
    return name, key


def _child(obj: object, *path: str) -> object:
    for step in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


def _replaced(obj: Mapping[str, Any], path: tuple[str, ...], value: object) -> dict[str, Any]:
    """A copy of ``obj`` with ``value`` at ``path``, copying only the mappings along the way."""
    head, *rest = path
    copy = dict(obj)
    copy[head] = _replaced(obj[head], tuple(rest), value) if rest else value
    return copy


def _uses_kubernetes_store(auth: object) -> bool:
    if auth is None:
        return True
    if not isinstance(auth, Mapping):
        return False
    return _go_string(auth.get("secretStore")) in _KUBERNETES_STORES


async def _base64_pairs(pairs: object, reader: _SecretReader) -> list[Any] | None:
    """A copy of a ``NameValuePair`` list with secret values in base64 form, or None when no
    value changed. The key defaults to the Secret's name; a missing key leaves the value."""
    if not isinstance(pairs, list):
        return None
    resolved: list[Any] | None = None
    for index, pair in enumerate(pairs):
        ref = _secret_ref(pair)
        if ref is None:
            continue
        secret, key = ref
        value = await reader.base64_value(secret, key or secret)
        if value is None:
            continue
        if resolved is None:
            resolved = list(pairs)
        resolved[index] = {**pair, "value": value}
    return resolved


async def resolve_component(
    obj: Mapping[str, Any], namespace: str, lookup: SecretLookup
) -> dict[str, Any]:
    """``obj`` with each ``spec.metadata[].secretKeyRef`` filled in (base64 form)."""
    result = dict(obj)
    if not _uses_kubernetes_store(obj.get("auth")):
        return result
    reader = _SecretReader(namespace, lookup, _describe("Component", namespace, obj))
    pairs = await _base64_pairs(_child(obj, "spec", "metadata"), reader)
    if pairs is not None:
        result = _replaced(result, ("spec", "metadata"), pairs)
    return result


#: The client TLS documents of an HTTPEndpoint that may come from a Secret.
_TLS_DOCUMENTS = ("certificate", "privateKey", "rootCA")


async def resolve_http_endpoint(
    obj: Mapping[str, Any], namespace: str, lookup: SecretLookup
) -> dict[str, Any]:
    """``obj`` with ``spec.headers[]`` and ``spec.clientTLS`` documents filled in (base64)."""
    result = dict(obj)
    if not _uses_kubernetes_store(obj.get("auth")):
        return result
    reader = _SecretReader(namespace, lookup, _describe("HTTPEndpoint", namespace, obj))
    headers = await _base64_pairs(_child(obj, "spec", "headers"), reader)
    if headers is not None:
        result = _replaced(result, ("spec", "headers"), headers)
    for document_name in _TLS_DOCUMENTS:
        document = _child(obj, "spec", "clientTLS", document_name)
        ref = _secret_ref(document)
        if ref is None:
            continue
        secret, key = ref
        value = await reader.base64_value(secret, key or secret)
        if value is not None:
            assert isinstance(document, Mapping)  # _secret_ref only accepts mappings
            result = _replaced(
                result, ("spec", "clientTLS", document_name), {**document, "value": value}
            )
    return result


#: An MCPServer's transports, in the order one is chosen when (against the CRD's rule) several
#: are set, with the field that holds their secret-bearing NameValuePairs.
_MCP_TRANSPORTS = (("streamableHTTP", "headers"), ("sse", "headers"), ("stdio", "env"))


async def resolve_mcp_server(
    obj: Mapping[str, Any], namespace: str, lookup: SecretLookup
) -> dict[str, Any]:
    """``obj`` with the headers (HTTP transports) or env (stdio) filled in (base64 form)."""
    result = dict(obj)
    endpoint = _child(obj, "spec", "endpoint")
    if not isinstance(endpoint, Mapping):
        return result
    # The CRD allows exactly one transport; "set" means present and not null, as a Go pointer.
    chosen = next(
        ((name, field) for name, field in _MCP_TRANSPORTS if endpoint.get(name) is not None),
        None,
    )
    if chosen is None:
        return result
    transport_name, field = chosen
    transport = endpoint[transport_name]
    if not isinstance(transport, Mapping):
        return result
    # stdio has no auth, so its store is "" and its env is resolved.
    if not _uses_kubernetes_store(transport.get("auth")):
        return result
    reader = _SecretReader(namespace, lookup, _describe("MCPServer", namespace, obj))
    pairs = await _base64_pairs(transport.get(field), reader)
    if pairs is not None:
        result = _replaced(result, ("spec", "endpoint", transport_name, field), pairs)
    return result


def secret_text(raw: bytes) -> str:
    """Secret bytes as the text Go's JSON encoder emits for them.

    Go converts the bytes to a string and its JSON encoder writes each byte that is not part of
    valid UTF-8 as U+FFFD. The same happens here, byte by byte (Python's "replace" handler would
    merge some invalid sequences into one U+FFFD), so the decoded value equals Go's.
    """
    return _ESCAPED_BYTE.sub("\ufffd", raw.decode("utf-8", "surrogateescape"))


async def resolve_configuration(
    obj: Mapping[str, Any], namespace: str, lookup: SecretLookup
) -> dict[str, Any]:
    """``obj`` with ``spec.tracing.otel.headers[]`` filled in with the raw secret text.

    Unlike the other kinds, a header's key must be given and must exist in the Secret.
    """
    result = dict(obj)
    headers = _child(obj, "spec", "tracing", "otel", "headers")
    if not isinstance(headers, list):
        return result
    reader = _SecretReader(namespace, lookup, _describe("Configuration", namespace, obj))
    resolved: list[Any] | None = None
    for index, header in enumerate(headers):
        ref = _secret_ref(header)
        if ref is None:
            continue
        secret, key = ref
        header_name = header.get("name")
        if not key:
            raise reader.error(
                f"secret key is required for header {header_name} (secret {namespace}/{secret})",
                secret,
                key,
            )
        raw = await reader.raw_bytes(secret, key)
        if raw is None:
            raise reader.error(
                f"key {key!r} not found in secret {namespace}/{secret} for header {header_name}",
                secret,
                key,
            )
        if resolved is None:
            resolved = list(headers)
        resolved[index] = {**header, "value": secret_text(raw)}
    if resolved is not None:
        result = _replaced(result, ("spec", "tracing", "otel", "headers"), resolved)
    return result
