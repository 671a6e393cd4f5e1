"""Command-line flags of the sidecar injector (``cmd/injector/options/options.go``).

The logging, metrics and healthz flags every component shares are defined by core, not here.

Flags Dapr parses but ignores:

- ``--listen-address``: Dapr's webhook listener always binds every interface. We honour it.
- ``--metrics-listen-address`` (core): Dapr binds the exporter to every interface. We honour it.
"""

from __future__ import annotations

import os

from daprplane.core.flags import Flag, boolean, integer, string


def default_kubeconfig() -> str:
    """``$HOME/.kube/config``, or empty when ``HOME`` is not set."""
    home = os.environ.get("HOME", "")
    return os.path.join(home, ".kube", "config") if home else ""


FLAGS: tuple[Flag, ...] = (
    integer("port", 4000, "Port of the HTTPS mutating webhook."),
    string(
        "listen-address",
        "",
        "Address the webhook binds to; empty means every interface.",
    ),
    boolean(
        "scheduler-enabled",
        True,
        "Point injected sidecars at the scheduler service unless the pod names its own.",
    ),
    string(
        "kubeconfig",
        default_kubeconfig,
        "Kubeconfig to use when no in-cluster configuration is available "
        "(default: $HOME/.kube/config).",
    ),
)
