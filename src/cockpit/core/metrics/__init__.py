"""Metric storage: series of values per metric name, with staleness."""
