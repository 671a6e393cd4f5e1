"""The Dapr operator component."""
