"""Kubernetes mode: the ``daprsystem`` Configuration and the ``dapr-trust-bundle`` objects.

The CA lives in Secret ``dapr-trust-bundle`` in sentry's namespace (keys named after the
credential file flags: ``ca.crt``, ``issuer.crt``, ``issuer.key``, ``jwt.key``, ``jwks.json``);
ConfigMap ``dapr-trust-bundle`` publishes ``ca.crt`` (and ``jwks.json``) to everyone else.
Sentry never creates or deletes them. As in Dapr (``ca/kube.go``), the X.509 bundle is generated
when the Secret has none of its three keys or when the ConfigMap's ``ca.crt`` differs from the
Secret's, and both objects are written with UPDATE. Unlike Dapr, a Secret with some of the three
keys but not all is refused rather than generated over.

Unlike Dapr, replicas that start together on an empty Secret agree on one CA. Every UPDATE
carries the resourceVersion that was read, so only one generated bundle can land; the others
get ``409 Conflict``, read the Secret again and adopt (and verify) what won. A bundle written by
a sentry is marked with the digest of its ``ca.crt`` (:data:`GENERATED_ANNOTATION`): while that
mark matches, a ConfigMap that does not match yet is a peer's write still in flight (or lost),
and is brought in line with the Secret instead of starting another CA.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import hashlib
import logging
import os
from collections.abc import Callable, Collection, Mapping
from typing import Any

from daprplane.core.kube import Informer, KubeApiError, KubeConfigError, new_api_client, path_of
from daprplane.core.kube import request as kube_request
from daprplane.plugins.sentry import config as config_mod
from daprplane.plugins.sentry.ca import bundle as bundle_mod
from daprplane.plugins.sentry.ca.completeness import require_all_or_none
from daprplane.plugins.sentry.ca.store import (
    CaSettings,
    Credentials,
    CredentialsError,
    load_jwt_material,
)

log = logging.getLogger("dapr.sentry.ca")

TRUST_BUNDLE_NAME = "dapr-trust-bundle"
GENERATED_ANNOTATION = "sentry.daprplane.io/generated-ca-sha256"
CONFIGURATIONS = ("apis", "dapr.io", "v1alpha1")
#: Rounds of read-decide-write before giving up on a Secret that keeps changing under us.
MAX_ROUNDS = 10
POLL_INTERVAL = 1.0

ApiFactory = Callable[[], Any]


# -- configuration -------------------------------------------------------------------------------


def current_namespace_or_error(environ: Mapping[str, str] | None = None) -> str:
    """Dapr's ``security.CurrentNamespaceOrError``."""
    env = os.environ if environ is None else environ
    if "NAMESPACE" not in env:
        raise config_mod.ConfigError("'NAMESPACE' environment variable not set")
    if not env["NAMESPACE"]:
        raise config_mod.ConfigError("'NAMESPACE' environment variable is empty")
    return env["NAMESPACE"]


def _config_error(name: str, detail: object) -> config_mod.ConfigError:
    return config_mod.ConfigError(
        f'loading default config. couldn\'t find config name "{name}": {detail}'
    )


async def fetch_configuration(
    api: Any,
    name: str,
    extra_validators: Collection[str] = (),
    environ: Mapping[str, str] | None = None,
) -> config_mod.SentryConfig:
    """GET ``Configuration/<name>`` in ``$NAMESPACE`` and parse its ``spec.mtls``."""
    try:
        namespace = current_namespace_or_error(environ)
    except config_mod.ConfigError as error:
        raise _config_error(name, error) from None
    path = path_of(*CONFIGURATIONS, "namespaces", namespace, "configurations", name)
    try:
        obj = await kube_request(api, "GET", path)
    except KubeApiError as error:
        raise _config_error(name, "config CRD not found" if error.not_found else error) from None
    except Exception as error:  # the API server cannot be reached
        raise _config_error(name, error) from None
    try:
        return config_mod.load_from_configuration_object(obj, extra_validators)
    except config_mod.ConfigError as error:
        raise _config_error(name, error) from None


def _api_factory(options: Any) -> ApiFactory:
    kubeconfig = getattr(options, "kubeconfig", "") or None
    return lambda: new_api_client(kubeconfig)


async def load_configuration(
    options: Any, extra_validators: Collection[str] = ()
) -> config_mod.SentryConfig:
    """The ``--config`` Configuration of kubernetes mode (the service's seam)."""
    try:
        api = _api_factory(options)()
    except KubeConfigError as error:
        raise _config_error(options.config, error) from None
    try:
        return await fetch_configuration(api, options.config, extra_validators)
    finally:
        await api.close()


def credential_store(options: Any) -> KubeCredentialStore:
    """The service's seam: the store for ``options`` (namespace, key names, kubeconfig)."""
    files = options.files
    return KubeCredentialStore(
        _api_factory(options),
        options.namespace,
        root_key=os.path.basename(files.root_cert),
        issuer_cert_key=os.path.basename(files.issuer_cert),
        issuer_key_key=os.path.basename(files.issuer_key),
        jwt_key_key=os.path.basename(files.jwt_key),
        jwks_key=os.path.basename(files.jwks),
    )


# -- the trust bundle ----------------------------------------------------------------------------


def _secret_data(secret: Mapping[str, Any]) -> dict[str, bytes]:
    return {k: base64.b64decode(v or "") for k, v in (secret.get("data") or {}).items()}


def _digest(data: Mapping[str, bytes]) -> str:
    hasher = hashlib.sha256()
    for key in sorted(data):
        hasher.update(key.encode() + b"\0" + data[key] + b"\0")
    return hasher.hexdigest()


def _anchors_digest(ca_pem: bytes) -> str:
    return hashlib.sha256(ca_pem).hexdigest()


class KubeCredentialStore:
    """:class:`~daprplane.plugins.sentry.ca.store.CredentialStore` over Secret and ConfigMap."""

    def __init__(
        self,
        api_factory: ApiFactory,
        namespace: str,
        *,
        root_key: str = "ca.crt",
        issuer_cert_key: str = "issuer.crt",
        issuer_key_key: str = "issuer.key",
        jwt_key_key: str = "jwt.key",
        jwks_key: str = "jwks.json",
        name: str = TRUST_BUNDLE_NAME,
    ) -> None:
        self.api_factory = api_factory
        self.namespace = namespace
        self.name = name
        self.root_key = root_key
        self.issuer_cert_key = issuer_cert_key
        self.issuer_key_key = issuer_key_key
        self.jwt_key_key = jwt_key_key
        self.jwks_key = jwks_key
        self._api: Any = None
        #: Digest of the Secret data the last load used: a watch event with other data reloads.
        self.loaded_digest: str | None = None
        self._reported: str | None = None

    @property
    def api(self) -> Any:
        if self._api is None:
            try:
                self._api = self.api_factory()
            except KubeConfigError as error:
                raise CredentialsError(str(error)) from None
        return self._api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None

    def _path(self, kind: str) -> str:
        return path_of("api", "v1", "namespaces", self.namespace, kind, self.name)

    async def _get(self, kind: str, what: str) -> dict[str, Any]:
        try:
            obj: dict[str, Any] = await kube_request(self.api, "GET", self._path(kind))
        except KubeApiError as error:
            raise CredentialsError(f"failed to get trust bundle {what}: {error}") from None
        except CredentialsError:
            raise
        except Exception as error:
            raise CredentialsError(f"failed to get trust bundle {what}: {error}") from None
        return obj

    async def _put(self, kind: str, obj: Mapping[str, Any], what: str) -> dict[str, Any] | None:
        """UPDATE ``obj`` (carrying the resourceVersion it was read at); ``None`` on conflict."""
        try:
            result: dict[str, Any] = await kube_request(self.api, "PUT", self._path(kind), body=obj)
        except KubeApiError as error:
            if error.conflict:
                return None
            raise CredentialsError(f"failed to update trust bundle {what}: {error}") from None
        except Exception as error:
            raise CredentialsError(f"failed to update trust bundle {what}: {error}") from None
        return result

    async def load(self, settings: CaSettings) -> Credentials:
        for _ in range(MAX_ROUNDS):
            credentials = await self._round(settings)
            if credentials is not None:
                return credentials
            log.info("Trust bundle secret was updated by another sentry; reading it again")
        raise CredentialsError(
            f"trust bundle secret {self.namespace}/{self.name} kept changing while it was stored"
        )

    async def _round(self, settings: CaSettings) -> Credentials | None:
        """One read-decide-write round; ``None`` when another writer got there first."""
        secret = await self._get("secrets", "secret")
        configmap = await self._get("configmaps", "configmap")
        data = _secret_data(secret)
        published = (configmap.get("data") or {}).get(self.root_key)
        x509_keys = (self.root_key, self.issuer_cert_key, self.issuer_key_key)
        # Some keys without the others is refused, never generated over (see .completeness).
        complete = require_all_or_none(
            {key: data.get(key) for key in x509_keys},
            where=f" in secret {self.namespace}/{self.name}",
        )
        ca_pem = data.get(self.root_key, b"")
        consistent = complete and published is not None and published.encode() == ca_pem
        annotations = (secret.get("metadata") or {}).get("annotations") or {}
        peer_generated = complete and annotations.get(GENERATED_ANNOTATION) == _anchors_digest(
            ca_pem
        )
        generated = not (consistent or peer_generated)
        if generated:
            log.info("Root and issuer certs not found: generating self signed CA")
            bundle = await asyncio.to_thread(
                bundle_mod.generate,
                settings.trust_domain,
                settings.namespace,
                settings.allowed_clock_skew,
            )
        else:
            try:
                bundle = bundle_mod.verify(
                    data[self.root_key], data[self.issuer_cert_key], data[self.issuer_key_key]
                )
            except bundle_mod.BundleError as error:
                raise CredentialsError(f"failed to verify CA bundle: {error}") from None
        jwt_key, jwks = data.get(self.jwt_key_key), data.get(self.jwks_key)
        if jwt_key is None or jwks is None:
            jwt_key = jwks = None  # JWT material counts only when both keys are there
        material, jwt_generated = await asyncio.to_thread(
            load_jwt_material, jwt_key, jwks, settings.jwt
        )
        jwt_generated = jwt_generated and settings.jwt.enabled and material is not None

        if generated or jwt_generated:
            updated = copy.deepcopy(secret)
            new_data = dict(data)
            if generated:
                new_data[self.root_key] = bundle.trust_anchors_pem
                new_data[self.issuer_cert_key] = bundle.issuer_chain_pem
                new_data[self.issuer_key_key] = bundle.issuer_key_pem
                metadata = updated.setdefault("metadata", {})
                marks = dict(metadata.get("annotations") or {})
                marks[GENERATED_ANNOTATION] = _anchors_digest(bundle.trust_anchors_pem)
                metadata["annotations"] = marks
            if jwt_generated and material is not None:
                new_data[self.jwt_key_key] = material.key_pem
                new_data[self.jwks_key] = material.jwks_json
            updated["data"] = {k: base64.b64encode(v).decode() for k, v in new_data.items()}
            if await self._put("secrets", updated, "secret") is None:
                return None
            data = new_data
            if generated:
                log.info("Self-signed certs generated and persisted successfully")
            if jwt_generated:
                log.info("JWT signing key generated and persisted successfully")
        if generated or jwt_generated or not consistent:
            await self._publish(configmap, bundle.trust_anchors_pem, material)
        self.loaded_digest = _digest(data)
        return Credentials(bundle=bundle, jwt=material, generated=generated)

    async def _publish(self, configmap: dict[str, Any], ca_pem: bytes, material: Any) -> None:
        """Make the ConfigMap show ``ca_pem`` (and the JWKS); retried on conflicts."""
        for _ in range(MAX_ROUNDS):
            data = dict(configmap.get("data") or {})
            data[self.root_key] = ca_pem.decode()
            data.pop(self.jwks_key, None)
            if material is not None:
                data[self.jwks_key] = material.jwks_json.decode()
            if data == (configmap.get("data") or {}):
                return
            updated = copy.deepcopy(configmap)
            updated["data"] = data
            if await self._put("configmaps", updated, "configmap") is not None:
                return
            configmap = await self._get("configmaps", "configmap")
        raise CredentialsError(
            f"trust bundle configmap {self.namespace}/{self.name} kept changing while it was stored"
        )

    # -- reload ----------------------------------------------------------------------------------

    async def watch(self, on_change: Callable[[], Any]) -> None:
        """Call ``on_change`` (awaited) whenever the Secret's data differs from the last load.

        Uses a watch when sentry may list and watch the Secret; Dapr's Role grants only get and
        update on it, and then the Secret is read every :data:`POLL_INTERVAL` seconds instead.
        """
        changed = asyncio.Event()
        path = path_of("api", "v1", "namespaces", self.namespace, "secrets")
        selector = f"metadata.name={self.name}"
        try:
            await kube_request(
                self.api, "GET", path, query=[("fieldSelector", selector), ("limit", 1)]
            )
            can_watch = True
        except KubeApiError as error:
            can_watch = not (error.forbidden or error.status == 401)
        if not can_watch:
            log.info("Cannot watch the trust bundle secret; polling it instead")
            await self._poll(on_change)
            return
        informer = Informer(self.api, path, field_selector=selector, name="trust bundle secret")

        def observe(_kind: str, obj: dict[str, Any], _old: Any) -> None:
            if self._is_news(_digest(_secret_data(obj))):
                changed.set()

        informer.add_handler(observe)
        informer.start()
        try:
            while True:
                await changed.wait()
                changed.clear()
                await _call(on_change)
        finally:
            await informer.stop()

    async def _poll(self, on_change: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            with contextlib.suppress(CredentialsError):
                secret = await self._get("secrets", "secret")
                if self._is_news(_digest(_secret_data(secret))):
                    await _call(on_change)

    def _is_news(self, digest: str) -> bool:
        """Data neither loaded nor already reported (a reload that failed is not retried until
        the Secret changes again)."""
        if self.loaded_digest is None or digest in (self.loaded_digest, self._reported):
            return False
        self._reported = digest
        return True


async def _call(callback: Callable[[], Any]) -> None:
    result = callback()
    if asyncio.iscoroutine(result):
        await result
