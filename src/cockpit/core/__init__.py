"""The UI-free core: config, rules, metrics, rollout state, audit. Never imports textual or rich."""
