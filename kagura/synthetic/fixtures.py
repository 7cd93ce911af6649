"""Realistic, deterministic telemetry for tests, notebooks, benchmarks and the demo.

`generate()` yields (execution row, event rows) pairs exactly as the recorder
writes them: about 20 agents, 5 models priced from litellm's bundled price map,
tools, memory operations, nested runs, ~5% failures, 90 days of history.
`generate_arrow()` makes millions of rows as Arrow tables (needs numpy).
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any

from kagura.observability.store import rows as model

DAY = 86400.0

# Model slots -> candidate names in litellm's price map, first match wins, so the
# generator keeps working when the bundled map renames or retires a model.
MODEL_CANDIDATES: dict[str, tuple[str, ...]] = {
    "gpt-4o-mini": ("gpt-4o-mini",),
    "gpt-4o": ("gpt-4o",),
    "claude-sonnet": (
        "claude-3-5-sonnet-20241022",
        "claude-sonnet-4-5-20250929",
        "claude-sonnet-4-5",
    ),
    "claude-haiku": ("claude-3-5-haiku-20241022", "claude-haiku-4-5-20251001", "claude-haiku-4-5"),
    "gemini-flash": (
        "gemini-1.5-flash",
        "gemini-2.0-flash",
        "gemini-2.5-flash",
        "gemini/gemini-2.5-flash",
    ),
}

# A model that no price map knows: its calls have cost None (about 1% of calls).
UNPRICED_MODEL = "local/llama-3.1-8b-instruct"
UNPRICED_SHARE = 0.01

TOOLS = (
    "web_search",
    "calculator",
    "fetch_url",
    "run_sql",
    "read_file",
    "send_email",
    "vector_search",
    "python_exec",
)
MEMORY_OPERATIONS = ("load", "store", "search")

ERROR_TYPES = ("TimeoutError", "RateLimitError", "ValueError", "ConnectionError")
ERROR_WEIGHTS = (0.4, 0.3, 0.2, 0.1)


@dataclass(frozen=True)
class AgentProfile:
    """How one fixture agent behaves: its share of runs, model, timing, calls and children."""

    name: str
    weight: float  # share of root runs (children are extra)
    model: str  # a MODEL_CANDIDATES slot
    median: float  # median seconds of its own work (log-normal)
    sigma: float  # log-normal shape of its duration
    llm_calls: tuple[int, int]  # inclusive range
    tools: tuple[str, ...] = ()
    tool_calls: tuple[int, int] = (0, 0)
    memory: float = 0.0  # probability that a run loads and stores memory
    prompt: int = 400  # median prompt tokens per call
    completion: int = 120  # median completion tokens per call
    failure: float = 0.04  # probability that its own work fails
    children: tuple[tuple[str, float], ...] = ()  # (agent, probability of calling it)
    kwargs: tuple[str, ...] = ("query",)  # argument names


# fmt: off
AGENTS: tuple[AgentProfile, ...] = (
    AgentProfile("chatbot", 16, "gpt-4o-mini", 1.2, 0.5, (1, 2), memory=0.8, prompt=900, completion=180, failure=0.042, kwargs=("message",)),
    AgentProfile("translator", 14, "gpt-4o-mini", 0.5, 0.35, (1, 1), prompt=120, completion=90, failure=0.028, kwargs=("text", "target_lang")),
    AgentProfile("summarizer", 8, "claude-haiku", 1.8, 0.4, (1, 1), prompt=2400, completion=300, failure=0.042, kwargs=("text",)),
    AgentProfile("researcher", 5, "gpt-4o", 4.0, 0.6, (2, 4), ("web_search", "fetch_url"), (1, 4), prompt=1800, completion=400, failure=0.084, children=(("summarizer", 0.6),)),
    AgentProfile("code_reviewer", 4, "claude-sonnet", 3.5, 0.5, (1, 2), ("read_file",), (1, 3), prompt=3000, completion=500, failure=0.07, kwargs=("diff",)),
    AgentProfile("sql_generator", 4, "gpt-4o", 1.6, 0.45, (1, 2), ("run_sql",), (1, 2), prompt=1200, completion=150, failure=0.098, kwargs=("question",)),
    AgentProfile("email_writer", 3, "claude-haiku", 1.4, 0.4, (1, 1), ("send_email",), (0, 1), prompt=500, completion=350, failure=0.028, kwargs=("to", "topic")),
    AgentProfile("sentiment_analyzer", 6, "gemini-flash", 0.35, 0.3, (1, 1), prompt=250, completion=10, failure=0.028, kwargs=("text",)),
    AgentProfile("doc_qa", 5, "gpt-4o-mini", 1.5, 0.5, (1, 2), ("vector_search",), (1, 2), memory=0.3, prompt=2200, completion=200, failure=0.056, kwargs=("question",)),
    AgentProfile("planner", 3, "gpt-4o", 2.2, 0.5, (1, 2), prompt=1500, completion=600, failure=0.056, kwargs=("goal",)),
    AgentProfile("web_scraper", 3, "gemini-flash", 2.5, 0.7, (1, 1), ("fetch_url",), (1, 3), prompt=3500, completion=250, failure=0.112, kwargs=("url",)),
    AgentProfile("data_extractor", 3, "gemini-flash", 0.9, 0.4, (1, 1), prompt=1600, completion=220, failure=0.07, kwargs=("document",)),
    AgentProfile("customer_support", 5, "claude-haiku", 1.6, 0.5, (1, 3), ("vector_search", "send_email"), (0, 2), memory=0.9, prompt=1400, completion=220, failure=0.056, kwargs=("ticket_id", "message")),
    AgentProfile("meeting_notes", 2, "claude-sonnet", 5.0, 0.4, (1, 1), prompt=6000, completion=700, failure=0.042, kwargs=("transcript",)),
    AgentProfile("math_tutor", 2, "gpt-4o-mini", 1.1, 0.5, (1, 2), ("calculator", "python_exec"), (1, 3), memory=0.5, prompt=600, completion=250, failure=0.042, kwargs=("problem",)),
    AgentProfile("orchestrator", 2, "gpt-4o", 1.0, 0.4, (1, 2), memory=0.4, prompt=1000, completion=200, failure=0.042, children=(("planner", 0.9), ("researcher", 0.7), ("summarizer", 0.5)), kwargs=("goal",)),
    AgentProfile("project_a_router", 5, "gpt-4o-mini", 0.3, 0.3, (1, 1), prompt=300, completion=15, failure=0.028, children=(("project_a_classifier", 1.0), ("project_a_responder", 0.9)), kwargs=("request",)),
    AgentProfile("project_a_classifier", 1, "gemini-flash", 0.25, 0.3, (1, 1), prompt=280, completion=8, failure=0.028, kwargs=("text",)),
    AgentProfile("project_a_responder", 1, "claude-haiku", 1.3, 0.45, (1, 2), ("vector_search",), (0, 1), memory=0.6, prompt=1200, completion=260, failure=0.056, kwargs=("request", "label")),
    AgentProfile("project_b_ingest", 3, "gemini-flash", 0.8, 0.5, (1, 1), ("read_file",), (1, 2), prompt=2000, completion=120, failure=0.07, children=(("project_b_tagger", 0.8),), kwargs=("path",)),
    AgentProfile("project_b_tagger", 1, "gpt-4o-mini", 0.4, 0.3, (1, 1), prompt=700, completion=30, failure=0.028, kwargs=("document",)),
)
# fmt: on
AGENTS_BY_NAME = {agent.name: agent for agent in AGENTS}

# Tool timing: median seconds and log-normal shape.
TOOL_TIMING = {
    "web_search": (0.8, 0.5),
    "calculator": (0.002, 0.3),
    "fetch_url": (0.6, 0.8),
    "run_sql": (0.15, 0.9),
    "read_file": (0.01, 0.5),
    "send_email": (0.3, 0.4),
    "vector_search": (0.05, 0.5),
    "python_exec": (0.2, 0.7),
}

HOSTS = ("worker-1", "worker-2", "worker-3", "laptop")
WORDS = (
    "quarterly report",
    "refund policy",
    "hello world",
    "shipping delay",
    "onboarding",
    "invoice 2231",
    "pricing page",
    "api limits",
    "release notes",
    "team offsite",
)
LANGS = ("French", "Japanese", "Spanish", "German", "Korean")


def resolve_models(price_map: dict[str, Any] | None = None) -> dict[str, str]:
    """The litellm model name chosen for each slot of MODEL_CANDIDATES."""
    price_map = litellm_price_map() if price_map is None else price_map
    chosen = {}
    for slot, candidates in MODEL_CANDIDATES.items():
        for name in candidates:
            entry = price_map.get(name) or {}
            if (
                entry.get("input_cost_per_token") is not None
                and entry.get("output_cost_per_token") is not None
            ):
                chosen[slot] = name
                break
        else:
            raise ValueError(
                f"no model of slot {slot!r} has a price in litellm's map; tried {', '.join(candidates)}"
            )
    return chosen


def model_prices(price_map: dict[str, Any] | None = None) -> dict[str, tuple[float, float]]:
    """(input, output) cost per token of each fixture model, from litellm's bundled price map."""
    price_map = litellm_price_map() if price_map is None else price_map
    prices = {}
    for name in resolve_models(price_map).values():
        entry = price_map[name]
        prices[name] = (float(entry["input_cost_per_token"]), float(entry["output_cost_per_token"]))
    if UNPRICED_MODEL in price_map:
        raise ValueError(
            f"{UNPRICED_MODEL!r} now has a price in litellm's map; pick another unpriced model name"
        )
    return prices


def litellm_price_map() -> dict[str, Any]:
    """litellm's bundled price map, read offline."""
    # Without this litellm fetches the map from the internet on import.
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    return litellm.model_cost


def parse_end(end: float | str | None) -> float:
    """`end` as epoch seconds: None is now, a str is an ISO date or datetime (UTC when naive)."""
    if end is None:
        return time.time()
    if isinstance(end, str):
        from datetime import datetime

        try:
            moment = datetime.fromisoformat(end)
        except ValueError:
            raise ValueError(f"end must be epoch seconds or an ISO date, got {end!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    return float(model.finite(end, "end", allow_none=False))


def _check_slowdown(slowdown: dict[str, Any] | None) -> tuple[str, float, float] | None:
    if slowdown is None:
        return None
    unknown = set(slowdown) - {"agent", "factor", "days"}
    if unknown:
        raise ValueError(
            f"unknown slowdown keys: {', '.join(sorted(unknown))}; use agent, factor, days"
        )
    agent = slowdown.get("agent")
    if agent not in AGENTS_BY_NAME:
        raise ValueError(
            f"slowdown agent {agent!r} is not a fixture agent; use one of: {', '.join(AGENTS_BY_NAME)}"
        )
    factor = model.finite(slowdown.get("factor", 1.4), "slowdown factor", allow_none=False)
    days = model.finite(slowdown.get("days", 2), "slowdown days", allow_none=False)
    if factor <= 0 or days <= 0:
        raise ValueError("slowdown factor and days must be positive")
    return agent, factor, days


def _check_common(n: int, days: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ValueError(f"days must be a positive number, got {days!r}")


# --- time of day and day of week -----------------------------------------------

WEEKEND_WEIGHT = 0.3  # a Saturday or Sunday sees 30% of a weekday's runs
BUSY_HOUR = 14.0  # UTC hour around which runs cluster
BUSY_SHARE = 0.8  # the rest are spread evenly over the day


def _day_weights(start: float, end: float) -> list[tuple[float, float]]:
    """(midnight UTC, weight) of each day that overlaps [start, end)."""
    days = []
    midnight = math.floor(start / DAY) * DAY
    while midnight < end:
        weekday = time.gmtime(midnight).tm_wday
        days.append((midnight, WEEKEND_WEIGHT if weekday >= 5 else 1.0))
        midnight += DAY
    return days


def _start_times(rng: random.Random, count: int, start: float, end: float) -> list[float]:
    """`count` sorted start times in [start, end): more on weekdays and afternoons (UTC)."""
    days = _day_weights(start, end)
    midnights = [d for d, _ in days]
    cumulative = []
    total = 0.0
    for _, weight in days:
        total += weight
        cumulative.append(total)
    times = []
    while len(times) < count:
        midnight = rng.choices(midnights, cum_weights=cumulative)[0]
        if rng.random() < BUSY_SHARE:
            hour = rng.gauss(BUSY_HOUR, 3.5) % 24.0
        else:
            hour = rng.random() * 24.0
        moment = midnight + hour * 3600.0
        if start <= moment < end:
            times.append(moment)
    times.sort()
    return times


# --- the row generator -----------------------------------------------------------


@dataclass
class _Run:
    """The shape of one planned execution: its steps, and whether and where it fails."""

    agent: AgentProfile
    steps: list[
        tuple[str, Any]
    ]  # ("llm", None) | ("tool", name) | ("memory", op) | ("child", _Run)
    fail_at: int | None  # index of the step that fails (len(steps): after the last)
    error_type: str | None
    propagated: bool = False  # the failure is a child's exception, passed up

    @property
    def failed(self) -> bool:
        return self.error_type is not None

    def size(self) -> int:
        """Executions in this run and its children, as rendered."""
        return 1 + sum(step[1].size() for step in self.steps[: self._cut()] if step[0] == "child")

    def _cut(self) -> int:
        return len(self.steps) if self.fail_at is None else min(self.fail_at, len(self.steps))


def _plan(rng: random.Random, agent: AgentProfile) -> _Run:
    """Every decision about a run that does not depend on time: steps, children, failure."""
    n_llm = rng.randint(*agent.llm_calls)
    n_tools = rng.randint(*agent.tool_calls) if agent.tools else 0
    steps: list[tuple[str, Any]] = []
    use_memory = rng.random() < agent.memory
    if use_memory:
        steps.append(("memory", rng.choice(("load", "search"))))
    tools_left = n_tools
    for i in range(n_llm):
        steps.append(("llm", None))
        if i == 0:
            for child, probability in agent.children:
                if rng.random() < probability:
                    steps.append(("child", _plan(rng, AGENTS_BY_NAME[child])))
        share = tools_left if i == n_llm - 1 else rng.randint(0, tools_left)
        steps.extend(("tool", rng.choice(agent.tools)) for _ in range(share))
        tools_left -= share
    if use_memory:
        steps.append(("memory", "store"))
    fail_at, error_type = None, None
    if rng.random() < agent.failure:
        error_type = rng.choices(ERROR_TYPES, ERROR_WEIGHTS)[0]
        # A reply that does not parse fails after the last step; the others mid-way.
        fail_at = len(steps) if error_type == "ValueError" else rng.randrange(len(steps) + 1)
    propagated = False
    for index, step in enumerate(steps[:fail_at]):
        # A child's exception propagates to its caller 70% of the time.
        if step[0] == "child" and step[1].failed and rng.random() < 0.7:
            fail_at, error_type, propagated = index + 1, step[1].error_type, True
            break
    return _Run(agent, steps, fail_at, error_type, propagated)


class _Renderer:
    """Turns planned runs into rows with times, tokens, costs and error messages."""

    def __init__(
        self, prices: dict[str, tuple[float, float]], models: dict[str, str], slowdown, end: float
    ):
        self.prices = prices
        self.models = models
        self.slowdown = slowdown
        self.end = end

    def render(
        self,
        rng: random.Random,
        run: _Run,
        started_at: float,
        trace_id: str | None,
        parent_id: str | None,
        host: str,
        pid: int,
        budget: list[int],
    ) -> tuple[list[tuple[dict, list[dict]]], float, str | None]:
        """Rows of `run` and its children (at most budget[0] executions): (pairs, duration, error)."""
        budget[0] -= 1
        agent = run.agent
        exec_id = f"exec_{int(started_at * 1000) & 0xFFFFFFFFFFFF:012x}{_hex(rng, 64)}"
        trace_id = trace_id or exec_id  # a root run's trace id is its own id
        model_name = self.models[agent.model]
        factor = 1.0
        if (
            self.slowdown
            and self.slowdown[0] == agent.name
            and started_at >= self.end - self.slowdown[2] * DAY
        ):
            factor = self.slowdown[1]

        # Its own work takes a log-normal time, shared among its events by weight.
        own = _lognormal(rng, agent.median, agent.sigma) * factor
        weights = []
        for kind, what in run.steps:
            if kind == "llm":
                weights.append(rng.uniform(0.6, 1.4))
            elif kind == "tool":
                weights.append(_lognormal(rng, *TOOL_TIMING[what]) / max(agent.median, 0.1))
            elif kind == "memory":
                weights.append(0.02)
            else:
                weights.append(0.0)
        scale = own * 0.95 / (sum(weights) or 1.0)
        gap = own * 0.03 / max(len(run.steps), 1)

        children: list[tuple[dict, list[dict]]] = []
        events: list[dict] = []
        error = None
        cursor = started_at + own * 0.02
        for index, (kind, what) in enumerate(run.steps):
            if run.fail_at is not None and index >= run.fail_at:
                break
            if kind == "child":
                if budget[0] <= 0:
                    continue
                pairs, child_duration, child_error = self.render(
                    rng, what, cursor, trace_id, exec_id, host, pid, budget
                )
                children.extend(pairs)
                cursor += child_duration + 0.005
                if run.propagated and run.fail_at == index + 1:
                    error = child_error
                continue
            duration = weights[index] * scale
            seq = len(events)
            if kind == "llm":
                name = UNPRICED_MODEL if rng.random() < UNPRICED_SHARE else model_name
                prompt = max(1, round(_lognormal(rng, agent.prompt, 0.6)))
                completion = max(1, round(_lognormal(rng, agent.completion, 0.7)))
                price = self.prices.get(name)
                cost = prompt * price[0] + completion * price[1] if price else None
                next_kind = run.steps[index + 1][0] if index + 1 < len(run.steps) else None
                event = model.event_row(
                    exec_id,
                    seq,
                    "llm_call",
                    cursor,
                    name=name,
                    duration=duration,
                    prompt_tokens=prompt,
                    completion_tokens=completion,
                    cost=cost,
                    status="completed",
                    data={"finish_reason": "tool_calls" if next_kind == "tool" else "stop"},
                )
            elif kind == "tool":
                event = model.event_row(
                    exec_id,
                    seq,
                    "tool_call",
                    cursor,
                    name=what,
                    duration=duration,
                    status="completed",
                    data={"arguments": {"query": rng.choice(WORDS)}},
                )
            else:
                event = model.event_row(
                    exec_id,
                    seq,
                    "memory_operation",
                    cursor,
                    name=what,
                    duration=duration,
                    data={"items": rng.randrange(0, 40)},
                )
            events.append(event)
            cursor += duration + gap
        if run.failed and error is None:
            error, lost = _error_message(rng, run.error_type, model_name, agent)
            cursor += lost
        duration = max(cursor - started_at, own * 0.05)
        metrics = (
            {"sources": rng.randrange(1, 12)}
            if agent.name == "researcher" and not run.failed
            else None
        )
        project = agent.name.split("_")[1] if agent.name.startswith("project_") else None
        row = model.execution_row(
            id=exec_id,
            trace_id=trace_id,
            parent_id=parent_id,
            agent_name=agent.name,
            started_at=started_at,
            ended_at=started_at + duration,
            duration=duration,
            status="failed" if run.failed else "completed",
            error=error,
            error_type=run.error_type,
            kwargs=model.to_json(_kwargs(rng, agent)),
            tags=model.to_json({"project": project}) if project else None,
            model=model_name,
            metrics=model.to_json(metrics) if metrics else None,
            host=host,
            pid=pid,
            **model.totals_from_events(events),
        )
        return [(row, events), *children], duration, error


def _hex(rng: random.Random, bits: int) -> str:
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def _kwargs(rng: random.Random, agent: AgentProfile) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name in agent.kwargs:
        if name == "target_lang":
            values[name] = rng.choice(LANGS)
        elif name == "ticket_id":
            values[name] = rng.randrange(10_000, 99_999)
        elif name == "url":
            values[name] = f"https://example.com/docs/{rng.randrange(1000)}"
        elif name == "path":
            values[name] = f"inbox/{rng.randrange(10_000):05d}.pdf"
        elif name == "to":
            values[name] = f"user{rng.randrange(500)}@example.com"
        else:
            values[name] = rng.choice(WORDS)
    return values


def _error_message(
    rng: random.Random, error_type: str, model_name: str, agent: AgentProfile
) -> tuple[str, float]:
    """An error message with varying numbers and ids, and the seconds lost to the failure."""
    if error_type == "TimeoutError":
        limit = rng.choice((10, 30, 60))
        return f"Request timed out after {limit}s (request_id=req_{_hex(rng, 48)})", float(limit)
    if error_type == "RateLimitError":
        limit = rng.choice((30_000, 90_000, 200_000))
        return (
            f"Rate limit reached for {model_name} on tokens per min (TPM): Limit {limit}, "
            f"Used {limit - rng.randrange(1, 2_000)}, Requested {rng.randrange(500, 8_000)}. "
            f"Please try again in {rng.uniform(0.5, 20.0):.2f}s.",
            rng.uniform(0.05, 0.4),
        )
    if error_type == "ValueError":
        column = rng.randrange(1, 400)
        return (
            f"could not parse the reply of {agent.name}: Expecting value: line 1 column {column} (char {column - 1})",
            0.0,
        )
    return (
        f"Connection error: [Errno 111] Connection refused (10.0.{rng.randrange(256)}.{rng.randrange(256)}:443, attempt {rng.randrange(1, 4)} of 3)",
        rng.uniform(0.5, 5.0),
    )


def generate(
    n: int,
    seed: int = 0,
    days: float = 90,
    end: float | str | None = None,
    slowdown: dict[str, Any] | None = None,
    prices: dict[str, tuple[float, float]] | None = None,
) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Yield exactly `n` (execution row, event rows) pairs, traces in order of start time.

    Deterministic for the same arguments (and the same litellm price map).
    Runs spread over the `days` before `end` (epoch seconds or ISO date; default
    now), more on weekdays and UTC afternoons, and all finish by `end`.
    `slowdown={"agent": "summarizer", "factor": 1.4, "days": 2}` makes that
    agent's own work 40% slower in runs that start in the last 2 days. `prices`
    maps model -> (input, output) cost per token and skips litellm; it must
    price one model of each MODEL_CANDIDATES slot.
    """
    _check_common(n, days)
    planted = _check_slowdown(slowdown)
    end_time = parse_end(end)
    if prices is None:
        price_map = litellm_price_map()
        models, prices = resolve_models(price_map), model_prices(price_map)
    else:
        models = _models_from_prices(prices)
    base = random.Random(seed)
    names = [agent.name for agent in AGENTS]
    weights = [agent.weight for agent in AGENTS]
    # Plan traces (each from its own seed) until they hold n executions, then
    # give them sorted start times: the time spread does not depend on n.
    keys: list[int] = []
    total = 0
    while total < n:
        key = base.getrandbits(64)
        rng = random.Random(key)
        total += _plan(rng, AGENTS_BY_NAME[rng.choices(names, weights)[0]]).size()
        keys.append(key)
    times = _start_times(base, len(keys), end_time - days * DAY, end_time)
    renderer = _Renderer(prices, models, planted, end_time)
    left = n
    for key, started_at in zip(keys, times, strict=True):
        for _attempt in range(3):
            rng = random.Random(key)
            run = _plan(rng, AGENTS_BY_NAME[rng.choices(names, weights)[0]])
            host, pid = rng.choice(HOSTS), rng.randrange(1_000, 65_000)
            budget = [left]
            pairs, duration, _ = renderer.render(
                rng, run, started_at, None, None, host, pid, budget
            )
            overflow = started_at + duration - end_time
            if overflow <= 0:
                break
            # Nothing finishes after `end`: render the same trace again, earlier
            # (ids hold the start time, so rows are not shifted after the fact).
            started_at -= overflow + 0.001
        left = budget[0]
        yield from pairs


def _models_from_prices(prices: dict[str, tuple[float, float]]) -> dict[str, str]:
    stub = {
        name: {"input_cost_per_token": p[0], "output_cost_per_token": p[1]}
        for name, p in prices.items()
    }
    return resolve_models(stub)


def fill(store: Any, n: int, seed: int = 0, batch: int = 5_000, **options: Any) -> int:
    """Append `generate(n, seed, **options)` to `store` in transactions of `batch`; return n."""
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise ValueError(f"batch must be a positive whole number, got {batch!r}")
    pairs: list[tuple[dict, list[dict]]] = []
    written = 0
    for pair in generate(n, seed=seed, **options):
        pairs.append(pair)
        if len(pairs) >= batch:
            written += store.append_many(pairs)
            pairs = []
    if pairs:
        written += store.append_many(pairs)
    return written


# --- the checked-in sample ---------------------------------------------------------


def sample_dir() -> Path:
    """The fixture sample: the copy packaged in the wheel (kagura/data/fixtures) first, then the repository's data/fixtures."""
    packaged = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    if (packaged / "sample.json").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "data" / "fixtures"


SAMPLE_DIR = sample_dir()
SAMPLE_N = 2_000
SAMPLE_SEED = 0
SAMPLE_END = "2025-06-30T00:00:00+00:00"


def arrow_schemas() -> tuple[Any, Any]:
    """The Arrow schemas of execution and event rows (the store's column order and types)."""
    import pyarrow as pa

    types = {"text": pa.string(), "real": pa.float64(), "int": pa.int64(), "json": pa.string()}
    return (
        pa.schema([(name, types[kind]) for name, kind in model.EXECUTION_COLUMNS]),
        pa.schema([(name, types[kind]) for name, kind in model.EVENT_COLUMNS]),
    )


def pairs_to_arrow(pairs: Iterable[tuple[dict, list[dict]]]) -> tuple[Any, Any]:
    """(executions, events) Arrow tables holding these row pairs."""
    import pyarrow as pa

    exec_schema, event_schema = arrow_schemas()
    executions, events = [], []
    for row, rows in pairs:
        executions.append(row)
        events.extend(rows)
    return (
        pa.Table.from_pylist(executions, schema=exec_schema),
        pa.Table.from_pylist(events, schema=event_schema),
    )


def write_sample(
    folder: str | Path = SAMPLE_DIR,
    n: int = SAMPLE_N,
    seed: int = SAMPLE_SEED,
    end: float | str = SAMPLE_END,
) -> dict[str, Any]:
    """Write `generate(n, seed, end=end)` as executions.parquet, events.parquet and sample.json; return the metadata."""
    import json

    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    price_map = litellm_price_map()
    prices = model_prices(price_map)
    executions, events = pairs_to_arrow(generate(n, seed=seed, end=end, prices=prices))
    for name, table in (("executions", executions), ("events", events)):
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
    meta = {
        "n": n,
        "seed": seed,
        "days": 90,
        "end": parse_end(end),
        "end_iso": end if isinstance(end, str) else None,
        "executions": executions.num_rows,
        "events": events.num_rows,
        "prices": {
            name: {"input_cost_per_token": p[0], "output_cost_per_token": p[1]}
            for name, p in prices.items()
        },
        "unpriced_model": UNPRICED_MODEL,
        "command": (
            "python -m kagura.synthetic.fixtures sample"
            + ("" if folder.resolve() == SAMPLE_DIR else f" --out {folder}")
            + f" --n {n} --seed {seed} --end {end}"
        ),
    }
    (folder / "sample.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def load_sample(
    folder: str | Path = SAMPLE_DIR, end: float | str | None = None
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The sample's (execution row, event rows) pairs, times moved so the sample ends at `end` (default now).

    Ids keep the time they were made with: prefix lookups still work, but an
    id's time part then differs from its row's `started_at`.
    """
    import json

    import pyarrow.parquet as pq

    folder = Path(folder)
    meta_path = folder / "sample.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"no telemetry sample in {folder}; make one with `python -m kagura.synthetic.fixtures sample --out {folder}`"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    shift = parse_end(end) - meta["end"]
    executions = pq.read_table(folder / "executions.parquet").to_pylist()
    events: dict[str, list[dict]] = {}
    for event in pq.read_table(folder / "events.parquet").to_pylist():
        event["started_at"] += shift
        events.setdefault(event["execution_id"], []).append(event)
    pairs = []
    for row in executions:
        for name in model.EXECUTION_NAMES:  # columns added since the sample was written
            row.setdefault(name, None)
        row["started_at"] += shift
        if row["ended_at"] is not None:
            row["ended_at"] += shift
        pairs.append((row, sorted(events.get(row["id"], []), key=lambda e: e["seq"])))
    return pairs


# --- millions of rows, vectorized ------------------------------------------------


def _numpy() -> Any:
    try:
        import numpy
    except ImportError:
        raise ImportError(
            "generate_arrow needs numpy, which kagura does not depend on: pip install numpy"
        ) from None
    return numpy


def generate_arrow(
    n: int,
    seed: int = 0,
    days: float = 90,
    end: float | str | None = None,
    chunk: int = 1_000_000,
    prices: dict[str, tuple[float, float]] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Yield (executions, events) Arrow tables of `chunk` executions each, `n` in all, oldest first.

    The same agents, models, prices, failure rate and time spread as
    `generate`, simplified for speed: every execution has exactly 3 events
    (an LLM call, a tool call or memory operation, an LLM call), and 15% of
    executions are nested in the execution just before them. Deterministic
    for the same arguments. Needs numpy.
    """
    np = _numpy()
    import pyarrow as pa

    _check_common(n, days)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive whole number, got {chunk!r}")
    end_time = parse_end(end)
    if prices is None:
        price_map = litellm_price_map()
        models, prices = resolve_models(price_map), model_prices(price_map)
    else:
        models = _models_from_prices(prices)
    rng = np.random.default_rng(seed)
    table = _AgentTable(np, models)

    # Whole-run columns first, for all n: start times (sorted), agents, durations.
    start = end_time - days * DAY
    day_list = _day_weights(start, end_time)
    midnights = np.array([d for d, _ in day_list])
    day_p = np.array([w for _, w in day_list])
    day_p /= day_p.sum()
    # Under a day the shape of the day hardly matters: spread runs evenly.
    starts = rng.uniform(start, end_time, n) if days < 1 else np.empty(0)
    kept = 1.0  # share of draws that land in the window
    while starts.size < n:
        k = int((n - starts.size) / kept * 1.2) + 64
        day = rng.choice(midnights.size, size=k, p=day_p)
        busy = rng.random(k) < BUSY_SHARE
        hour = np.where(busy, np.mod(rng.normal(BUSY_HOUR, 3.5, k), 24.0), rng.random(k) * 24.0)
        moment = midnights[day] + hour * 3600.0
        inside = moment[(moment >= start) & (moment < end_time)]
        kept = max(inside.size / k, 1e-6)
        starts = np.concatenate([starts, inside])
    starts = starts[:n]
    agent = rng.choice(len(AGENTS), size=n, p=table.weight)
    duration = table.median[agent] * np.exp(table.sigma[agent] * rng.standard_normal(n))
    failed = rng.random(n) < table.failure[agent]
    error_kind = rng.choice(len(ERROR_TYPES), size=n, p=np.array(ERROR_WEIGHTS))
    limit = rng.choice(np.array([10.0, 30.0, 60.0]), size=n)
    lost = np.select(
        [error_kind == 0, error_kind == 1, error_kind == 3],
        [limit, rng.uniform(0.05, 0.4, n), rng.uniform(0.5, 5.0, n)],
        0.0,
    )
    duration = duration + np.where(failed, lost, 0.0)
    # Nothing finishes after `end`; then sort by start time.
    starts = np.minimum(starts, end_time - duration - 0.001)
    order = np.argsort(starts, kind="stable")
    starts, agent, duration, failed, error_kind, limit = (
        a[order] for a in (starts, agent, duration, failed, error_kind, limit)
    )
    exec_schema, event_schema = arrow_schemas()
    for index, lo in enumerate(range(0, n, chunk)):
        hi = min(n, lo + chunk)
        part = _ArrowChunk(np, pa, np.random.default_rng([seed, index + 1]), table, prices, models)
        yield part.build(
            starts[lo:hi],
            agent[lo:hi],
            duration[lo:hi],
            failed[lo:hi],
            error_kind[lo:hi],
            limit[lo:hi],
            exec_schema,
            event_schema,
        )


class _AgentTable:
    """AGENTS as numpy columns, for vectorized generation."""

    def __init__(self, np: Any, models: dict[str, str]):
        self.weight = np.array([a.weight for a in AGENTS], dtype=float)
        self.weight /= self.weight.sum()
        self.median = np.array([a.median for a in AGENTS])
        self.sigma = np.array([a.sigma for a in AGENTS])
        self.failure = np.array([a.failure for a in AGENTS])
        self.prompt = np.array([a.prompt for a in AGENTS], dtype=float)
        self.completion = np.array([a.completion for a in AGENTS], dtype=float)
        self.names = [a.name for a in AGENTS]
        self.models = [models[a.model] for a in AGENTS]
        # Each agent's tools, padded by repetition to a fixed width; agents
        # without tools do a memory operation instead.
        width = max(len(a.tools) for a in AGENTS)
        self.n_tools = np.array([len(a.tools) for a in AGENTS])
        self.tools = [
            [(a.tools[i % len(a.tools)] if a.tools else "store") for i in range(width)]
            for a in AGENTS
        ]
        self.kwargs = [
            [model.to_json({name: word for name in a.kwargs}) for word in WORDS] for a in AGENTS
        ]
        self.tags = [
            model.to_json({"project": a.name.split("_")[1]})
            if a.name.startswith("project_")
            else None
            for a in AGENTS
        ]


class _ArrowChunk:
    """Builds one chunk of executions and events as Arrow tables."""

    def __init__(self, np: Any, pa: Any, rng: Any, table: _AgentTable, prices: dict, models: dict):
        self.np, self.pa, self.rng, self.table = np, pa, rng, table
        self.prices = prices

    def build(self, starts, agent, duration, failed, error_kind, limit, exec_schema, event_schema):
        np, pa, rng, t = self.np, self.pa, self.rng, self.table
        m = starts.size
        ids = self._ids(starts)

        # Nesting: 15% of runs are children of the run just before them.
        child = rng.random(m) < 0.15
        if m:
            child[0] = False
        index = np.arange(m)
        root = np.maximum.accumulate(np.where(child, 0, index))
        parent_idx = pa.array(np.where(child, index - 1, 0))
        trace_id = ids.take(pa.array(root))
        parent_id = _masked(pa, ids.take(parent_idx), child)

        # Events: LLM call, tool call (or memory operation), LLM call.
        agent_models = np.array(t.models, dtype=object)[agent]
        tokens = {}
        for e in (0, 2):
            unpriced = rng.random(m) < UNPRICED_SHARE
            names = np.where(unpriced, UNPRICED_MODEL, agent_models)
            prompt = np.maximum(
                1, np.rint(t.prompt[agent] * np.exp(0.6 * rng.standard_normal(m)))
            ).astype(np.int64)
            completion = np.maximum(
                1, np.rint(t.completion[agent] * np.exp(0.7 * rng.standard_normal(m)))
            ).astype(np.int64)
            p_in = np.array(
                [self.prices.get(x, (np.nan, np.nan))[0] for x in t.models + [UNPRICED_MODEL]]
            )
            p_out = np.array(
                [self.prices.get(x, (np.nan, np.nan))[1] for x in t.models + [UNPRICED_MODEL]]
            )
            price_idx = np.where(unpriced, len(t.models), agent)
            cost = prompt * p_in[price_idx] + completion * p_out[price_idx]
            tokens[e] = (names, prompt, completion, cost, unpriced)
        has_tool = t.n_tools[agent] > 0
        tool_pick = (rng.random(m) * np.maximum(t.n_tools[agent], 1)).astype(np.int64)
        tool_name = np.array(t.tools, dtype=object)[agent, tool_pick]
        word = rng.integers(0, len(WORDS), m)
        items = rng.integers(0, 40, m)

        cost0, cost2 = tokens[0][3], tokens[2][3]
        priced = (~np.isnan(cost0)).astype(int) + (~np.isnan(cost2)).astype(int)
        total_cost = np.where(priced > 0, np.nan_to_num(cost0) + np.nan_to_num(cost2), np.nan)
        prompt_sum = tokens[0][1] + tokens[2][1]
        completion_sum = tokens[0][2] + tokens[2][2]

        status = np.where(failed, "failed", "completed").astype(object)
        error_type = np.array(ERROR_TYPES, dtype=object)[error_kind]
        errors = [None] * m
        prng = random.Random(int(rng.integers(0, 2**63)))
        for i in np.flatnonzero(failed):
            errors[i] = _error_text(
                prng, error_type[i], agent_models[i], t.names[agent[i]], limit[i]
            )
        host = np.array(HOSTS, dtype=object)[rng.integers(0, len(HOSTS), m)]
        pid = rng.integers(1_000, 65_000, m)

        executions = pa.Table.from_arrays(
            [
                ids,
                trace_id,
                parent_id,
                pa.array(np.array(t.names, dtype=object)[agent], pa.string()),
                pa.array(starts, pa.float64()),
                pa.array(starts + duration, pa.float64()),
                pa.array(duration, pa.float64()),
                pa.array(status, pa.string()),
                pa.array(errors, pa.string()),
                pa.array(np.where(failed, error_type, None), pa.string()),
                pa.array(np.array(t.kwargs, dtype=object)[agent, word], pa.string()),
                pa.array(np.array(t.tags, dtype=object)[agent], pa.string()),
                pa.array(agent_models, pa.string()),
                pa.array(total_cost, pa.float64(), from_pandas=True),
                pa.array(prompt_sum + completion_sum, pa.int64()),
                pa.array(prompt_sum, pa.int64()),
                pa.array(completion_sum, pa.int64()),
                pa.array(np.full(m, 2), pa.int64()),
                pa.array(has_tool.astype(np.int64), pa.int64()),
                pa.array(tokens[0][4].astype(np.int64) + tokens[2][4].astype(np.int64), pa.int64()),
                pa.nulls(m, pa.string()),
                pa.array(host, pa.string()),
                pa.array(pid, pa.int64()),
                pa.nulls(m, pa.string()),  # session_id
                pa.nulls(m, pa.string()),  # user_id
                pa.nulls(m, pa.string()),  # metadata
            ],
            schema=exec_schema,
        )

        # Event columns, 3 per execution, interleaved (execution, then seq).
        def weave(a, b, c):
            return np.stack([a, b, c], axis=1).reshape(-1)

        none = np.full(m, None, dtype=object)
        e_start = weave(
            starts + 0.02 * duration, starts + 0.48 * duration, starts + 0.55 * duration
        )
        e_duration = weave(0.45 * duration, 0.05 * duration, 0.42 * duration)
        middle_type = np.where(has_tool, "tool_call", "memory_operation").astype(object)
        middle_data = np.where(
            has_tool,
            np.array([model.to_json({"arguments": {"query": w}}) for w in WORDS], dtype=object)[
                word
            ],
            np.array([model.to_json({"items": k}) for k in range(40)], dtype=object)[items],
        )
        llm_data = np.array(
            [model.to_json({"finish_reason": r}) for r in ("tool_calls", "stop")], dtype=object
        )
        tokens_col = [
            weave(tokens[0][j].astype(object), none, tokens[2][j].astype(object)) for j in (1, 2)
        ]
        events = pa.Table.from_arrays(
            [
                ids.take(pa.array(np.repeat(np.arange(m), 3))),
                pa.array(np.tile(np.arange(3), m), pa.int64()),
                pa.array(
                    weave(
                        np.full(m, "llm_call", dtype=object),
                        middle_type,
                        np.full(m, "llm_call", dtype=object),
                    ),
                    pa.string(),
                ),
                pa.array(weave(tokens[0][0], tool_name, tokens[2][0]), pa.string()),
                pa.array(e_start, pa.float64()),
                pa.array(e_duration, pa.float64()),
                pa.array(tokens_col[0], pa.int64()),
                pa.array(tokens_col[1], pa.int64()),
                pa.array(
                    weave(
                        (tokens[0][1] + tokens[0][2]).astype(object),
                        none,
                        (tokens[2][1] + tokens[2][2]).astype(object),
                    ),
                    pa.int64(),
                ),
                pa.array(
                    weave(tokens[0][3], np.full(m, np.nan), tokens[2][3]),
                    pa.float64(),
                    from_pandas=True,
                ),
                pa.array(
                    weave(
                        np.full(m, "completed", dtype=object),
                        np.where(has_tool, "completed", None),
                        np.full(m, "completed", dtype=object),
                    ),
                    pa.string(),
                ),
                pa.nulls(3 * m, pa.string()),
                pa.array(
                    weave(
                        llm_data[np.where(has_tool, 0, 1)],
                        middle_data,
                        np.full(m, llm_data[1], dtype=object),
                    ),
                    pa.string(),
                ),
            ],
            schema=event_schema,
        )
        return executions, events

    def _ids(self, starts):
        """`exec_` + 12 hex digits of the start millisecond + 16 random hex digits, as one Arrow array."""
        np, pa = self.np, self.pa
        m = starts.size
        millis = (starts * 1000).astype(np.int64) & 0xFFFFFFFFFFFF
        rand = self.rng.integers(0, 2**64, m, dtype=np.uint64)
        digits = b"0123456789abcdef"
        lookup = np.frombuffer(digits, dtype=np.uint8)
        out = np.empty((m, 33), dtype=np.uint8)
        out[:, :5] = np.frombuffer(b"exec_", dtype=np.uint8)
        shifts = np.arange(44, -1, -4, dtype=np.int64)
        out[:, 5:17] = lookup[(millis[:, None] >> shifts[None, :]) & 0xF]
        shifts = np.arange(60, -1, -4, dtype=np.uint64)
        out[:, 17:33] = lookup[
            ((rand[:, None] >> shifts[None, :]) & np.uint64(0xF)).astype(np.int64)
        ]
        offsets = np.arange(0, 33 * (m + 1), 33, dtype=np.int32)
        return pa.StringArray.from_buffers(
            m, pa.py_buffer(offsets.tobytes()), pa.py_buffer(out.tobytes())
        )


def _masked(pa: Any, values: Any, keep: Any) -> Any:
    """`values` with nulls where `keep` is False."""
    import pyarrow.compute as pc

    return pc.if_else(pa.array(keep), values, pa.nulls(len(values), pa.string()))


def _error_text(
    rng: random.Random, error_type: str, model_name: str, agent_name: str, limit: float
) -> str:
    """An error message like `_error_message`'s, for the vectorized path."""
    if error_type == "TimeoutError":
        return f"Request timed out after {limit:.0f}s (request_id=req_{_hex(rng, 48)})"
    agent = AGENTS_BY_NAME[agent_name]
    return _error_message(rng, error_type, model_name, agent)[0]


def main(argv: list[str] | None = None) -> int:
    """Command line: `sample` writes the checked-in sample, `fill` fills a store; returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m kagura.synthetic.fixtures", description="Generate realistic telemetry."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write executions.parquet, events.parquet, sample.json")
    sample.add_argument("--out", default=str(SAMPLE_DIR))
    sample.add_argument("--n", type=int, default=SAMPLE_N)
    sample.add_argument("--seed", type=int, default=SAMPLE_SEED)
    sample.add_argument("--end", default=SAMPLE_END)
    filling = sub.add_parser("fill", help="append generated runs to a telemetry store")
    filling.add_argument(
        "--db", default=None, help="store path (default: $KAGURA_HOME/telemetry.db)"
    )
    filling.add_argument("--n", type=int, default=10_000)
    filling.add_argument("--seed", type=int, default=0)
    filling.add_argument("--days", type=float, default=90)
    filling.add_argument("--end", default=None, help="epoch seconds or ISO date (default: now)")
    args = parser.parse_args(argv)
    try:
        if args.command == "sample":
            meta = write_sample(args.out, n=args.n, seed=args.seed, end=args.end)
            print(
                f"wrote {meta['executions']} executions and {meta['events']} events to {args.out}"
            )
            return 0
        from kagura.observability.eventstore import EventStore

        end = float(args.end) if args.end and args.end.replace(".", "", 1).isdigit() else args.end
        with EventStore(args.db) as store:
            n = fill(store, args.n, seed=args.seed, days=args.days, end=end)
            store.compact()
            print(f"appended {n} executions to {store.path or ':memory:'}")
        return 0
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
