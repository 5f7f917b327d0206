"""Small shared helpers: atomic output, seeding, device choice, provenance."""
