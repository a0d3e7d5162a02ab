"""The headless commands behind `cockpit COMMAND`; each takes parsed args and returns an exit code."""
