"""Synthetic telemetry: realistic runs for notebooks, benchmarks and tests (not loaded at runtime)."""
