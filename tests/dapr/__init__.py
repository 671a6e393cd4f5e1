"""Dapr's own binaries (daprd and the control plane), built for benchmarks and interop tests."""
