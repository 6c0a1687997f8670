"""selfheal.store."""
