"""The one error of the patch builder: its message becomes the admission's ``status.message``."""


class PatchError(Exception):
    """The pod cannot be injected; the API server rejects it with this message."""
