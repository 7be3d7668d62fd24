"""`auditor unread`: how many messages wait for each user while they are offline."""

from __future__ import annotations

from collections.abc import Iterable

from auditor.sources.settings import ConnectionSettings, make_client


def unread_counts(settings: ConnectionSettings, users: Iterable[str]) -> dict[str, int]:
    """Each user's offline message count, in the order given (Easemob allows 100 calls/s)."""
    client = make_client(settings)
    try:
        return {user: client.offline_msg_count(user) for user in users}
    finally:
        client.close()
