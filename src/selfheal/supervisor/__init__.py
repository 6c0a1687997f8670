"""selfheal.supervisor."""
