"""Chaos engineering: faults to inject and experiments that prove the service heals.

The experiment runner lives in `selfheal.chaos.experiment`; it needs only the standard
library, except for the HTTP provider (httpx), YAML files (PyYAML) and JSONPath tolerances
(jsonpath-ng), which are imported when an experiment uses them.
"""

__all__: list[str] = []
