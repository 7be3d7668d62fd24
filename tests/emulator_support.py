"""Shared by the emulator tests: the default app's credentials and a bearer token for them."""

from __future__ import annotations

import requests

CREDENTIALS = {
    "grant_type": "client_credentials",
    "client_id": "demo-client",
    "client_secret": "demo-secret",
}


def token_url(emulator) -> str:
    return f"{emulator.base_url}/demo-org/demo-app/token"


def bearer_headers(emulator) -> dict[str, str]:
    """An Authorization header with a fresh token of the default app."""
    token = requests.post(token_url(emulator), json=CREDENTIALS, timeout=10).json()
    return {"Authorization": f"Bearer {token['access_token']}"}
