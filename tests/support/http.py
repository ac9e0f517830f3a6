"""What the HTTP tests share: the admin token they serve with, and a free loopback port."""

from __future__ import annotations

import socket

TOKEN = "test-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
