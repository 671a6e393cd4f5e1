"""Dapr's refusal to run as root inside Kubernetes (``pkg/security/usergroup.go``).

In kubernetes mode a process whose effective UID is 0 stops at start, unless the operator opts
out with ``DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true``. Standalone mode and Windows are not
checked.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

SKIP_VARIABLE = "DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK"
ROOT_MESSAGE = (
    "current user UID(0) is root. Dapr must be run as a non-root user in Kubernetes "
    "environments. To override this check, set the environment variable "
    "'DAPR_UNSAFE_SKIP_CONTAINER_UID_GID_CHECK=true'"
)


class RootUserError(RuntimeError):
    """Running as root in Kubernetes without the opt-out."""


def _effective_uid() -> int:
    geteuid = getattr(os, "geteuid", None)
    return geteuid() if geteuid is not None else -1


def check_user(
    mode: str,
    environ: Mapping[str, str] | None = None,
    *,
    euid: Callable[[], int] = _effective_uid,
    platform: str = sys.platform,
) -> None:
    """Raise :class:`RootUserError` (Dapr's message) when kubernetes mode would run as root."""
    if mode != "kubernetes" or platform.startswith("win"):
        return
    env = os.environ if environ is None else environ
    if env.get(SKIP_VARIABLE, "").strip().lower() == "true":
        return
    if euid() == 0:
        raise RootUserError(ROOT_MESSAGE)
