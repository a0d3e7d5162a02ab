"""cockpit: a terminal cockpit for running a gradual production rollout."""

__version__ = "0.1.0"
