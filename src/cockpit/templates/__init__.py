"""Files shipped with the package: `starter.toml`, the plan `cockpit init` writes."""
