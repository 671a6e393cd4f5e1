"""A real kube-apiserver + etcd on loopback for tests (see cluster.py, fixtures.py)."""
