"""A third-party daprplane plugin, installed into the test environment as its own distribution."""
