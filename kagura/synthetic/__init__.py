"""Synthetic telemetry: realistic runs for notebooks, benchmarks, tests and trying the store at size (not loaded at runtime)."""
