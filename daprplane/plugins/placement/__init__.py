"""The Dapr placement component."""
