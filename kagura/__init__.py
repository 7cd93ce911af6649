"""Kagura: LLM agents with local-first, analytics-first telemetry.

Importing this package stays light: rich, typer, litellm and polars load only
where they are used (the first agent call, the CLI, a notebook frame).
"""

__version__ = "0.1.0"

from kagura.agent import agent, tool  # noqa: E402
from kagura.observability.recording.context import context  # noqa: E402

__all__ = ["__version__", "agent", "context", "tool"]
