"""Async pollers, one module per source kind; each returns a Reading or a SourceDown."""
