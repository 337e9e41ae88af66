"""The UI's login: Gradio's `auth` check over the users of the settings, in constant time."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Callable


def login_check(logins: dict[str, str]) -> Callable[[str, str], bool]:
    """A check for Gradio's `auth=`: true only for a known user with the right password."""
    encoded = {user: password.encode() for user, password in logins.items()}

    def check(user: str, password: str) -> bool:
        """Compare in constant time, even for an unknown user."""
        expected = encoded.get(user, b"\0" * 32)
        return hmac.compare_digest(expected, password.encode()) and user in encoded

    return check


def is_loopback(host: str) -> bool:
    """Whether the UI listens only on this machine (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
