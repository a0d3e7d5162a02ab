"""Free loopback ports for the throwaway servers the tests start."""

import socket


def free_port() -> int:
    """A port nothing listens on right now (the server that takes it binds it next)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
