"""Rollups: the exact counts and sums of a segment's runs per (hour, agent, model, status).

Compaction writes one rollup file beside each segment (`rollups/date=.../<stem>`),
listed with it in the same manifest row, so the planner can answer summaries,
costs and percentiles for whole hours without reading the runs. Durations and
costs per run are kept as log-bucket histograms (bucket k holds the values in
(GAMMA**(k-1), GAMMA**k]), mergeable by adding counts, from which any quantile
is read within 1% of the exact one, as DDSketch does.
"""

from __future__ import annotations

import math

import pyarrow as pa
import pyarrow.compute as pc

GAMMA = 1.02
LN_GAMMA = math.log(GAMMA)
# Values of zero or below (a run that took no measurable time, a free call) share this bucket,
# read back as 0.
ZERO_BUCKET = -32768
HOUR = 3600

# Run measures come from the executions of the hour; call measures (call_*) from the LLM calls
# that started in the hour, under the model each call used and its run's agent and status.
ROLLUP_SCHEMA = pa.schema(
    [
        ("hour", pa.int64()),  # epoch seconds of the hour's start (UTC)
        ("agent_name", pa.string()),
        ("model", pa.string()),
        ("status", pa.string()),
        ("runs", pa.int64()),
        ("failed", pa.int64()),
        ("unpriced_runs", pa.int64()),  # runs whose cost is unknown (NULL): not in cost
        ("cost", pa.float64()),  # NULL when no run of the row has a known cost
        ("prompt_tokens", pa.int64()),
        ("completion_tokens", pa.int64()),
        ("total_tokens", pa.int64()),
        ("llm_calls", pa.int64()),
        ("tool_calls", pa.int64()),
        ("unpriced_calls", pa.int64()),
        ("duration_count", pa.int64()),  # runs with a duration
        ("duration_sum", pa.float64()),
        ("duration_min", pa.float64()),
        ("duration_max", pa.float64()),
        ("min_started_at", pa.float64()),
        ("max_started_at", pa.float64()),
        ("duration_buckets", pa.list_(pa.int16())),  # histogram: bucket keys, ascending ...
        ("duration_counts", pa.list_(pa.int64())),  # ... and the runs in each
        ("cost_buckets", pa.list_(pa.int16())),  # priced runs only
        ("cost_counts", pa.list_(pa.int64())),
        ("calls", pa.int64()),
        ("call_prompt_tokens", pa.int64()),
        ("call_completion_tokens", pa.int64()),
        ("call_tokens", pa.int64()),
        ("call_cost", pa.float64()),
        ("call_unpriced", pa.int64()),
    ]
)

KEYS = ["hour", "agent_name", "model", "status"]


def bucket_of(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """The histogram bucket of each value: ceil(ln(v) / ln(GAMMA)), ZERO_BUCKET for v <= 0."""
    values = pc.cast(values, pa.float64())
    positive = pc.greater(values, 0.0)
    safe = pc.if_else(positive, values, 1.0)
    keys = pc.cast(pc.ceil(pc.divide(pc.ln(safe), LN_GAMMA)), pa.int64())
    return pc.cast(pc.if_else(positive, keys, ZERO_BUCKET), pa.int16())


def bucket_value(key: int) -> float:
    """The value a bucket stands for: within 1% (relative) of every value in it."""
    return 0.0 if key == ZERO_BUCKET else 2.0 * GAMMA**key / (GAMMA + 1.0)


def build_rollup(executions: pa.Table, events: pa.Table | None = None) -> pa.Table:
    """The rollup table (ROLLUP_SCHEMA) of settled runs and, if given, their events.

    `executions` needs agent_name, model, status, started_at, duration,
    total_cost and the token and call counts; `events` needs execution_id, type,
    name, started_at, the token counts and cost. Rows come sorted by their keys.
    """
    n = executions.num_rows
    hour = pc.multiply(
        pc.cast(pc.floor(pc.divide(executions.column("started_at"), float(HOUR))), pa.int64()),
        HOUR,
    )
    status = executions.column("status")
    cost = executions.column("total_cost")
    duration = executions.column("duration")
    base = pa.table(
        {
            "hour": hour,
            "agent_name": executions.column("agent_name"),
            "model": pc.cast(executions.column("model"), pa.string()),
            "status": status,
            "failed": pc.cast(pc.equal(status, "failed"), pa.int64()),
            "unpriced": pc.cast(pc.is_null(cost), pa.int64()),
            "cost": cost,
            "prompt_tokens": executions.column("prompt_tokens"),
            "completion_tokens": executions.column("completion_tokens"),
            "total_tokens": executions.column("total_tokens"),
            "llm_calls": executions.column("llm_calls"),
            "tool_calls": executions.column("tool_calls"),
            "unpriced_calls": executions.column("unpriced_calls"),
            "duration": duration,
            "started_at": executions.column("started_at"),
            "one": pa.repeat(pa.scalar(1, pa.int64()), n) if n else pa.array([], pa.int64()),
        }
    )
    runs = base.group_by(KEYS, use_threads=False).aggregate(
        [
            ("one", "sum"),
            ("failed", "sum"),
            ("unpriced", "sum"),
            ("cost", "sum", pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)),
            ("prompt_tokens", "sum"),
            ("completion_tokens", "sum"),
            ("total_tokens", "sum"),
            ("llm_calls", "sum"),
            ("tool_calls", "sum"),
            ("unpriced_calls", "sum"),
            ("duration", "count"),
            ("duration", "sum"),
            ("duration", "min"),
            ("duration", "max"),
            ("started_at", "min"),
            ("started_at", "max"),
        ]
    )
    runs = runs.rename_columns(
        {
            "one_sum": "runs",
            "failed_sum": "failed",
            "unpriced_sum": "unpriced_runs",
            "cost_sum": "cost",
            "prompt_tokens_sum": "prompt_tokens",
            "completion_tokens_sum": "completion_tokens",
            "total_tokens_sum": "total_tokens",
            "llm_calls_sum": "llm_calls",
            "tool_calls_sum": "tool_calls",
            "unpriced_calls_sum": "unpriced_calls",
            "duration_count": "duration_count",
            "duration_sum": "duration_sum",
            "duration_min": "duration_min",
            "duration_max": "duration_max",
            "started_at_min": "min_started_at",
            "started_at_max": "max_started_at",
        }
    )
    keyed = _keyed(base.select(KEYS))
    runs = _keyed(runs)
    parts = [
        runs,
        _histogram(keyed, duration, "duration"),
        _histogram(keyed, cost, "cost"),
    ]
    if events is not None and events.num_rows:
        parts.append(_keyed(_calls(executions, events)))
    return _conform(_align(parts)).sort_by([(k, "ascending") for k in KEYS])


def _histogram(keyed: pa.Table, values: pa.ChunkedArray, name: str) -> pa.Table:
    """Per key: the buckets (ascending) of the non-null values, and their counts."""
    present = pc.is_valid(values)
    table = keyed.append_column("bucket", bucket_of(values)).filter(present)
    table = (
        table.append_column("one", pa.repeat(pa.scalar(1, pa.int64()), table.num_rows))
        if table.num_rows
        else table.append_column("one", pa.array([], pa.int64()))
    )
    counted = table.group_by(["_key", "bucket"], use_threads=False).aggregate([("one", "sum")])
    counted = counted.sort_by([("_key", "ascending"), ("bucket", "ascending")])
    listed = counted.group_by("_key", use_threads=False).aggregate(
        [("bucket", "list"), ("one_sum", "list")]
    )
    return listed.rename_columns(
        {"bucket_list": f"{name}_buckets", "one_sum_list": f"{name}_counts"}
    )


def _calls(executions: pa.Table, events: pa.Table) -> pa.Table:
    """LLM calls per (hour of the call, agent, model called, status of the run)."""
    calls = events.filter(pc.equal(events.column("type"), "llm_call"))
    runs = pa.table(
        {
            "execution_id": executions.column("id"),
            "agent_name": executions.column("agent_name"),
            "status": executions.column("status"),
        }
    )
    calls = pa.table(
        {
            "execution_id": calls.column("execution_id"),
            "hour": pc.multiply(
                pc.cast(pc.floor(pc.divide(calls.column("started_at"), float(HOUR))), pa.int64()),
                HOUR,
            ),
            "model": pc.cast(calls.column("name"), pa.string()),
            "prompt_tokens": calls.column("prompt_tokens"),
            "completion_tokens": calls.column("completion_tokens"),
            "total_tokens": calls.column("total_tokens"),
            "cost": calls.column("cost"),
            "unpriced": pc.cast(pc.is_null(calls.column("cost")), pa.int64()),
        }
    ).join(runs, "execution_id", join_type="inner", use_threads=False)
    calls = (
        calls.append_column("one", pa.repeat(pa.scalar(1, pa.int64()), calls.num_rows))
        if calls.num_rows
        else calls.append_column("one", pa.array([], pa.int64()))
    )
    out = calls.group_by(KEYS, use_threads=False).aggregate(
        [
            ("one", "sum"),
            ("prompt_tokens", "sum"),
            ("completion_tokens", "sum"),
            ("total_tokens", "sum"),
            ("cost", "sum", pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)),
            ("unpriced", "sum"),
        ]
    )
    return out.rename_columns(
        {
            "one_sum": "calls",
            "prompt_tokens_sum": "call_prompt_tokens",
            "completion_tokens_sum": "call_completion_tokens",
            "total_tokens_sum": "call_tokens",
            "cost_sum": "call_cost",
            "unpriced_sum": "call_unpriced",
        }
    )


def _align(parts: list[pa.Table]) -> pa.Table:
    """One row per key found in any part, with every part's columns (NULL where a part lacks the key).

    Matched by a null-safe text key through index_in/take: Arrow's joins neither
    match NULL keys (a run without a model) nor carry list columns.
    """
    keys = pa.concat_tables(
        [p.select([*KEYS, "_key"]) for p in parts if set(KEYS) <= set(p.column_names)]
    )
    keys = keys.group_by([*KEYS, "_key"], use_threads=False).aggregate([])
    out = keys
    for part in parts:
        index = pc.index_in(keys.column("_key"), value_set=part.column("_key"))
        for name in part.column_names:
            if name not in out.column_names:
                out = out.append_column(name, pc.take(part.column(name), index))
    return out


_SEP = "\x1f"


def _keyed(table: pa.Table) -> pa.Table:
    parts = [pc.cast(table.column("hour"), pa.string())]
    for name in ("agent_name", "model", "status"):
        column = table.column(name)
        # NULL and a value never collide: a present value gets a leading mark.
        parts.append(
            pc.if_else(pc.is_null(column), "", pc.binary_join_element_wise("=", column, ""))
        )
    key = pc.binary_join_element_wise(*parts, _SEP)
    return table.append_column("_key", key)


def _conform(table: pa.Table) -> pa.Table:
    """The table with ROLLUP_SCHEMA's columns, in order; counts that are absent are zero."""
    n = table.num_rows
    columns = []
    for field in ROLLUP_SCHEMA:
        if field.name in table.column_names:
            column = table.column(field.name)
        else:
            column = pa.nulls(n, field.type)
        if field.name in (
            "runs",
            "failed",
            "unpriced_runs",
            "duration_count",
            "calls",
            "call_unpriced",
        ):
            column = pc.fill_null(column, 0)
        columns.append(pc.cast(column, field.type))
    return pa.Table.from_arrays(columns, schema=ROLLUP_SCHEMA)


def quantile(buckets: list[int], counts: list[int], q: float) -> float | None:
    """The q-quantile (as quantile_cont interpolates) read from a histogram; None when empty."""
    pairs = sorted(zip(buckets, counts, strict=True))
    n = sum(c for _, c in pairs)
    if n == 0:
        return None
    rank = q * (n - 1)
    low, high = math.floor(rank), math.ceil(rank)

    def at(index: int) -> float:
        seen = 0
        for key, count in pairs:
            seen += count
            if seen > index:
                return bucket_value(key)
        return bucket_value(pairs[-1][0])

    a, b = at(low), at(high)
    return a + (rank - low) * (b - a)
