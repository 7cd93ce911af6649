"""The renderings of scores: a run's scores in `trace`, the `monitor scores` table, score drops."""

from __future__ import annotations

from typing import Any

from rich.panel import Panel
from rich.text import Text

from kagura.observability.render.tables import Col, FitTable, panel, ruled


def fmt_score(value: Any, kind: str | None = None) -> str:
    """A score's value as shown: true/false, a number with up to 4 digits, or the label."""
    if isinstance(value, bool) or kind == "boolean":
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return f"{value:.4g}"
    return str(value)


def render_run_scores(scores: list[dict[str, Any]]) -> Text:
    """The "Scores:" lines of a trace, newest of each name last (append-only: all are kept)."""
    text = Text("Scores:\n", style="bold")
    for s in scores:
        text.append(f"  {s['name']} = {fmt_score(s['value'], s.get('kind'))}")
        if s.get("comment"):
            text.append(f"  ({s['comment']})", style="dim")
        text.append("\n")
    return text


def render_score_summary(rows: list[dict[str, Any]], group_by: str = "agent") -> Panel:
    """The "Scores by Agent" (model, date) panel: one row per score name and group."""
    table = FitTable(
        [
            Col("Score", "text", keep=90, min_width=6, max_width=30),
            Col(group_by.capitalize(), "text", keep=80, min_width=6, max_width=32),
            Col("Runs", "number", keep=70),
            Col("Mean", "number", keep=60),
            Col("Min", "number", keep=30),
            Col("Max", "number", keep=30),
            Col("Top label", "text", keep=40, min_width=6, max_width=24),
        ],
        make=ruled,
        header_row=True,
    )
    for r in rows:
        table.add_row(
            r["name"],
            str(r["group"]) if r["group"] is not None else "?",
            f"{r['scores']:,}",
            fmt_score(r["mean"]) if r["mean"] is not None else "-",
            fmt_score(r["min"]) if r["min"] is not None else "-",
            fmt_score(r["max"]) if r["max"] is not None else "-",
            r["top_label"] or "-",
        )
    return panel(table, f"Scores by {group_by.capitalize()}")


def render_score_drops(rows: list[dict[str, Any]], window: str) -> Panel:
    """The "Scores that dropped" panel of `regressions --scores`."""
    table = FitTable(
        [
            Col("Agent", "text", keep=90, min_width=6, max_width=32),
            Col("Score", "text", keep=90, min_width=6, max_width=30),
            Col("Baseline", "number", keep=60),
            Col("Recent", "number", keep=60),
            Col("Drop", "number", keep=80),
            Col("Runs", "number", keep=30),
        ],
        make=ruled,
        header_row=True,
    )
    for r in rows:
        table.add_row(
            r["agent_name"],
            r["name"],
            fmt_score(r["baseline_mean"]),
            fmt_score(r["recent_mean"]),
            Text(f"-{r['drop']:.4g}", style="red"),
            f"{r['baseline_scores']:,} / {r['recent_scores']:,}",
        )
    return panel(table, f"Scores that dropped ({window})")
