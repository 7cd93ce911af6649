"""Runs as the recorder writes them: (execution row, event rows) pairs, one run at a time."""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kagura.observability.store.rows import event_row, execution_row, to_json, totals_from_events
from kagura.synthetic.world import (
    AGENTS,
    AGENTS_BY_NAME,
    DAY,
    ERROR_TYPES,
    ERROR_WEIGHTS,
    HOSTS,
    TOOL_TIMING,
    UNPRICED_MODEL,
    UNPRICED_SHARE,
    WORDS,
    AgentProfile,
    check_common,
    check_slowdown,
    draw_kwargs,
    error_message,
    hex_bits,
    lognormal,
    parse_end,
    priced_models,
    start_times,
)

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
        exec_id = f"exec_{int(started_at * 1000) & 0xFFFFFFFFFFFF:012x}{hex_bits(rng, 64)}"
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
        own = lognormal(rng, agent.median, agent.sigma) * factor
        weights = []
        for kind, what in run.steps:
            if kind == "llm":
                weights.append(rng.uniform(0.6, 1.4))
            elif kind == "tool":
                weights.append(lognormal(rng, *TOOL_TIMING[what]) / max(agent.median, 0.1))
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
                prompt = max(1, round(lognormal(rng, agent.prompt, 0.6)))
                completion = max(1, round(lognormal(rng, agent.completion, 0.7)))
                price = self.prices.get(name)
                cost = prompt * price[0] + completion * price[1] if price else None
                next_kind = run.steps[index + 1][0] if index + 1 < len(run.steps) else None
                event = event_row(
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
                event = event_row(
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
                event = event_row(
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
        if run.error_type is not None and error is None:  # a failed run
            error, lost = error_message(rng, run.error_type, model_name, agent)
            cursor += lost
        duration = max(cursor - started_at, own * 0.05)
        metrics = (
            {"sources": rng.randrange(1, 12)}
            if agent.name == "researcher" and not run.failed
            else None
        )
        project = agent.name.split("_")[1] if agent.name.startswith("project_") else None
        row = execution_row(
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
            kwargs=to_json(draw_kwargs(rng, agent)),
            tags=to_json({"project": project}) if project else None,
            model=model_name,
            metrics=to_json(metrics) if metrics else None,
            host=host,
            pid=pid,
            **totals_from_events(events),
        )
        return [(row, events), *children], duration, error


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
    check_common(n, days)
    planted = check_slowdown(slowdown)
    end_time = parse_end(end)
    models, prices = priced_models(prices)
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
    times = start_times(base, len(keys), end_time - days * DAY, end_time)
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
