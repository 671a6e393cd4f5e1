"""Sentry's configuration: the ``spec.mtls`` part of a Dapr ``Configuration``.

Standalone mode reads it from the YAML file named by ``--config`` (environment variables expanded
first, as Go's ``os.ExpandEnv`` does); kubernetes mode reads the ``Configuration`` resource and
hands its body to :func:`load_from_configuration_object`. Any problem is fatal at start.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import yaml

from daprplane.core import goduration

DEFAULT_WORKLOAD_CERT_TTL = timedelta(hours=24)
DEFAULT_ALLOWED_CLOCK_SKEW = timedelta(minutes=15)
DEFAULT_TRUST_DOMAIN = "cluster.local"

#: The only validator Dapr lets a configuration enable by name.
CONFIGURABLE_VALIDATORS = ("jwks",)
BUILT_IN_VALIDATORS = ("kubernetes", "insecure")


class ConfigError(ValueError):
    """A configuration that cannot be used; the message is Dapr's."""


@dataclass(frozen=True)
class TokenValidatorConfig:
    name: str  # lowercase
    options: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SentryConfig:
    workload_cert_ttl: timedelta = DEFAULT_WORKLOAD_CERT_TTL
    allowed_clock_skew: timedelta = DEFAULT_ALLOWED_CLOCK_SKEW
    trust_domain: str = DEFAULT_TRUST_DOMAIN
    token_validators: tuple[TokenValidatorConfig, ...] = ()

    def with_trust_domain(self, trust_domain: str) -> SentryConfig:
        """``--trust-domain`` always wins over ``controlPlaneTrustDomain``."""
        return replace(self, trust_domain=trust_domain)


# -- os.ExpandEnv --------------------------------------------------------------------------------

_SPECIAL = set("*#$@!?-0123456789")
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


def _shell_name(text: str) -> tuple[str, int]:
    """Go's ``getShellName``: the variable name after ``$`` and how many characters it used."""
    if text[0] == "{":
        if len(text) > 2 and text[1] in _SPECIAL and text[2] == "}":
            return text[1], 3
        for i in range(1, len(text)):
            if text[i] == "}":
                if i == 1:
                    return "", 2  # "${}": bad syntax, eaten
                return text[1:i], i + 1
        return "", 1  # "${" without "}": bad syntax, "${" eaten
    if text[0] in _SPECIAL:
        return text[0], 1
    i = 0
    while i < len(text) and _NAME_CHAR.match(text[i]):
        i += 1
    return text[:i], i


def expand_env(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``os.ExpandEnv``: ``$VAR`` and ``${VAR}`` replaced, unset variables empty."""
    env = os.environ if environ is None else environ
    out: list[str] = []
    i = 0
    start = 0
    while i < len(text):
        if text[i] == "$" and i + 1 < len(text):
            out.append(text[start:i])
            name, width = _shell_name(text[i + 1 :])
            if name:
                out.append(env.get(name, ""))
            elif width == 0:
                out.append("$")  # "$" not followed by a name stays as it is
            i += 1 + width
            start = i
        else:
            i += 1
    out.append(text[start:])
    return "".join(out)


# -- parsing -------------------------------------------------------------------------------------


def _duration(value: Any, what: str, default: timedelta) -> timedelta:
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ConfigError(
            f"error parsing {what} duration: time: invalid duration {json.dumps(str(value))}"
        )
    try:
        return goduration.parse(value)
    except goduration.DurationError as error:
        raise ConfigError(f"error parsing {what} duration: {error}") from None


def _option_value(value: Any) -> str:
    """``cast.ToStringMapString``: scalars become their text, anything else empty."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    return ""


def _token_validators(
    entries: Any, extra_names: Collection[str]
) -> tuple[TokenValidatorConfig, ...]:
    if entries is None:
        return ()
    if not isinstance(entries, list):
        raise ConfigError("error parsing tokenValidators: expected a list")
    allowed = {*CONFIGURABLE_VALIDATORS, *(name.lower() for name in extra_names)}
    validators = []
    for entry in entries:
        if not isinstance(entry, Mapping):
            raise ConfigError("error parsing tokenValidators: expected a list of objects")
        name = str(entry.get("name") or "")
        lowered = name.lower()
        if lowered in BUILT_IN_VALIDATORS:
            raise ConfigError(
                "invalid token validator: the built-in 'kubernetes' and 'insecure' validators "
                "cannot be configured manually"
            )
        if lowered not in allowed:
            supported = ", ".join(f"'{n}'" for n in sorted(allowed, key=lambda n: n != "jwks"))
            raise ConfigError(
                f"invalid token validator name: '{name}'; supported values: {supported}"
            )
        options = entry.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigError(
                f"error parsing options of token validator '{name}': expected an object"
            )
        validators.append(
            TokenValidatorConfig(lowered, {str(k): _option_value(v) for k, v in options.items()})
        )
    return tuple(validators)


def load_from_configuration_object(
    obj: Mapping[str, Any] | None, extra_validators: Collection[str] = ()
) -> SentryConfig:
    """Parse a ``Configuration`` body (a CR from the API server or a standalone YAML document).

    ``extra_validators`` are validator names registered by plugins; they may be configured
    alongside ``jwks``.
    """
    if obj is None:
        return SentryConfig()
    if not isinstance(obj, Mapping):
        raise ConfigError("error unmarshaling configuration: not an object")
    spec = obj.get("spec") or {}
    mtls = spec.get("mtls") or {} if isinstance(spec, Mapping) else {}
    if not isinstance(mtls, Mapping):
        raise ConfigError("error unmarshaling configuration: spec.mtls is not an object")
    trust_domain = mtls.get("controlPlaneTrustDomain") or DEFAULT_TRUST_DOMAIN
    return SentryConfig(
        workload_cert_ttl=_duration(
            mtls.get("workloadCertTTL"), "WorkloadCertTTL", DEFAULT_WORKLOAD_CERT_TTL
        ),
        allowed_clock_skew=_duration(
            mtls.get("allowedClockSkew"), "AllowedClockSkew", DEFAULT_ALLOWED_CLOCK_SKEW
        ),
        trust_domain=str(trust_domain),
        token_validators=_token_validators(mtls.get("tokenValidators"), extra_validators),
    )


def _not_found(name: str, error: str) -> ConfigError:
    return ConfigError(
        f"loading default config. couldn't find config name {json.dumps(name)}: {error}"
    )


def load_standalone(
    path: str, extra_validators: Collection[str] = (), environ: Mapping[str, str] | None = None
) -> SentryConfig:
    """Read the YAML file at ``path``; a missing file is an error, an empty one the defaults."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except FileNotFoundError:
        raise _not_found(path, f"stat {path}: no such file or directory") from None
    except OSError as error:
        raise _not_found(path, f"open {path}: {error.strerror or error}") from None
    text = expand_env(raw.decode("utf-8", errors="replace"), environ)
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise _not_found(path, f"error converting YAML to JSON: {error}") from None
    try:
        return load_from_configuration_object(document, extra_validators)
    except ConfigError as error:
        raise _not_found(path, str(error)) from None
