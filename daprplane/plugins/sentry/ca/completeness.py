"""All three parts of the X.509 bundle, or none: when sentry may generate a CA.

The root certificate, issuer certificate and issuer key are generated together and only when
none of them is stored. Dapr regenerates when any one is missing, which overwrites the parts
that survived (often an operator's own root, or a root every sidecar already trusts). Here a
partial set stops sentry with one message that names what is missing and how to recover. A part
that is stored but empty is not missing: it is invalid, and says so.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from daprplane.plugins.sentry.ca.store import CredentialsError

RECOVERY = "remove all three to let sentry generate a new CA, or restore the missing ones"


def _listed(names: Sequence[str]) -> str:
    return ", ".join(names)


def require_all_or_none(
    parts: Mapping[str, bytes | None],
    *,
    where: str = "",
    interrupted_write: bool = False,
) -> bool:
    """``True`` when every part is stored and non-empty, ``False`` when none is stored.

    ``parts`` maps each part's name as the operator knows it (a path, a Secret key) to its
    bytes, ``None`` when it is not stored. ``where`` (" in secret ns/name") and
    ``interrupted_write`` (temporary files of an interrupted write were just removed) only
    sharpen the message. Raises :class:`CredentialsError` otherwise.
    """
    missing = [name for name, data in parts.items() if data is None]
    empty = [name for name, data in parts.items() if data is not None and not data]
    if len(missing) == len(parts):
        return False
    if missing:
        found = [
            f"{name} (empty)" if name in empty else name
            for name, data in parts.items()
            if data is not None
        ]
        cause = ""
        if interrupted_write:
            cause = "; an interrupted write left temporary files, now removed"
        raise CredentialsError(
            f"incomplete CA{where}: missing {_listed(missing)} (found {_listed(found)}{cause}); "
            f"{RECOVERY}"
        )
    if empty:
        raise CredentialsError(
            f"invalid CA{where}: {_listed(empty)} {'is' if len(empty) == 1 else 'are'} empty; "
            "restore the contents, or remove all three to let sentry generate a new CA"
        )
    return True
