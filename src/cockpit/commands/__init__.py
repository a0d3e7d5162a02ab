"""The headless commands behind `cockpit COMMAND`: each takes parsed args, returns an exit code."""
