"""The plugin contract: every hook daprplane calls, and nothing else defines hooks.

A plugin is a module (or object) listed in the ``daprplane.plugins`` entry-point group whose
functions carry ``@daprplane.hookimpl`` and are named after the specs below. The four built-in
components are plugins of exactly this kind. Hooks are synchronous, as pluggy's are: a hook that
needs to do I/O returns a coroutine factory, which the host awaits.

Hook results are validated by the caller (a wrong type is reported against the plugin that
returned it); see ``docs/plugins.md`` for order, failure policy and examples.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from daprplane.core.markers import hookspec

if TYPE_CHECKING:
    from daprplane.core.component import ComponentSpec

# ---------------------------------------------------------------------------------------------
# Components


@hookspec
def daprplane_register_components() -> Sequence[ComponentSpec]:
    """Return the components this plugin adds: name, flags and async entry point.

    Called once when the host loads plugins. Each :class:`~daprplane.core.component.ComponentSpec`
    becomes a ``daprplane <name>`` subcommand; the built-ins also have their own console scripts
    (``daprplane-placement`` ...). Two plugins registering the same name is an error reported
    against the second one; the first keeps the name.
    """


# ---------------------------------------------------------------------------------------------
# Sidecar injector. Called for every admitted pod that will get a sidecar, in this order:
# annotations (once, at start-up) -> edit_sidecar -> edit_pod -> edit_patch.


@hookspec
def daprplane_injector_annotations() -> Sequence[str]:
    """Return the extra pod annotations this plugin understands (e.g. ``dapr.io/my-feature``).

    Called once at injector start-up. The injector passes these through to the hooks below in
    ``annotations`` and lists them in its start-up log; it never rejects an unknown annotation.
    """


@hookspec
def daprplane_injector_edit_sidecar(
    sidecar: dict[str, Any], pod: Mapping[str, Any], annotations: Mapping[str, str]
) -> None:
    """Edit the ``daprd`` container spec in place before it is serialised into the patch.

    ``sidecar`` is the container as a Kubernetes JSON object (camelCase keys); ``pod`` is the
    incoming pod, read-only. Every plugin sees the result of the previous one, in registration
    order. The edited container must still be a JSON object named ``daprd``.
    """


@hookspec
def daprplane_injector_edit_pod(
    pod: Mapping[str, Any], annotations: Mapping[str, str]
) -> Sequence[Mapping[str, Any]] | None:
    """Return JSON-patch operations for pod-level changes (volumes, init containers, labels).

    The operations are appended after the injector's own, in plugin registration order. Each must
    be an object with ``op`` (``add``, ``replace`` or ``remove``) and a ``path`` under ``/spec`` or
    ``/metadata``.
    """


@hookspec
def daprplane_injector_edit_patch(patch: list[dict[str, Any]], pod: Mapping[str, Any]) -> None:
    """See, and extend or edit in place, the final JSON patch before it is returned."""


# ---------------------------------------------------------------------------------------------
# Sentry


@hookspec
def daprplane_sentry_token_validators() -> Mapping[str, Any]:
    """Return extra token validators by name, for identity requests Sentry's own do not cover.

    Called once when sentry starts. Names are lowercased. Returning a validator makes its name
    acceptable in the Configuration's ``spec.mtls.tokenValidators`` (next to ``jwks``); it is
    **enabled only when listed there**, and then, as for ``jwks``, standalone mode no longer
    defaults to INSECURE, so every request must name a validator. The entry's ``options`` are not
    passed to plugin validators.

    A value is either

    * a validator object, as the built-ins are
      (:class:`daprplane.plugins.sentry.validators.base.Validator`): ``kind``, ``healthz_target``
      (a healthz target name that turns ready once ``start`` returns, or ``None``),
      ``async start()`` (an error stops sentry with exit 1), ``async stop()`` (at shutdown) and
      ``validate(request)``; or
    * a callable ``validate(request)`` (a callable that has a ``validate`` attribute is taken
      for a validator object).

    ``validate`` gets the ``SignCertificateRequest``, runs on sentry's event loop (sync or
    async; it must not block), and returns the trust domain to issue in (a non-empty ``str``) or
    a :class:`~daprplane.plugins.sentry.validators.base.Validation`. An exception rejects the
    request with ``PermissionDenied`` and the exception's message; any other result is rejected
    as ``token validator '<name>' returned no trust domain``. The built-in validators each begin
    with the common request checks (app ID, namespace, CSR present); a plugin validator gets them
    only by calling ``daprplane.plugins.sentry.validators.common.validate(request)``.

    A request selects the validator whose kind equals its ``token_validator`` value. The kind is
    the object's integer ``kind`` attribute; failing that, the enum value named like the
    validator (``"jwks"`` is JWKS, which replaces the built-in JWKS validator); failing that, the
    name read as a number (``"42"``: a value outside Dapr's enum). A validator without a kind,
    named ``insecure`` or ``kubernetes``, or named like one an earlier-registered plugin
    returned, is logged and ignored; a plugin whose hook raises is logged and skipped.
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

    Sentry calls the implementations itself, one at a time in registration order, synchronously
    on its event loop (return quickly; a coroutine function would never be awaited), passing
    only the arguments each declares: ``def daprplane_sentry_certificate_issued(spiffe_id)`` is
    fine. Return values are ignored. An observer that raises is logged with its plugin name; the
    request still succeeds and the other observers are still called.
    """


# ---------------------------------------------------------------------------------------------
# Placement


@hookspec
def daprplane_placement_table_disseminated(
    namespace: str, version: int, tables: Mapping[str, Any]
) -> None:
    """Observe each placement table after every sidecar in ``namespace`` unlocked ``version``.

    ``tables`` maps actor type to the hosts (``name -> Host``) the table places it on. Observers
    run on the placement event loop: return quickly.
    """


# ---------------------------------------------------------------------------------------------
# Operator


@hookspec
def daprplane_operator_resource_changed(kind: str, event: str, resource: Mapping[str, Any]) -> None:
    """Observe each change the operator sees to a Dapr resource (audit trails, GitOps checks).

    ``kind`` is the resource's kind (``Component``, ``Configuration``, ``Subscription``,
    ``Resiliency``, ``HTTPEndpoint``, ``MCPServer``, ``WorkflowAccessPolicy``), ``event`` one of
    ``CREATED``, ``UPDATED``, ``DELETED``, and ``resource`` the object as the API server sent it
    (read-only; secret references are not resolved). Called once per change on every operator
    replica, after its caches have listed once (the objects that exist at start are not
    reported), on the operator's event loop: return quickly. A failing observer is logged with
    its exception; the operator and the streams to sidecars are not affected.
    """
