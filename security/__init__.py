"""Cross-cutting protections: API and login throttling, upload limits."""
