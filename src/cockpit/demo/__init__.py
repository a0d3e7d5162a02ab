"""The embedded demo platform: a farmers-market API with the plan's Phase 3 caching, its own
throwaway Redis and PostgreSQL, a load generator and faults on demand (`cockpit demo`)."""
