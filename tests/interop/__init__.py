"""Interop tests: Dapr's own, unmodified ``daprd`` against daprplane's control plane."""
