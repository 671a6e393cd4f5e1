"""Errors shared by both ring implementations (the Rust extension raises these same classes)."""


class NoHostsError(LookupError):
    """The ring has no hosts. The message is Dapr's ``ErrNoHosts`` text, "no hosts added"."""
