"""Analytics methods of EventStore, one per SQL file (filled in with the analytics)."""

from __future__ import annotations


class Analytics:
    """Mixed into EventStore: each method is a docstring and one line over sql/NAME.sql."""
