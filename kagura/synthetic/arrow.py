"""Millions of runs as Arrow tables, vectorized with numpy (the same world as rows.py)."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

from kagura.observability.store.rows import to_json
from kagura.synthetic.sample import (
    arrow_schemas,
)
from kagura.synthetic.world import (
    AGENTS,
    AGENTS_BY_NAME,
    BUSY_HOUR,
    BUSY_SHARE,
    DAY,
    ERROR_TYPES,
    ERROR_WEIGHTS,
    HOSTS,
    UNPRICED_MODEL,
    UNPRICED_SHARE,
    WORDS,
    AgentColumns,
    check_common,
    day_weights,
    error_message,
    hex_bits,
    parse_end,
    priced_models,
)

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

    check_common(n, days)
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a positive whole number, got {chunk!r}")
    end_time = parse_end(end)
    models, prices = priced_models(prices)
    rng = np.random.default_rng(seed)
    table = _AgentTable(np, models)

    # Whole-run columns first, for all n: start times (sorted), agents, durations.
    start = end_time - days * DAY
    day_list = day_weights(start, end_time)
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


class _AgentTable(AgentColumns):
    """AGENTS as numpy columns, for vectorized generation."""

    def __init__(self, np: Any, models: dict[str, str]):
        super().__init__(np)
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
            [to_json({name: word for name in a.kwargs}) for word in WORDS] for a in AGENTS
        ]
        self.tags = [
            to_json({"project": a.name.split("_")[1]}) if a.name.startswith("project_") else None
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
            np.array([to_json({"arguments": {"query": w}}) for w in WORDS], dtype=object)[word],
            np.array([to_json({"items": k}) for k in range(40)], dtype=object)[items],
        )
        llm_data = np.array(
            [to_json({"finish_reason": r}) for r in ("tool_calls", "stop")], dtype=object
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
    """An error message like `error_message`'s, for the vectorized path."""
    if error_type == "TimeoutError":
        return f"Request timed out after {limit:.0f}s (request_id=req_{hex_bits(rng, 48)})"
    agent = AGENTS_BY_NAME[agent_name]
    return error_message(rng, error_type, model_name, agent)[0]
