"""Start the k8s test cluster by hand: ``python -m tests.k8s``.

Prints the admin kubeconfig path and runs until Ctrl-C (or SIGTERM).
"""

from __future__ import annotations

import signal
import sys
import threading

from .cluster import KubeCluster


def main() -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    with KubeCluster() as cluster:
        print(f"kube-apiserver {cluster.server} (etcd {cluster.etcd_url})")
        print(f"started in {cluster.startup_seconds:.1f}s; logs in {cluster.workdir}")
        print(f"export KUBECONFIG={cluster.kubeconfig}")
        print("Ctrl-C to stop", flush=True)
        stop.wait()
        print("stopping", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
