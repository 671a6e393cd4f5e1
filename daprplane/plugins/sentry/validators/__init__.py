"""Token validators: which are enabled, which is the default, and the ones plugins add.

Built-in validators other than ``insecure`` live in their own modules, each exposing
``create(options, environment) -> Validator``; plugins add validators through the
``daprplane_sentry_token_validators`` hook.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pluggy

from daprplane._proto.sentry.v1 import sentry_pb2
from daprplane.core.hookcall import Invoke, call_each
from daprplane.plugins.sentry.config import SentryConfig
from daprplane.plugins.sentry.validators.base import (
    TokenValidator,
    Validation,
    ValidationError,
    Validator,
    kind_name,
)
from daprplane.plugins.sentry.validators.insecure import InsecureValidator

__all__ = [
    "PluginValidator",
    "Validation",
    "ValidationError",
    "Validator",
    "ValidatorEnvironment",
    "ValidatorSet",
    "build",
    "kind_name",
    "plugin_validators",
]

#: Modules of the built-in validators that need more than this package.
_FACTORIES = {
    "jwks": "daprplane.plugins.sentry.validators.jwks",
    "kubernetes": "daprplane.plugins.sentry.validators.kubernetes",
}


class ValidatorSetupError(Exception):
    """A configured validator that cannot be created; fatal at start."""


@dataclass(frozen=True)
class ValidatorEnvironment:
    """What validators may need to know about the sentry they run in."""

    mode: str
    #: Sentry's own trust domain and namespace, and its SPIFFE ID (a TokenReview / JWT audience).
    trust_domain: str
    namespace: str
    sentry_id: str
    logger: logging.Logger
    extras: Mapping[str, Any] = field(default_factory=dict)


class PluginValidator:
    """A validator contributed by a plugin: a :class:`Validator` object, or an async callable
    ``validate(request) -> trust_domain | Validation`` (the hook's documented form)."""

    def __init__(self, name: str, target: Any, kind: int) -> None:
        self.name = name
        self.target = target
        self.kind = kind
        self.healthz_target: str | None = getattr(target, "healthz_target", None)

    async def start(self) -> None:
        start = getattr(self.target, "start", None)
        if start is not None and not _is_plain_callable(self.target):
            await start()

    async def stop(self) -> None:
        stop = getattr(self.target, "stop", None)
        if stop is not None and not _is_plain_callable(self.target):
            await stop()

    async def validate(self, request: sentry_pb2.SignCertificateRequest) -> Validation:
        validate = self.target if _is_plain_callable(self.target) else self.target.validate
        result = validate(request)
        if inspect.isawaitable(result):
            result = await result
        if isinstance(result, Validation):
            return result
        if isinstance(result, str) and result:
            return Validation(trust_domain=result)
        raise ValidationError(f"token validator {self.name!r} returned no trust domain")


def _is_plain_callable(target: Any) -> bool:
    return callable(target) and not hasattr(target, "validate")


def _plugin_kind(name: str, target: Any) -> int | None:
    kind = getattr(target, "kind", None)
    if isinstance(kind, int):
        return kind
    try:
        return int(TokenValidator.Value(name.upper()))
    except ValueError:
        pass
    try:
        return int(name)
    except ValueError:
        return None


def plugin_validators(hook: Any, logger: logging.Logger) -> dict[str, PluginValidator]:
    """Validators from every plugin's ``daprplane_sentry_token_validators``, by lowercase name.

    The hook is called through pluggy, so plugins are asked in pluggy's order (and a name two
    plugins return goes to the one asked first). A plugin whose hook fails, or a validator whose
    request enum value cannot be told (no ``kind`` attribute, and a name that is neither an enum
    name nor a number), is logged and skipped; the others still load.
    """
    found: dict[str, PluginValidator] = {}
    caller = getattr(hook, "daprplane_sentry_token_validators", None)
    if caller is None:
        return found
    # Who returned each mapping, so that an ignored validator is reported against its plugin.
    owners: dict[int, str] = {}

    def failed(impl: pluggy.HookImpl, error: Exception) -> None:
        # A broken plugin must not stop sentry.
        logger.error("Token validators of plugin %s failed to load: %s", impl.plugin_name, error)

    def contributed(impl: pluggy.HookImpl, arguments: dict[str, Any], invoke: Invoke) -> Any:
        validators = invoke(arguments) or {}
        if not isinstance(validators, Mapping):
            raise TypeError(f"expected validators by name, got {type(validators).__name__}")
        owners[id(validators)] = impl.plugin_name
        return validators

    for validators in call_each(caller, {}, failed, contributed):
        plugin_name = owners.get(id(validators), "(a hook wrapper)")
        try:
            items = list(validators.items())
        except Exception as error:
            logger.error("Token validators of plugin %s failed to load: %s", plugin_name, error)
            continue
        for name, target in items:
            lowered = str(name).lower()
            kind = _plugin_kind(lowered, target)
            if kind is None or lowered in ("insecure", "kubernetes") or lowered in found:
                logger.error(
                    "Ignoring token validator %r of plugin %s: it needs a 'kind' (the request's "
                    "token_validator value) and a name not already taken",
                    name,
                    plugin_name,
                )
                continue
            found[lowered] = PluginValidator(lowered, target, kind)
    return found


@dataclass
class ValidatorSet:
    """The enabled validators by request enum value, and the one used for ``UNKNOWN``."""

    validators: dict[int, Validator]
    default: int | None

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.validators.values())


def _create(name: str, options: Mapping[str, str], environment: ValidatorEnvironment) -> Validator:
    try:
        module = importlib.import_module(_FACTORIES[name])
    except ModuleNotFoundError as error:
        if error.name != _FACTORIES[name]:
            raise
        raise ValidatorSetupError(
            f"the {name} token validator is not available in this build"
        ) from None
    validator: Validator = module.create(options, environment)
    return validator


def build(
    config: SentryConfig,
    environment: ValidatorEnvironment,
    plugins: Mapping[str, PluginValidator] | None = None,
) -> ValidatorSet:
    """Kubernetes mode: KUBERNETES (the default) plus the configured ones. Standalone: the
    configured ones with no default, or INSECURE as the default when none is configured."""
    plugins = plugins or {}
    validators: dict[int, Validator] = {}
    default: int | None = None
    if environment.mode == "kubernetes":
        default = TokenValidator.KUBERNETES
        validators[default] = _create("kubernetes", {}, environment)
    elif not config.token_validators:
        default = TokenValidator.INSECURE
        validators[default] = InsecureValidator()
    for entry in config.token_validators:
        if entry.name in plugins:
            validator: Validator = plugins[entry.name]
        else:
            validator = _create(entry.name, entry.options, environment)
        validators[validator.kind] = validator
    return ValidatorSet(validators, default)
