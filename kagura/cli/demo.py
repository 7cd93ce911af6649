"""`kagura demo`: record realistic agent runs offline, then say what to try next.

Real `@agent` functions (prompts, tools, memory, a nested agent) run concurrently
against the demo model on 127.0.0.1 (`demo_llm`), so every run, LLM call, tool
call, failure and cost is recorded by the real telemetry path. The runs are
recorded into a scratch store and then moved, trace by trace, to times spread
over the last days (with fresh ids for their new start times) in the target store.
"""

from __future__ import annotations

import os
import random
import time
from collections import Counter as Tally
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from kagura.cli.options import DbOpt, UsageError, console, db_path

# (agent, share of runs, model): a small team of agents with different costs.
AGENTS = (
    ("translator", 14, "gpt-4o-mini"),
    ("chatbot", 12, "gpt-4o-mini"),
    ("researcher", 7, "gpt-4o"),
    ("sentiment", 8, "gpt-4.1-nano"),
    ("email_writer", 5, "gpt-4.1-mini"),
)
TEXTS = (
    "Hello, how are you?",
    "Thank you for your order",
    "The meeting moved to Thursday",
    "Where is the train station?",
    "Your package has shipped",
    "Happy birthday!",
)
LANGUAGES = ("French", "Japanese", "Spanish", "German", "Korean")
MESSAGES = (
    "What can you do?",
    "Remind me what we discussed",
    "How do I reset my password?",
    "Explain recursion like I'm five",
    "Plan a 3-day trip to Kyoto",
)
QUESTIONS = (
    "local-first analytics engines",
    "parquet vs arrow ipc for logs",
    "cost of LLM agents in production",
    "sqlite wal mode concurrency",
    "duckdb window functions",
)
REVIEWS = (
    "The product arrived on time and works great",
    "Support never answered my emails",
    "Decent value, the battery could be better",
    "Absolutely love it, would buy again",
)
CONCURRENCY = 24


def plan(runs: int, seed: int) -> list[tuple[str, str, dict[str, Any]]]:
    """(agent, fate, arguments) for each top-level run, with failures of several kinds."""
    rng = random.Random(seed)
    names = [a[0] for a in AGENTS]
    weights = [a[1] for a in AGENTS]
    items = []
    for _ in range(runs):
        name = rng.choices(names, weights)[0]
        roll = rng.random()
        if name == "sentiment" and roll < 0.2:
            fate = "bad_output"
        elif roll < 0.05:
            fate = "rate_limit"
        elif roll < 0.07:
            fate = "server_error"
        elif roll < 0.085:
            fate = "timeout"
        elif name == "researcher" and roll < 0.3:
            fate = "tool_error"
        else:
            fate = "ok"
        items.append((name, fate, _arguments(rng, name)))
    # Small demos still show a nested run and two kinds of failure.
    if runs >= 3 and not any(n == "researcher" and f == "ok" for n, f, _ in items):
        items[0] = ("researcher", "ok", _arguments(rng, "researcher"))
    if runs >= 5 and not any(f == "rate_limit" for _, f, _ in items):
        items[1] = ("translator", "rate_limit", _arguments(rng, "translator"))
    if runs >= 5 and not any(f == "bad_output" for _, f, _ in items):
        items[2] = ("sentiment", "bad_output", _arguments(rng, "sentiment"))
    return items


def _arguments(rng: random.Random, name: str) -> dict[str, Any]:
    if name == "translator":
        return {"text": rng.choice(TEXTS), "target_lang": rng.choice(LANGUAGES)}
    if name == "chatbot":
        return {"message": rng.choice(MESSAGES)}
    if name == "researcher":
        return {"topic": rng.choice(QUESTIONS)}
    if name == "sentiment":
        return {"review": rng.choice(REVIEWS)}
    return {
        "to": rng.choice(("Aiko", "Ben", "Carla")),
        "subject": rng.choice(("invoice", "launch date", "thanks")),
    }


def build_agent(name: str, model: str, fate: str, url: str, memory: Any) -> Any:
    """A fresh `@agent` for one run, its requests marked with the run's fate for the demo model."""
    import asyncio

    from kagura.agent import agent, tool
    from kagura.cli.demo_llm import TIMEOUT

    options: dict[str, Any] = {
        "model": model,
        "name": name,
        "api_base": url,
        "api_key": "demo-key-not-a-secret",
        "num_retries": 0,
        "timeout": TIMEOUT,
        "extra_headers": {"X-Demo-Fate": fate},
    }
    if name == "translator":

        async def translator(text: str, target_lang: str) -> str:
            """Translate "{{ text }}" to {{ target_lang }}"""

        return agent(**options)(translator)
    if name == "chatbot":

        async def chatbot(message: str) -> str:
            """You are a friendly assistant. Reply to: "{{ message }}" """

        return agent(memory=memory, **options)(chatbot)
    if name == "sentiment":

        async def sentiment(review: str) -> int:
            """Rate the sentiment of this review from 1 (angry) to 5 (delighted): "{{ review }}" """

        return agent(**options)(sentiment)
    if name == "email_writer":

        async def email_writer(to: str, subject: str) -> str:
            """Write a short, warm email to {{ to }} about "{{ subject }}"."""

        return agent(**options)(email_writer)

    @tool
    async def web_search(query: str) -> list[str]:
        """Search the web.

        Args:
            query: what to look for
        """
        await asyncio.sleep(random.uniform(0.1, 0.4))
        return [f"https://example.org/{query.replace(' ', '-')}/{i}" for i in range(3)]

    @tool
    async def fetch_url(url: str) -> str:
        """Download a page.

        Args:
            url: the page to fetch
        """
        await asyncio.sleep(random.uniform(0.05, 0.3))
        if fate == "tool_error":
            raise ConnectionError(f"connection reset while fetching {url}")
        return f"<html><body>Notes about {url}: benchmarks, trade-offs, costs.</body></html>"

    summarizer = agent(
        **{
            **options,
            "model": "gpt-4o-mini",
            "name": "summarizer",
            "extra_headers": {"X-Demo-Fate": "ok"},
        }
    )(_summarizer)

    @tool
    async def summarize_page(text: str) -> str:
        """Summarize a page with the summarizer agent.

        Args:
            text: the page or topic to summarize
        """
        return await summarizer(text=text)

    async def researcher(topic: str) -> str:
        """Research "{{ topic }}" with your tools and report the findings."""

    return agent(tools=[web_search, fetch_url, summarize_page], **options)(researcher)


async def _summarizer(text: str) -> str:
    """Summarize in two sentences: "{{ text }}" """


async def record(items: list[tuple[str, str, dict[str, Any]]], url: str, progress: Any) -> Tally:
    """Run every planned agent call (at most CONCURRENCY at once); return a tally of error types."""
    import asyncio

    from kagura.agent import ConversationMemory

    models = {name: model for name, _, model in AGENTS}
    memory = ConversationMemory(max_messages=12)
    errors: Tally = Tally()
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(name: str, fate: str, arguments: dict[str, Any]) -> None:
        async with gate:
            run = build_agent(name, models[name], fate, url, memory)
            try:
                await run(**arguments)
            except Exception as error:  # a failed run is part of the demo
                errors[type(error).__name__] += 1
            progress.advance()

    await asyncio.gather(*(one(*item) for item in items))
    return errors


def start_times(count: int, days: int, now: float, seed: int) -> list[float]:
    """`count` start times over the last `days` local days, in working hours, denser lately."""
    rng = random.Random(seed + 1)
    midnight = datetime.fromtimestamp(now).replace(hour=0, minute=0, second=0, microsecond=0)
    weights = [max(1.0, 3.0 - 0.4 * d) for d in range(days)]
    times = []
    for i in range(count):
        if i < min(4, count):  # a few in the last minutes, so the live view has fresh rows
            times.append(now - rng.uniform(20, 900))
            continue
        day = rng.choices(range(days), weights)[0]
        start = midnight - timedelta(days=day)
        moment = (start + timedelta(hours=rng.uniform(8, 19))).timestamp()
        if moment > now - 60:  # today, before the working day: earlier today instead
            moment = now - rng.uniform(60, max(120, now - midnight.timestamp()))
        times.append(moment)
    return sorted(times)


def move(
    executions: list[dict], events: list[dict], targets: list[float]
) -> list[tuple[dict, list[dict]]]:
    """The recorded rows moved trace by trace to `targets` (oldest root to oldest target), with fresh ids."""
    from kagura.observability.store.rows import new_execution_id

    roots = sorted((r for r in executions if r["parent_id"] is None), key=lambda r: r["started_at"])
    offset = {
        root["trace_id"]: target - root["started_at"]
        for root, target in zip(roots, sorted(targets), strict=False)
    }
    new_id = {}
    for row in sorted(executions, key=lambda r: r["started_at"]):
        new_id[row["id"]] = new_execution_id(row["started_at"] + offset.get(row["trace_id"], 0.0))
    trace_of = {row["id"]: row["trace_id"] for row in executions}
    by_run: dict[str, list[dict]] = {}
    for event in events:
        shift = offset.get(trace_of.get(event["execution_id"], ""), 0.0)
        moved = dict(
            event,
            execution_id=new_id[event["execution_id"]],
            started_at=event["started_at"] + shift,
        )
        by_run.setdefault(moved["execution_id"], []).append(moved)
    pairs = []
    for row in executions:
        shift = offset.get(row["trace_id"], 0.0)
        moved = dict(
            row,
            id=new_id[row["id"]],
            trace_id=new_id.get(row["trace_id"], row["trace_id"]),
            parent_id=new_id.get(row["parent_id"]) if row["parent_id"] else None,
            started_at=row["started_at"] + shift,
            ended_at=row["ended_at"] + shift if row["ended_at"] is not None else None,
        )
        pairs.append((moved, sorted(by_run.get(moved["id"], []), key=lambda e: e["seq"])))
    return pairs


def demo(
    db: DbOpt = None,
    runs: Annotated[
        int,
        typer.Option(
            "--runs",
            min=1,
            max=1_000_000_000,
            help="How many top-level agent runs to record (at most 10,000; with --synthetic, up to 1e9).",
        ),
    ] = 60,
    days: Annotated[
        int, typer.Option("--days", min=1, max=365, help="Spread the runs over this many days.")
    ] = 7,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the scenario (same seed, same plan).")
    ] = 7,
    synthetic: Annotated[
        bool,
        typer.Option(
            "--synthetic",
            help="Write synthetic runs (3 events each) straight into the lake instead: millions in seconds.",
        ),
    ] = False,
) -> None:
    """Record real agent runs offline (a local demo model, real @agent path), then print commands to try."""
    import asyncio
    import tempfile

    from kagura import config

    if synthetic:
        from kagura.cli.demo_synthetic import demo_synthetic

        demo_synthetic(db, runs, days, seed)
        return
    if runs > 10_000:
        raise UsageError(
            f"--runs {runs:,} is more than the 10,000 real runs a demo records; add --synthetic for more"
        )

    if not config.telemetry_enabled():
        raise UsageError("telemetry is off (KAGURA_TELEMETRY=0): unset it to record the demo")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # never fetch prices
    os.environ["NO_PROXY"] = ",".join(
        filter(None, (os.environ.get("NO_PROXY"), "127.0.0.1", "localhost"))
    )
    target = db_path(db)
    out = console()
    items = plan(runs, seed)
    # Said first: loading litellm takes a few seconds before anything else shows.
    out.print(f"Recording {runs} agent runs against a local demo model (offline, no API key)...")

    import litellm

    from kagura.cli.demo_llm import DemoModel, DemoServer
    from kagura.cli.progress import Counter
    from kagura.observability import EventStore, Telemetry, set_global_telemetry

    litellm.suppress_debug_info = True  # failures are part of the demo: no "Give Feedback" banners

    with tempfile.TemporaryDirectory(prefix="kagura-demo-") as scratch_dir:
        scratch = EventStore(Path(scratch_dir) / "telemetry.db", auto_compact=False)
        telemetry = Telemetry(scratch)
        set_global_telemetry(telemetry)
        try:
            with (
                DemoServer(DemoModel(seed)) as server,
                Counter("Recording agent runs", len(items)) as progress,
            ):
                errors = asyncio.run(record(items, server.url, progress))
            telemetry.collector.flush()
        finally:
            set_global_telemetry(None)
        executions = scratch.run("recent_executions", limit=10_000_000).rows()
        events = scratch.run("execution_events").rows()
        scratch.close()

    now = time.time()
    pairs = move(executions, events, start_times(len(items), days, now, seed))
    store = EventStore(target)
    store.append_many(pairs)
    store.close()
    _summary(out, target, db, items, pairs, errors, days)


def _summary(
    out: Any, target: Path, db: Path | None, items: list, pairs: list, errors: Tally, days: int
) -> None:
    from kagura.observability.render.formatting import fmt_money

    rows = [row for row, _ in pairs]
    failed = sum(1 for r in rows if r["status"] == "failed" and r["parent_id"] is None)
    spent = sum(r["total_cost"] or 0.0 for r in rows)
    agents = len({r["agent_name"] for r in rows})
    out.print(
        f"Recorded {len(items)} agent runs ({len(rows)} executions, {agents} agents) over the last {days} days into {target}"
    )
    kinds = ", ".join(f"{name} {count}" for name, count in errors.most_common())
    out.print(
        f"  {len(items) - failed} completed, {failed} failed"
        + (f" ({kinds})" if kinds else "")
        + f"; {fmt_money(spent)} spent"
    )
    nested = next(
        (
            r
            for r in sorted(rows, key=lambda r: -r["started_at"])
            if r["parent_id"] is None
            and r["agent_name"] == "researcher"
            and r["status"] == "completed"
        ),
        None,
    )
    steps = [
        ("", "live view (Ctrl+C exits)"),
        ("list --status failed", "what went wrong"),
        ("stats", "totals, success rate, p50/p95"),
    ]
    if nested is not None:
        steps.append(
            (f"trace {nested['id'][:21]}", "a researcher run with its tools and a nested agent")
        )
    steps += [
        ("cost", "spend by agent and the monthly estimate"),
        ("cost --group-by date", "spend per day"),
    ]
    try_next(out, db, steps)


def try_next(out: Any, db: Path | None, steps: list[tuple[str, str]]) -> None:
    """Print "Try next:" and the `kagura monitor ARGS` commands of `steps` (with --db when given), each with what it shows."""
    suffix = f" --db {db}" if db is not None else ""
    commands = [
        (" ".join(("kagura monitor", args)).rstrip() + suffix, what) for args, what in steps
    ]
    width = max(len(c) for c, _ in commands)
    out.print("\nTry next:")
    for command, what in commands:
        out.print(f"  {command.ljust(width)}   [dim]# {what}[/dim]")
