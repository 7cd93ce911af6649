"""The world the generators draw from: agents, models and their prices, tools, errors, hours.

Both generators (rows.py, one run at a time; arrow.py, vectorized) draw from here, so
they describe the same agents.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from kagura.observability.store.rows import finite

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


class AgentColumns:
    """AGENTS' draw parameters as numpy columns, one entry per agent (weights sum to 1)."""

    def __init__(self, np: Any):
        self.weight = np.array([a.weight for a in AGENTS], dtype=float)
        self.weight /= self.weight.sum()
        self.median = np.array([a.median for a in AGENTS])
        self.sigma = np.array([a.sigma for a in AGENTS])
        self.failure = np.array([a.failure for a in AGENTS])
        self.prompt = np.array([a.prompt for a in AGENTS], dtype=float)
        self.completion = np.array([a.completion for a in AGENTS], dtype=float)


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
    """litellm's bundled price map, read offline (the recorder's: pricing.model_cost_map)."""
    from kagura.observability.recording.pricing import model_cost_map

    return model_cost_map()


def priced_models(
    prices: dict[str, tuple[float, float]] | None,
) -> tuple[dict[str, str], dict[str, tuple[float, float]]]:
    """(slot -> model, model -> (input, output) cost per token): `prices`, else litellm's map."""
    if prices is None:
        price_map = litellm_price_map()
        return resolve_models(price_map), model_prices(price_map)
    stub = {
        name: {"input_cost_per_token": p[0], "output_cost_per_token": p[1]}
        for name, p in prices.items()
    }
    return resolve_models(stub), prices


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
    return float(finite(end, "end", allow_none=False))


def check_slowdown(slowdown: dict[str, Any] | None) -> tuple[str, float, float] | None:
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
    factor = finite(slowdown.get("factor", 1.4), "slowdown factor", allow_none=False)
    days = finite(slowdown.get("days", 2), "slowdown days", allow_none=False)
    if factor <= 0 or days <= 0:
        raise ValueError("slowdown factor and days must be positive")
    return agent, factor, days


def check_common(n: int, days: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise ValueError(f"n must be a whole number >= 0, got {n!r}")
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ValueError(f"days must be a positive number, got {days!r}")


# --- time of day and day of week -----------------------------------------------

WEEKEND_WEIGHT = 0.3  # a Saturday or Sunday sees 30% of a weekday's runs
BUSY_HOUR = 14.0  # UTC hour around which runs cluster
BUSY_SHARE = 0.8  # the rest are spread evenly over the day


def day_weights(start: float, end: float) -> list[tuple[float, float]]:
    """(midnight UTC, weight) of each day that overlaps [start, end)."""
    days = []
    midnight = math.floor(start / DAY) * DAY
    while midnight < end:
        weekday = time.gmtime(midnight).tm_wday
        days.append((midnight, WEEKEND_WEIGHT if weekday >= 5 else 1.0))
        midnight += DAY
    return days


def start_times(rng: random.Random, count: int, start: float, end: float) -> list[float]:
    """`count` sorted start times in [start, end): more on weekdays and afternoons (UTC)."""
    days = day_weights(start, end)
    midnights = [d for d, _ in days]
    cumulative = []
    total = 0.0
    for _, weight in days:
        total += weight
        cumulative.append(total)
    times: list[float] = []
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


def hex_bits(rng: random.Random, bits: int) -> str:
    return format(rng.getrandbits(bits), f"0{bits // 4}x")


def lognormal(rng: random.Random, median: float, sigma: float) -> float:
    return median * math.exp(rng.gauss(0.0, sigma))


def draw_kwargs(rng: random.Random, agent: AgentProfile) -> dict[str, Any]:
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


def error_message(
    rng: random.Random, error_type: str, model_name: str, agent: AgentProfile
) -> tuple[str, float]:
    """An error message with varying numbers and ids, and the seconds lost to the failure."""
    if error_type == "TimeoutError":
        limit = rng.choice((10, 30, 60))
        return f"Request timed out after {limit}s (request_id=req_{hex_bits(rng, 48)})", float(
            limit
        )
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
