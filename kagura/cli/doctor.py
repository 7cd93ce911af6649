"""`kagura monitor doctor`: checks of the telemetry store (filled in with the doctor)."""

from __future__ import annotations

import typer


def register(monitor: typer.Typer) -> None:
    """Add the doctor command to the `monitor` group (none yet)."""
