"""Sentry's hooks, added to the host by the sentry plugin when it loads."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daprplane.core.markers import hookspec


@hookspec
def daprplane_sentry_token_validators() -> Mapping[str, Any]:
    """Return extra token validators by name, for identity requests Sentry's own do not cover.

    Called once when sentry starts. Names are lowercased. Returning a validator makes its name
    acceptable in the Configuration's ``spec.mtls.tokenValidators`` (next to ``jwks``); it is
    **enabled only when listed there**, and then, as for ``jwks``, standalone mode no longer
    defaults to INSECURE, so every request must name a validator. The entry's ``options`` are not
    passed to plugin validators.

    A value is either

    * a validator object, as the built-ins are (:class:`daprplane.plugin.TokenValidator`):
      ``kind``, ``healthz_target`` (a healthz target name that turns ready once ``start``
      returns, or ``None``), ``async start()`` (an error stops sentry with exit 1),
      ``async stop()`` (at shutdown) and ``validate(request)``; or
    * a callable ``validate(request)`` (a callable that has a ``validate`` attribute is taken
      for a validator object).

    ``validate`` gets the ``SignCertificateRequest``, runs on sentry's event loop (sync or
    async; it must not block), and returns the trust domain to issue in (a non-empty ``str``) or
    a :class:`daprplane.plugin.Validation`. An exception rejects the request with
    ``PermissionDenied`` and the exception's message; any other result is rejected as
    ``token validator '<name>' returned no trust domain``. The built-in validators each begin
    with the common request checks (app ID, namespace, CSR present); a plugin validator gets
    them only by calling :func:`daprplane.plugin.check_sign_request`.

    A request selects the validator whose kind equals its ``token_validator`` value. The kind is
    the object's integer ``kind`` attribute; failing that, the enum value named like the
    validator (``"jwks"`` is JWKS, which replaces the built-in JWKS validator); failing that, the
    name read as a number (``"42"``: a value outside Dapr's enum). A validator without a kind,
    named ``insecure`` or ``kubernetes``, or named like one a plugin called earlier returned,
    is logged and ignored; a plugin whose hook raises is logged and skipped.
    """


@hookspec
def daprplane_sentry_certificate_issued(
    spiffe_id: str, namespace: str, app_id: str, not_after: Any, validator: str
) -> None:
    """Observe every workload certificate Sentry issues (audit trails, metrics).

    Called for each successful ``SignCertificate``, after the certificate (and any JWT) is made
    and before the response is sent; not for rejected requests, nor for sentry's own serving
    certificate. ``spiffe_id`` is the certificate's URI SAN, ``namespace`` and ``app_id`` are the
    request's, ``not_after`` is the expiry as an aware UTC ``datetime``, and ``validator`` is the
    lowercase enum name of the validator that accepted the request (``insecure``,
    ``kubernetes``, ``jwks``; the number, as text, for a plugin kind outside the enum).

    Called through pluggy, synchronously on sentry's event loop (return quickly; a coroutine
    function would never be awaited); as always with pluggy, an implementation may declare only
    the arguments it needs. Return values are ignored. An observer that raises is logged with
    its plugin name; the request still succeeds and the other observers are still called.
    """
