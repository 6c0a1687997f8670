"""Benchmark cases, one module per policy; each exports CASES."""
