"""How every component reaches the API server: a ``kubernetes.aio`` ApiClient and raw JSON calls.

Configuration is found as Dapr's ``utils.GetConfig`` finds it: the in-cluster ServiceAccount
first, then the ``--kubeconfig`` file, then ``$KUBECONFIG``.

The kubeconfig is read here rather than by ``kubernetes.aio.config``: that module resolves the
user's home directory when it is imported (and fails in a container whose user has no home),
and it writes inline credentials to temporary files that live until exit. Here inline client
certificates only touch disk for the instant ``ssl`` needs a file name to load them from.

Objects travel as plain JSON dicts (:func:`request`): the components read a handful of fields
of pods, Secrets and custom resources, and the generated models would only be converted back.
"""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
#: How long a token read from a file is used before the file is read again (bound tokens rotate).
TOKEN_FILE_REFRESH = 60.0


class KubeConfigError(Exception):
    """No usable API server configuration."""


class KubeApiError(Exception):
    """A non-2xx answer of the API server; ``message`` is the ``Status`` message, as client-go
    errors print it."""

    def __init__(self, status: int, message: str, reason: str = "", body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason
        self.body = body

    @property
    def not_found(self) -> bool:
        return self.status == 404

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def gone(self) -> bool:
        return self.status == 410

    @property
    def forbidden(self) -> bool:
        return self.status == 403


@dataclass(frozen=True)
class ClusterConfig:
    """Where the API server is and how to authenticate to it (no files left open)."""

    host: str
    ca_pem: bytes | None = None
    verify: bool = True
    tls_server_name: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    token: str | None = None
    token_file: str | None = None
    username: str | None = None
    password: str | None = None
    proxy: str | None = None
    #: Where it came from, for messages.
    source: str = ""


# -- loading -------------------------------------------------------------------------------------


def _read_file(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise KubeConfigError(f"unable to read {what} {path}: {error.strerror or error}") from None


def in_cluster_config(
    environ: Mapping[str, str] | None = None, directory: str = SERVICE_ACCOUNT_DIR
) -> ClusterConfig | None:
    """The pod's ServiceAccount config, or ``None`` outside a cluster (as client-go decides)."""
    env = os.environ if environ is None else environ
    host, port = env.get("KUBERNETES_SERVICE_HOST", ""), env.get("KUBERNETES_SERVICE_PORT", "")
    token_file = os.path.join(directory, "token")
    if not host or not port or not os.path.exists(token_file):
        return None
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    ca_file = os.path.join(directory, "ca.crt")
    return ClusterConfig(
        host=f"https://{host}:{port}",
        ca_pem=_read_file(ca_file, "certificate authority") if os.path.exists(ca_file) else None,
        token_file=token_file,
        source="in-cluster",
    )


def _named(entries: Any, name: str, kind: str, path: str) -> Mapping[str, Any]:
    for entry in entries or []:
        if isinstance(entry, Mapping) and entry.get("name") == name:
            value = entry.get(kind) or {}
            if isinstance(value, Mapping):
                return value
    raise KubeConfigError(f"invalid kubeconfig {path}: no {kind} named {name!r}")


def _file_or_data(section: Mapping[str, Any], key: str, base: str, what: str) -> bytes | None:
    data = section.get(f"{key}-data")
    if data:
        try:
            return base64.b64decode(data)
        except ValueError:
            raise KubeConfigError(f"invalid {key}-data: not base64") from None
    name = section.get(key)
    if name:
        return _read_file(os.path.join(base, os.path.expanduser(str(name))), what)
    return None


def kubeconfig_file_config(path: str, context: str | None = None) -> ClusterConfig:
    """The cluster and user of ``context`` (default: the current context) in one kubeconfig."""
    import yaml  # only here: in-cluster configuration, the usual case, never reads YAML

    try:
        with open(path, "rb") as handle:
            document = yaml.safe_load(handle)
    except OSError as error:
        raise KubeConfigError(f"unable to read kubeconfig {path}: {error.strerror}") from None
    except yaml.YAMLError as error:
        raise KubeConfigError(f"invalid kubeconfig {path}: {error}") from None
    if not isinstance(document, Mapping):
        raise KubeConfigError(f"invalid kubeconfig {path}: not a mapping")
    base = os.path.dirname(os.path.abspath(path))
    context_name = context or document.get("current-context")
    if not context_name:
        raise KubeConfigError(f"invalid kubeconfig {path}: no current context")
    ctx = _named(document.get("contexts"), context_name, "context", path)
    cluster = _named(document.get("clusters"), str(ctx.get("cluster")), "cluster", path)
    user: Mapping[str, Any] = {}
    if ctx.get("user"):
        user = _named(document.get("users"), str(ctx["user"]), "user", path)
    if user.get("exec") or user.get("auth-provider"):
        raise KubeConfigError(
            f"kubeconfig {path}: exec and auth-provider credentials are not supported; "
            "use a client certificate or a token"
        )
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise KubeConfigError(f"invalid kubeconfig {path}: cluster has no server")
    token_file = user.get("tokenFile")
    return ClusterConfig(
        host=server,
        ca_pem=_file_or_data(cluster, "certificate-authority", base, "certificate authority"),
        verify=not cluster.get("insecure-skip-tls-verify", False),
        tls_server_name=cluster.get("tls-server-name") or None,
        client_cert_pem=_file_or_data(user, "client-certificate", base, "client certificate"),
        client_key_pem=_file_or_data(user, "client-key", base, "client key"),
        token=user.get("token") or None,
        token_file=os.path.join(base, token_file) if token_file else None,
        username=user.get("username") or None,
        password=user.get("password") or None,
        proxy=cluster.get("proxy-url") or None,
        source=path,
    )


def load_cluster_config(
    kubeconfig: str | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    service_account_dir: str = SERVICE_ACCOUNT_DIR,
) -> ClusterConfig:
    """In-cluster config, else the ``kubeconfig`` file, else the first file of ``$KUBECONFIG``.

    ``HOME`` is never consulted: a launcher passes ``$HOME/.kube/config`` as its flag default
    when ``HOME`` is set.
    """
    env = os.environ if environ is None else environ
    config = in_cluster_config(env, service_account_dir)
    if config is not None:
        return config
    candidates = [kubeconfig] if kubeconfig else []
    candidates += [p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p]
    for path in candidates:
        if os.path.exists(path):
            return kubeconfig_file_config(path)
    if candidates:
        raise KubeConfigError(
            f"unable to load kubeconfig: stat {candidates[0]}: no such file or directory"
        )
    raise KubeConfigError(
        "unable to load in-cluster configuration, KUBERNETES_SERVICE_HOST and "
        "KUBERNETES_SERVICE_PORT must be defined, and no kubeconfig was given"
    )


# -- clients -------------------------------------------------------------------------------------


class _TokenFile:
    """Reads a (rotating) token file at most every :data:`TOKEN_FILE_REFRESH` seconds."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.read_at = 0.0
        self.token = ""

    def __call__(self, configuration: Any) -> None:
        now = time.monotonic()
        if not self.token or now - self.read_at > TOKEN_FILE_REFRESH:
            try:
                self.token = _read_file(self.path, "token file").decode().strip()
            except KubeConfigError:
                if not self.token:
                    raise
            self.read_at = now
        configuration.api_key["BearerToken"] = self.token


def _import_aio_client() -> Any:
    """``kubernetes.aio.client``, imported even where no home directory can be found.

    Importing the ``kubernetes`` package evaluates ``Path.home()`` (for a default kubeconfig
    path this module never uses), which raises when ``HOME`` is unset and the user has no
    passwd entry, as in containers run with an arbitrary UID. Only then, and only for the
    import, ``HOME`` is set to a directory that does not exist.
    """
    if "kubernetes.aio.client" in sys.modules or "HOME" in os.environ:
        import kubernetes.aio.client

        return kubernetes.aio.client
    if os.path.expanduser("~") != "~":
        import kubernetes.aio.client

        return kubernetes.aio.client
    os.environ["HOME"] = "/nonexistent"
    try:
        import kubernetes.aio.client
    finally:
        os.environ.pop("HOME", None)
    return kubernetes.aio.client


def api_client(config: ClusterConfig) -> Any:
    """A ``kubernetes.aio.client.ApiClient`` for ``config``; close it (``await .close()``).

    Works outside a running event loop: the HTTP session is opened at the first request.
    """
    aio_client = _import_aio_client()
    ApiClient, Configuration = aio_client.ApiClient, aio_client.Configuration

    configuration = Configuration(host=config.host)
    configuration.verify_ssl = config.verify
    if config.ca_pem:
        configuration.ca_cert_data = config.ca_pem.decode()
    if config.tls_server_name:
        configuration.tls_server_name = config.tls_server_name
    if config.proxy:
        configuration.proxy = config.proxy
    if config.username and config.password:
        configuration.username, configuration.password = config.username, config.password
    if config.token:
        configuration.api_key = {"BearerToken": config.token}
    elif config.token_file:
        refresh = _TokenFile(config.token_file)
        refresh(configuration)
        configuration.refresh_api_key_hook = refresh
    if config.token or config.token_file:
        configuration.api_key_prefix = {"BearerToken": "Bearer"}
    if not (config.client_cert_pem and config.client_key_pem):
        return ApiClient(configuration)
    # ssl loads a certificate chain from files only; the files exist while the client builds
    # its SSL context and are removed right after.
    with tempfile.TemporaryDirectory(prefix="daprplane-kube-") as directory:
        cert_file = os.path.join(directory, "client.crt")
        key_file = os.path.join(directory, "client.key")
        for path, data in ((cert_file, config.client_cert_pem), (key_file, config.client_key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        configuration.cert_file, configuration.key_file = cert_file, key_file
        client = ApiClient(configuration)
    configuration.cert_file = configuration.key_file = None
    return client


def new_api_client(kubeconfig: str | None = None, environ: Mapping[str, str] | None = None) -> Any:
    """:func:`load_cluster_config` then :func:`api_client`."""
    return api_client(load_cluster_config(kubeconfig, environ))


# -- raw JSON requests ---------------------------------------------------------------------------


def path_of(*segments: str) -> str:
    """``/a/b/c`` with every segment URL-escaped."""
    return "/" + "/".join(quote(s, safe="") for s in segments)


def _status_message(status: int, reason: str, text: str) -> tuple[str, str, Any]:
    try:
        body = json.loads(text)
    except ValueError:
        return (text.strip() or f"{status} {reason}"), reason, text
    if isinstance(body, Mapping) and body.get("kind") == "Status":
        return str(body.get("message") or reason), str(body.get("reason") or reason), body
    return (text.strip() or f"{status} {reason}"), reason, body


async def open_request(
    api: Any,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    body: Any = None,
    content_type: str = "application/json",
    timeout: Any = None,
) -> Any:
    """Send a request and return the ``RESTResponse`` unread; raise :class:`KubeApiError`."""
    items = list(query.items()) if isinstance(query, Mapping) else list(query)
    url = api.configuration.host + path
    if items:
        url += "?" + urlencode(
            [(k, str(v).lower() if isinstance(v, bool) else v) for k, v in items]
        )
    headers = {"Accept": "application/json", "Content-Type": content_type}
    if api.user_agent:
        headers["User-Agent"] = api.user_agent
    auth = await api.configuration.auth_settings()
    if "BearerToken" in auth:
        headers["Authorization"] = auth["BearerToken"]["value"]
    elif api.configuration.username:
        headers["Authorization"] = api.configuration.get_basic_auth_token()
    response = await api.call_api(
        method, url, header_params=headers, body=body, _request_timeout=timeout
    )
    if response.status >= 400:
        text = (await response.read()).decode(errors="replace")
        message, reason, decoded = _status_message(response.status, response.reason or "", text)
        raise KubeApiError(response.status, message, reason, decoded)
    return response


async def request(
    api: Any,
    method: str,
    path: str,
    *,
    query: Sequence[tuple[str, Any]] | Mapping[str, Any] = (),
    body: Any = None,
    content_type: str = "application/json",
    timeout: Any = None,
) -> Any:
    """Call ``path`` and return the decoded JSON body; raise :class:`KubeApiError`."""
    response = await open_request(
        api, method, path, query=query, body=body, content_type=content_type, timeout=timeout
    )
    data = await response.read()
    return json.loads(data) if data else None


async def get_if_exists(api: Any, path: str, *, timeout: Any = None) -> Any | None:
    """The decoded object at ``path``, or ``None`` when the API server answers 404."""
    try:
        return await request(api, "GET", path, timeout=timeout)
    except KubeApiError as error:
        if error.not_found:
            return None
        raise


async def list_items(
    api: Any,
    path: str,
    *,
    query: Mapping[str, Any] | None = None,
    timeout: Any = None,
    page_size: int = 500,
) -> list[Any]:
    """Every item of the collection at ``path``, read page by page (``limit`` + ``continue``)."""
    items: list[Any] = []
    token = ""
    while True:
        page_query: dict[str, Any] = {**(query or {}), "limit": page_size}
        if token:
            page_query["continue"] = token
        page = await request(api, "GET", path, query=page_query, timeout=timeout)
        items.extend(page.get("items") or [])
        token = (page.get("metadata") or {}).get("continue") or ""
        if not token:
            return items
