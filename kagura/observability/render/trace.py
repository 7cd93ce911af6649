"""One run's trace: its nested runs and their events as a tree on a timeline."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from kagura.observability.render.formatting import (
    STATUS_LOOK,
    fmt_cost,
    fmt_datetime,
    fmt_duration,
    fmt_money,
    fmt_tokens,
    metric,
    short_id,
    shorten,
    status_text,
)

# --- traces -----------------------------------------------------------------------


def _event_label(event: dict[str, Any]) -> Text:
    """One event of the timeline without its offset."""
    kind = event.get("type")
    data = event.get("data") or {}
    name = event.get("name") or data.get("model") or data.get("tool_name") or data.get("operation")
    duration = event.get("duration")
    failed = event.get("status") in ("error", "failed") or event.get("error")
    if kind == "llm_call":
        parts = []
        if event.get("total_tokens") is not None:
            parts.append(f"{fmt_tokens(event['total_tokens'])} tokens")
        parts.append(fmt_money(event.get("cost"), unknown="price unknown"))
        parts.append(fmt_duration(duration))
        text = Text(f"LLM Call ({name or '?'}) - " + ", ".join(parts))
    elif kind == "tool_call":
        text = Text(f"Tool Call ({name or '?'}) - {fmt_duration(duration)}")
    elif kind == "memory_operation":
        text = Text(f"Memory Op ({name or '?'}) - {fmt_duration(duration)}")
    elif kind == "output":
        text = Text(f"Output - {shorten(data.get('content'), 100)}")
    else:
        label = f"Event ({name})" if name else f"Event ({kind})"
        extra = {k: v for k, v in data.items() if k not in ("name",)}
        text = Text(label + (f" - {shorten(extra, 60)}" if extra else ""))
    if failed:
        text.append(f" ✗ {shorten(event.get('error') or 'failed', 80)}", style="red")
    # Captured content (opt-in), shortened: `trace --json` and the Python API have it whole.
    for key, label in (("prompt", "prompt"), ("reply", "reply"), ("result", "result")):
        if isinstance(data.get(key), str):
            text.append(
                f"\n    {label}: {shorten(_last_message(data[key]) if key == 'prompt' else data[key], 100)}",
                style="dim",
            )
    return text


def _last_message(prompt: str) -> str:
    """The last message's text of a captured prompt (JSON list of messages), else the text."""
    import json

    try:
        messages = json.loads(prompt)
        return str(messages[-1].get("content") or "")
    except (ValueError, TypeError, AttributeError, IndexError, KeyError):
        return prompt


def _offset(start: float | None, origin: float) -> str:
    return f"[{max(0.0, (start or origin) - origin):.2f}s]"


def _end_line(execution: dict[str, Any], origin: float, now: float) -> Text:
    status = execution.get("status")
    ended = execution.get("ended_at")
    if status == "running" or ended is None:
        elapsed = max(0.0, now - execution["started_at"])
        return Text(
            f"{_offset(now, origin)} still running ({fmt_duration(elapsed)} so far)", style="yellow"
        )
    if status == "completed":
        return Text(f"{_offset(ended, origin)} Completion", style="green")
    error = execution.get("error") or ""
    kind = execution.get("error_type")
    what = f"{kind}: {error}" if kind and not error.startswith(kind) else error
    label = STATUS_LOOK.get(status or "", (str(status).upper(), "red"))[0]
    return Text(
        f"{_offset(ended, origin)} {label}" + (f": {shorten(what, 72)}" if what else ""),
        style="red",
    )


def _add_timeline(
    node: Tree,
    execution: dict[str, Any],
    children: dict[str, list[dict]],
    origin: float,
    now: float,
) -> None:
    """Events and child runs of `execution`, in time order, then its end line."""
    items: list[tuple[float, int, Any]] = []
    for event in execution.get("events") or []:
        items.append((event.get("timestamp") or execution["started_at"], 0, event))
    for child in children.get(execution["id"], []):
        items.append((child["started_at"], 1, child))
    items.sort(key=lambda item: (item[0], item[1]))
    for start, is_child, item in items:
        if is_child:
            label = Text(f"{_offset(start, origin)} ▶ ")
            label.append(item.get("agent_name") or "?", style="bold")
            label.append(f" ({short_id(item['id'])}) ")
            label.append_text(status_text(item.get("status")))
            label.append(
                f" {fmt_duration(item.get('duration'))}, {fmt_cost(metric(item, 'total_cost'), metric(item, 'unpriced_calls'))}"
            )
            _add_timeline(node.add(label), item, children, origin, now)
        else:
            label = Text(f"{_offset(start, origin)} ")
            label.append_text(_event_label(item))
            node.add(label)
    node.add(_end_line(execution, origin, now))


def nest_trace(execution: dict[str, Any], trace: list[dict[str, Any]]) -> dict[str, Any]:
    """`execution` with "children" holding its child runs from `trace`, each with its events and children."""
    children: dict[str, list[dict]] = {}
    for run in trace:
        if run.get("parent_id"):
            children.setdefault(run["parent_id"], []).append(run)

    def nested(run: dict[str, Any], seen: frozenset[str]) -> dict[str, Any]:
        kids = [c for c in children.get(run["id"], []) if c["id"] not in seen]
        return {**run, "children": [nested(c, seen | {c["id"]}) for c in kids]}

    if not trace:
        return execution
    return nested(execution, frozenset({execution["id"]}))


def _descendants(root: str, children: dict[str, list[dict]]) -> list[dict]:
    """Every run nested under `root`, depth first."""
    found = []
    for child in children.get(root, []):
        found.append(child)
        found.extend(_descendants(child["id"], children))
    return found


def render_trace(
    execution: dict[str, Any], trace: list[dict[str, Any]] | None = None, now: float | None = None
) -> Group:
    """The trace of one execution: info, metrics, and its timeline with nested runs as subtrees.

    `trace` (from `get_trace`) supplies the events of nested runs; without it the
    execution's own "children" are shown without their events.
    """
    now = time.time() if now is None else now
    origin = execution["started_at"]
    title = Text("📝 Execution Trace: ", style="bold")
    title.append(f"{execution.get('agent_name')} ({execution['id']})", style="bold")

    info = Tree("Execution Info", guide_style="dim")
    info.add(f"Started: {fmt_datetime(origin)}")
    info.add(Text("Status: ").append_text(status_text(execution.get("status"))))
    duration = execution.get("duration")
    if execution.get("status") == "running":
        info.add(Text(f"Duration: {fmt_duration(max(0.0, now - origin))} so far", style="yellow"))
    else:
        info.add(f"Duration: {fmt_duration(duration)}")
    if execution.get("model"):
        info.add(f"Model: {execution['model']}")
    if execution.get("error") or execution.get("error_type"):
        error = execution.get("error") or ""
        kind = execution.get("error_type")
        what = f"{kind}: {error}" if kind and not error.startswith(kind) else error
        info.add(Text(f"Error: {shorten(what, 200)}", style="red"))
    if execution.get("parent_id"):
        info.add(f"Parent: {execution['parent_id']}")
    if execution.get("trace_id") and execution.get("trace_id") != execution["id"]:
        info.add(f"Trace: {execution['trace_id']}")
    if execution.get("kwargs"):
        info.add(f"Inputs: {shorten(execution['kwargs'], 100)}")
    if execution.get("tags"):
        info.add(f"Tags: {shorten(execution['tags'], 100)}")

    metrics = Tree("Metrics", guide_style="dim")
    values = execution.get("metrics") or {}
    metrics.add(f"total_cost: {fmt_money(values.get('total_cost'))}")
    metrics.add(f"total_tokens: {fmt_tokens(values.get('total_tokens') or 0)}")
    metrics.add(f"llm_calls: {values.get('llm_calls') or 0}")
    metrics.add(f"tool_calls: {values.get('tool_calls') or 0}")
    if values.get("unpriced_calls"):
        metrics.add(
            Text(f"unpriced_calls: {values['unpriced_calls']} (no known price)", style="yellow")
        )
    # cost_complete is what unpriced_calls already says
    shown = {
        "total_cost",
        "total_tokens",
        "llm_calls",
        "tool_calls",
        "unpriced_calls",
        "cost_complete",
    }
    for key, value in values.items():
        if (
            key not in shown
            and value not in (None, 0)
            and key not in ("prompt_tokens", "completion_tokens")
        ):
            metrics.add(f"{key}: {shorten(value, 60)}")

    children: dict[str, list[dict]] = {}
    if trace:
        for run in trace:
            if run.get("parent_id"):
                children.setdefault(run["parent_id"], []).append(run)
    else:
        children[execution["id"]] = list(execution.get("children") or [])
    nested = _descendants(execution["id"], children)
    if nested:
        runs = [execution, *nested]
        costs = [metric(r, "total_cost") for r in runs]
        known = [c for c in costs if c is not None]
        total = fmt_money(sum(known)) + ("+" if len(known) < len(costs) else "")
        tokens = sum(metric(r, "total_tokens") or 0 for r in runs)
        metrics.add(
            f"including {len(nested)} nested run{'s' if len(nested) != 1 else ''}: {total}, {fmt_tokens(tokens)} tokens"
        )
    own_events = len(execution.get("events") or [])
    timeline = Tree(
        f"Events Timeline ({own_events} event{'s' if own_events != 1 else ''})", guide_style="dim"
    )
    _add_timeline(timeline, execution, children, origin, now)
    return Group(title, Text(""), info, Text(""), metrics, Text(""), timeline)
