"""One bearer-token check for every HTTP surface (control API, health details, dashboard)."""

from __future__ import annotations

import hmac

__all__ = ["bearer_matches"]


def bearer_matches(authorization: str | None, token: str | None) -> bool:
    """Return whether an ``Authorization`` header carries ``Bearer <token>``.

    Compared in constant time. No configured token never matches: a surface without a token
    refuses everything that needs one, rather than letting everyone in.

    Args:
        authorization: The request's ``Authorization`` header, if any.
        token: The expected token, or None when none is configured.
    """
    if not token or not authorization:
        return False
    scheme, _, given = authorization.strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode(), token.encode())
