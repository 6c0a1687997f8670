"""selfheal.recovery."""
