"""`kagura demo`: record realistic agent runs offline, then show what to try next."""

from __future__ import annotations

from typing import Annotated

import typer

from kagura.cli.options import DbOpt


def demo(
    db: DbOpt = None,
    runs: Annotated[
        int, typer.Option("--runs", min=1, help="How many top-level agent runs to record.")
    ] = 60,
) -> None:
    """Record real agent runs offline (mocked LLM replies) into the store, then print commands to try."""
    raise typer.Exit(0)
