"""The Dapr sentry component."""
