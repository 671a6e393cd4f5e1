"""Where ``daprplane up`` keeps its state: one directory, ``~/.daprplane`` unless told otherwise.

Sentry's CA lives there so that it survives restarts: sidecars configured once with its trust
anchors keep working across ``up`` runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

#: Overrides the default state directory, like ``--state-dir``.
STATE_DIR_ENV = "DAPRPLANE_HOME"
DEFAULT_DIRECTORY_NAME = ".daprplane"


def default_state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    if env.get(STATE_DIR_ENV):
        return Path(env[STATE_DIR_ENV])
    return Path.home() / DEFAULT_DIRECTORY_NAME


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def certs(self) -> Path:
        """Sentry's issuer credentials: ``ca.crt``, ``issuer.crt``, ``issuer.key``."""
        return self.root / "certs"

    @property
    def trust_anchors(self) -> Path:
        return self.certs / "ca.crt"

    @property
    def cluster(self) -> Path:
        """With a cluster: the components' tokens and the trust anchors sentry published."""
        return self.root / "cluster"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def sentry_config(self) -> Path:
        """Sentry's Configuration file; created empty (defaults), for users to edit."""
        return self.root / "sentry-config.yaml"

    @property
    def record(self) -> Path:
        """What the running ``up`` started (see :mod:`.record`)."""
        return self.root / "up.json"

    @property
    def lock(self) -> Path:
        return self.root / "up.lock"

    def log_of(self, component: str) -> Path:
        return self.logs / f"{component}.log"

    def prepare(self) -> None:
        """Create the directories (private: the issuer key lives here)."""
        for directory in (self.root, self.certs, self.logs, self.cluster):
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        if not self.sentry_config.exists():
            self.sentry_config.write_text(
                "# Sentry's Configuration (kind: Configuration, apiVersion: dapr.io/v1alpha1).\n"
                "# Empty means Dapr's defaults, e.g. a workload certificate TTL of 24h.\n"
            )
