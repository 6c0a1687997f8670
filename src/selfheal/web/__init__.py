"""selfheal.web."""
