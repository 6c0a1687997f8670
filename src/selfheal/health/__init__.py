"""selfheal.health."""
