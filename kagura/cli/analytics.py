"""Analytics commands of `kagura monitor` (filled in with the analytics)."""

from __future__ import annotations

import typer


def register(monitor: typer.Typer) -> None:
    """Add the analytics commands to the `monitor` group (none yet)."""
