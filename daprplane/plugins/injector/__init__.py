"""The Dapr sidecar injector component."""
