"""Free loopback ports for the throwaway servers the tests start (the demo's own helper)."""

from cockpit.demo.servers import free_port

__all__ = ["free_port"]
