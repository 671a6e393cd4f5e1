//go:build tools

// Package tools pins the binaries built for the k8s test cluster.
package tools

import (
	_ "go.etcd.io/etcd/server/v3"
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
)
