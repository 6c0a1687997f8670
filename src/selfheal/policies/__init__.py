"""Resilience policies: retry, circuit breaker, timeout, bulkhead, fallback and the pipeline."""

from selfheal.policies._base import Policy

__all__ = ["Policy"]
