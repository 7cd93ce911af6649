"""The HTML report: one self-contained page of cost, latency, regressions, errors, health and traces.

`collect(store, ...)` asks the store's catalogue for the numbers (plain dicts, no
formatting); `render_html(data)` turns them into one HTML file whose styles, script
and data are inline, so it opens from disk with no server and no network. Tables are
written by the template (Jinja2, autoescaped); charts and trace waterfalls are drawn
in the browser from the embedded JSON, with text set through `textContent` only.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import time
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore

# Bounds of the embedded traces: the page stays small however busy the store is.
DEFAULT_TRACES = 50
MAX_TRACES = 500
MAX_RUNS_PER_TRACE = 200
MAX_EVENTS_PER_TRACE = 1000
MAX_TEXT = 2000  # characters of one argument, error or event field kept in the page
# The newest runs scanned for the traces they belong to (a trace's runs are often adjacent).
RUNS_SCANNED_PER_TRACE = 8
# Small multiples of latency over time: the agents with the most runs.
MAX_LATENCY_AGENTS = 12
MAX_ERROR_GROUPS = 20
# Top sessions and users by cost.
MAX_TOP = 10


# --- the data ----------------------------------------------------------------------


def collect(
    store: EventStore,
    *,
    since: float | None,
    until: float | None = None,
    agent: str | None = None,
    session: str | None = None,
    user: str | None = None,
    tag: str | None = None,
    traces: int = DEFAULT_TRACES,
    now: float | None = None,
) -> dict[str, Any]:
    """Everything the page shows, as JSON-able dicts from the store's catalogue (sql/ files).

    Windowed sections read runs started in [since, until); health and regressions
    judge as of `until` (or now) with their usual windows. `session`, `user` and `tag`
    narrow every section to the matching runs (EventStore.where).
    """
    now = time.time() if now is None else now
    if session is not None or user is not None or tag is not None:
        store = store.where(session_id=session, user_id=user, tag=tag)
    at = until if until is not None else now
    window = {"agent": agent, "since": since, "until": until}
    by_date = store.run("cost_by_date", **window).rows()
    by_agent = store.run("cost_by_agent", **window).rows()
    overall = store.latency_percentiles(agent, since, until).rows()
    per_day = store.latency_percentiles(agent, since, until, per_day=True).rows()
    busiest = [
        r["agent_name"] for r in sorted(overall, key=lambda r: (-r["runs"], r["agent_name"]))
    ]
    shown = set(busiest[:MAX_LATENCY_AGENTS])
    runs, embedded = _recent_traces(store, agent, since, until, traces, now)
    data = {
        "generated_at": now,
        "window": {
            "since": since,
            "until": until,
            "agent": agent,
            "session": session,
            "user": user,
            "tag": tag,
        },
        "summary": store.get_summary_stats(agent, since, until=until),
        "cost_by_date": by_date,
        "cost_by_agent": by_agent,
        "cost_by_model": store.cost_by_model(since, agent, until=until).rows(),
        "latency": overall,
        "latency_by_day": [r for r in per_day if r["agent_name"] in shown],
        "latency_agents_left_out": max(0, len(busiest) - MAX_LATENCY_AGENTS),
        "regressions": store.regressions(agent, now=at).rows(),
        "health": store.agent_health(agent, now=at).rows(),
        "errors": store.error_groups(agent, since, until, limit=MAX_ERROR_GROUPS).rows(),
        "scores": store.score_summary("agent", since, agent, until=until).rows(),
        "sessions": _top(store.run("cost_by_session", **window).rows(), "session_id"),
        "users": _top(store.run("cost_by_user", **window).rows(), "user_id"),
        "runs": runs,
        "traces": embedded,
        "limits": {
            "traces": traces,
            "runs_per_trace": MAX_RUNS_PER_TRACE,
            "events_per_trace": MAX_EVENTS_PER_TRACE,
            "text": MAX_TEXT,
            "latency_agents": MAX_LATENCY_AGENTS,
            "error_groups": MAX_ERROR_GROUPS,
            "top": MAX_TOP,
        },
    }
    return plain(data)


def _top(rows: list[dict[str, Any]], key: str) -> dict[str, Any]:
    """The MAX_TOP costliest rows that have a `key` (a session or user), and what the rest add up to."""
    named = [r for r in rows if r[key] is not None]
    unnamed = next((r for r in rows if r[key] is None), None)
    return {
        "top": named[:MAX_TOP],
        "others": len(named) - len(named[:MAX_TOP]),
        "others_cost": sum(r["cost"] for r in named[MAX_TOP:]),
        "none": unnamed,  # the runs that carry no session (or user), as one row
    }


def _recent_traces(
    store: EventStore,
    agent: str | None,
    since: float | None,
    until: float | None,
    wanted: int,
    now: float,
) -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The newest `wanted` traces of the window: one table row each, and each trace's runs and events."""
    if wanted <= 0:
        return [], {}
    if agent is None:
        found = _newest_traces(store, since, until, wanted)
    else:
        # The agent may run nested in traces rooted elsewhere: those of its newest runs, one by one.
        newest = store.get_executions(
            agent, since=since, until=until, limit=wanted * RUNS_SCANNED_PER_TRACE
        )
        order = list(dict.fromkeys(run["trace_id"] for run in newest))[:wanted]
        found = [(trace_id, store.get_trace(trace_id)) for trace_id in order]
    rows, traces = [], {}
    for trace_id, runs in found:
        if not runs:
            continue
        root = next((r for r in runs if r["parent_id"] is None), runs[0])
        for run in runs[:MAX_RUNS_PER_TRACE]:
            run.setdefault("scores", store.get_scores(run["id"]))
        traces[trace_id] = _trace(runs, now)
        metrics = root["metrics"]
        rows.append(
            {
                "trace_id": trace_id,
                "id": root["id"],
                "agent_name": root["agent_name"],
                "status": root["status"],
                "started_at": root["started_at"],
                "duration": root["duration"],
                "cost": metrics.get("total_cost"),
                "unpriced_calls": metrics.get("unpriced_calls") or 0,
                "tokens": metrics.get("total_tokens"),
                "llm_calls": metrics.get("llm_calls"),
                "runs": len(runs),
                "session_id": root.get("session_id"),
                "user_id": root.get("user_id"),
                "error": _cut(root["error"]),
            }
        )
    return rows, traces


def _newest_traces(
    store: EventStore, since: float | None, until: float | None, wanted: int
) -> list[tuple[str, list[dict[str, Any]]]]:
    """(trace id, its runs oldest first, each with its events) of the newest `wanted` top-level runs.

    Three queries instead of two per trace: the newest roots; every run started since the
    oldest of them (a trace's runs start while its root runs, so all of theirs are among
    these); then the events of the runs kept, in one list.
    """
    from kagura.observability.store import rows as shapes

    roots = store.get_executions(since=since, until=until, limit=wanted, roots_only=True)
    if not roots:
        return []
    start = min(r["started_at"] for r in roots)
    wanted_ids = {r["trace_id"] for r in roots}
    by_trace: dict[str, list[dict[str, Any]]] = {}
    for run in store.get_executions(since=start, limit=wanted * MAX_RUNS_PER_TRACE * 2):
        if run["trace_id"] in wanted_ids:
            by_trace.setdefault(run["trace_id"], []).append(run)
    runs = [run for trace in by_trace.values() for run in trace]
    events: dict[str, list[dict[str, Any]]] = {}
    for event in store.run(
        "execution_events", ids=[r["id"] for r in runs], since=start, until=None, type=None
    ).rows():
        events.setdefault(event["execution_id"], []).append(shapes.event_dict(event))
    for run in runs:
        run["events"] = events.get(run["id"], [])
    return [
        (
            root["trace_id"],
            sorted(by_trace[root["trace_id"]], key=lambda r: (r["started_at"], r["id"])),
        )
        for root in roots
        if root["trace_id"] in by_trace
    ]


def _trace(runs: list[dict[str, Any]], now: float) -> dict[str, Any]:
    """One trace for the waterfall: runs (parents before children) with their events, cut to the bounds."""
    kept_runs = runs[:MAX_RUNS_PER_TRACE]
    budget = MAX_EVENTS_PER_TRACE
    out_runs, events_left_out = [], 0
    for run in kept_runs:
        events = run.get("events") or []
        kept = events[: max(0, budget)]
        budget -= len(kept)
        events_left_out += len(events) - len(kept)
        metrics = run["metrics"]
        out_runs.append(
            {
                "id": run["id"],
                "parent_id": run["parent_id"],
                "agent_name": run["agent_name"],
                "status": run["status"],
                "started_at": run["started_at"],
                "duration": run["duration"],
                "model": run.get("model"),
                "error_type": run["error_type"],
                "error": _cut(run["error"]),
                "kwargs": _cut_json(run["kwargs"]),
                "session_id": run.get("session_id"),
                "user_id": run.get("user_id"),
                "tags": _cut_json(run.get("tags")),
                "metadata": _cut_json(run.get("metadata")),
                "cost": metrics.get("total_cost"),
                "unpriced_calls": metrics.get("unpriced_calls") or 0,
                "tokens": metrics.get("total_tokens"),
                "events": [_event(e) for e in kept],
                "scores": [
                    {k: score.get(k) for k in ("name", "kind", "value", "comment")}
                    for score in run.get("scores") or []
                ],
            }
        )
    return {
        "runs": out_runs,
        "runs_left_out": len(runs) - len(kept_runs),
        "events_left_out": events_left_out,
    }


_EVENT_DATA_SKIP = {
    "model",
    "tool_name",
    "operation",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "cost",
    "duration",
    "status",
    "error",
}


def _event(event: dict[str, Any]) -> dict[str, Any]:
    data = {k: v for k, v in (event.get("data") or {}).items() if k not in _EVENT_DATA_SKIP}
    return {
        "type": event["type"],
        "name": event["name"],
        "started_at": event["timestamp"],
        "duration": event["duration"],
        "tokens": event["total_tokens"],
        "cost": event["cost"],
        "status": event["status"],
        "error": _cut(event["error"]),
        "data": _cut_json(data) if data else None,
    }


def _cut(text: Any) -> Any:
    """Text cut at MAX_TEXT characters, saying how much was left out."""
    if not isinstance(text, str) or len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"… [{len(text) - MAX_TEXT:,} more characters]"


def _cut_json(value: Any) -> str | None:
    """A value as indented JSON text, cut at MAX_TEXT characters; None when empty."""
    if value in (None, {}, []):
        return None
    return _cut(json.dumps(value, indent=1, ensure_ascii=False, default=str, sort_keys=True))


def plain(value: Any) -> Any:
    """`value` as strict JSON: dates as ISO text, NaN/inf as None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


# --- the page ------------------------------------------------------------------------

_ASSETS = Path(__file__).with_name("assets")


@cache
def _asset(name: str) -> str:
    """The text of a file of assets/ that the page inlines."""
    text = (_ASSETS / name).read_text(encoding="utf-8")
    # Inline code ends at the first "</" + tag name; the assets are ours, so this never fires.
    if "</script" in text.lower() or "</style" in text.lower():
        raise ValueError(f"asset {name} holds a closing tag and cannot be inlined")
    return text


def script_json(value: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it or start markup."""
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"


def render_html(data: dict[str, Any]) -> str:
    """The report page for `collect()`'s data: one HTML document, nothing to fetch."""
    from jinja2 import Environment, FunctionLoader, select_autoescape
    from markupsafe import Markup

    from kagura.observability.render.formatting import (
        fmt_cost,
        fmt_datetime,
        fmt_duration,
        fmt_money,
        fmt_tokens,
    )

    env = Environment(
        loader=FunctionLoader(lambda name: (_ASSETS / name).read_text(encoding="utf-8")),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        money=fmt_money,
        cost=fmt_cost,
        duration=fmt_duration,
        tokens=fmt_tokens,
        when=fmt_datetime,
        rate=lambda v: "-" if v is None else f"{100 * v:.1f}%",
        ratio=lambda v: "-" if v is None else f"x{v:.2f}",
    )
    style, script = _asset("report.css"), _asset("report.js")
    # The page runs its own script and style only: an injected handler would be refused.
    csp = (
        f"default-src 'none'; script-src {_csp_hash(script)}; style-src {_csp_hash(style)}; "
        "img-src data:; base-uri 'none'; form-action 'none'"
    )
    return env.get_template("report.html.j2").render(
        data=data,
        data_json=Markup(script_json(data)),
        style=Markup(style),
        script=Markup(script),
        csp=csp,
        title=_title(data),
        traces_size=len(script_json(data["traces"]).encode()),
    )


def _title(data: dict[str, Any]) -> str:
    agent = data["window"]["agent"]
    return "Kagura report" + (f": {agent}" if agent else "")
