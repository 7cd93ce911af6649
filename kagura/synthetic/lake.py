"""Millions of synthetic runs written straight into a store's lake, as compaction writes them.

`write_runs(db, runs, days)` draws runs with numpy (the agents, models, prices,
failures, nested runs, tool calls and unpriced calls that `fixtures` models, and
the users and sessions they ran for),
builds each chunk's executions and events as Arrow columns (no Python object
per row) and writes them as segments of one UTC date by compaction's own
protocol: files under temporary names, fsynced, renamed, then listed in the
manifest in one SQLite transaction, under the lake's lock. Memory stays
bounded: one chunk is drawn while the one before it is written.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from kagura.observability.store.compaction import _insert_segment, lake_lock, write_segment
from kagura.observability.store.rows import to_json
from kagura.observability.store.tail import (
    EVENTS_SCHEMA,
    EXECUTIONS_SCHEMA,
    Segment,
    bump_generation,
)
from kagura.synthetic import fixtures
from kagura.synthetic.world import AgentColumns

DAY = 86400.0
CHUNK = 1_000_000  # runs per segment at most (and per chunk held in memory)
# Times and durations are whole multiples of 1/1024 s (about a millisecond) and costs
# of 2**-32 dollars: exact binary fractions, so their low bytes are zeros that
# Parquet's byte-stream-split and zstd store for almost nothing.
TICK = 1.0 / 1024
COST_TICK = 2.0**-32
CHILD_SHARE = 0.15  # runs nested in the run just before them
ERROR_VARIANTS = 8  # messages drawn per (agent, error type)
# People: most root runs are asked for by one of USERS users (a few of them busy, most
# occasional: weights 1 / (rank + 10)); the rest are batch runs with no user. A user's
# runs within one SESSION_SPAN share a session; nested runs share their root's.
USERS = 2000
USER_SHARE = 0.8
SESSION_SPAN = 1800.0
PIDS = (4242, 5150, 7071, 9001)  # one recording process per host


@dataclass(frozen=True)
class Written:
    """What `write_runs` wrote: counts, segments, lake bytes and seconds."""

    runs: int
    events: int
    segments: int
    bytes: int
    seconds: float
    first: float | None
    last: float | None


def write_runs(
    db_path: str | Path | None,
    runs: int,
    days: float,
    seed: int = 0,
    end: float | None = None,
    chunk: int = CHUNK,
    progress: Callable[[int], Any] | None = None,
) -> Written:
    """Write `runs` synthetic runs (3 events each) over the `days` before `end` into the store's lake."""
    from kagura.observability import EventStore

    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a whole number >= 1, got {runs!r}")
    if not (isinstance(days, (int, float)) and math.isfinite(days) and days > 0):
        raise ValueError(f"days must be a positive number, got {days!r}")
    if isinstance(chunk, bool) or not isinstance(chunk, int) or chunk < 1:
        raise ValueError(f"chunk must be a whole number >= 1, got {chunk!r}")
    began = time.perf_counter()
    end = time.time() if end is None else float(end)
    agents = _Agents(seed)
    rng = np.random.default_rng(seed)
    pieces = list(_pieces(rng, runs, end - days * DAY, end, chunk))
    store = EventStore(db_path, auto_compact=False)
    if store.lake is None or store.shared is not None:
        store.close()
        raise ValueError(
            "synthetic runs go into the store's own lake: give a store file (not ':memory:') "
            "and no shared lake (KAGURA_LAKE)"
        )
    wal, lake = store._wal, store.lake
    written: list[Segment] = []
    try:
        with lake_lock(lake, 30.0), ThreadPoolExecutor(max_workers=1) as writer:
            pending: Future | None = None
            for index, (date, starts) in enumerate(pieces):
                part = _build(agents, np.random.default_rng([seed, index + 1]), starts, end)
                if pending is not None:
                    written.append(_list(wal, pending.result()))
                    if progress is not None:
                        progress(written[-1].executions)
                pending = writer.submit(write_segment, lake, date, *part, presorted=True)
                del part
            if pending is not None:
                written.append(_list(wal, pending.result()))
                if progress is not None:
                    progress(written[-1].executions)
    finally:
        store.close()
    return Written(
        runs=sum(s.executions for s in written),
        events=sum(s.events for s in written),
        segments=len(written),
        bytes=sum(s.bytes for s in written),
        seconds=time.perf_counter() - began,
        first=min((s.min_started_at for s in written), default=None),
        last=max((s.max_started_at for s in written), default=None),
    )


def _list(wal: Any, seg: Segment) -> Segment:
    """List a written segment in the manifest (one transaction); it is readable from then on."""
    with wal.write() as con:
        bump_generation(con)
        _insert_segment(con, seg)
    return seg


# --- when runs start ----------------------------------------------------------------


def _pieces(rng: Any, runs: int, start: float, end: float, chunk: int) -> Iterator[tuple[str, Any]]:
    """(UTC date, sorted start times) of each segment to write, oldest first.

    Runs go to days by weight (weekends quieter, partial days pro rata), and
    within a day to seconds by the fixtures' daily shape; a day's seconds are
    cut into consecutive pieces of at most `chunk` runs, so segments of one
    date cover disjoint spans of time.
    """
    midnights = np.arange(math.floor(start / DAY) * DAY, end, DAY)
    lo = np.maximum(midnights, start)
    hi = np.minimum(midnights + DAY, end)
    weekday = ((midnights // DAY).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    weight = np.where(weekday >= 5, fixtures.WEEKEND_WEIGHT, 1.0) * (hi - lo) / DAY
    per_day = rng.multinomial(runs, weight / weight.sum())
    hour = (np.arange(86400) + 0.5) / 3600.0
    busy = sum(
        np.exp(-0.5 * ((hour - fixtures.BUSY_HOUR + shift) / 3.5) ** 2) for shift in (-24, 0, 24)
    )
    shape = fixtures.BUSY_SHARE * busy / busy.sum() + (1 - fixtures.BUSY_SHARE) / 86400
    for midnight, first, last, count in zip(midnights, lo, hi, per_day, strict=True):
        if count == 0:
            continue
        second = np.arange(86400) + midnight
        inside = (second + 1 > first) & (second < last)
        p = np.where(inside, shape, 0.0)
        per_second = rng.multinomial(count, p / p.sum())
        date = time.strftime("%Y-%m-%d", time.gmtime(midnight))
        n_pieces = -(-int(count) // chunk)
        bounds = np.searchsorted(
            np.cumsum(per_second), np.arange(1, n_pieces) * count / n_pieces, side="right"
        )
        for a, b in zip(np.r_[0, bounds], np.r_[bounds, 86400], strict=True):
            counts = per_second[a:b]
            total = int(counts.sum())
            if total == 0:
                continue
            base = np.repeat(second[a:b], counts)
            left = np.maximum(base, first)
            right = np.minimum(base + 1.0, last)
            moment = left + (right - left) * rng.random(total)
            yield date, np.sort(np.floor(moment / TICK) * TICK)


# --- what runs do --------------------------------------------------------------------


class _Agents(AgentColumns):
    """The fixture agents, their models, prices, tools and texts as numpy/Arrow lookup tables."""

    def __init__(self, seed: int):
        super().__init__(np)
        price_map = fixtures.litellm_price_map()
        models = fixtures.resolve_models(price_map)
        prices = fixtures.model_prices(price_map)
        agents = fixtures.AGENTS
        self.count = len(agents)
        self.names = pa.array([a.name for a in agents], pa.string())
        model_names = [models[a.model] for a in agents]
        self.models = pa.array(model_names, pa.string())
        # Event names: each agent's model, then the unpriced model, tools and memory operations.
        self.event_names = pa.array(
            model_names + [fixtures.UNPRICED_MODEL] + list(fixtures.TOOLS) + ["store"],
            pa.string(),
        )
        self.unpriced_name = len(model_names)
        tool_index = {tool: i + len(model_names) + 1 for i, tool in enumerate(fixtures.TOOLS)}
        memory_name = len(model_names) + 1 + len(fixtures.TOOLS)
        width = max(len(a.tools) for a in agents)
        self.n_tools = np.array([len(a.tools) for a in agents])
        self.tool_names = np.array(
            [
                [
                    tool_index[a.tools[i % len(a.tools)]] if a.tools else memory_name
                    for i in range(width)
                ]
                for a in agents
            ]
        )
        self.p_in = np.array([prices[m][0] for m in model_names])
        self.p_out = np.array([prices[m][1] for m in model_names])
        words = fixtures.WORDS
        self.n_words = len(words)
        self.kwargs = pa.array(
            [to_json({name: word for name in a.kwargs}) for a in agents for word in words],
            pa.string(),
        )
        self.tags = pa.array(
            [to_json({"project": (a.name.split("_") + [""])[1]}) for a in agents], pa.string()
        )
        self.tagged = np.array([a.name.startswith("project_") for a in agents])
        self.error_types = pa.array(fixtures.ERROR_TYPES, pa.string())
        self.error_p = np.array(fixtures.ERROR_WEIGHTS) / sum(fixtures.ERROR_WEIGHTS)
        text_rng = random.Random(seed)
        self.errors = pa.array(
            [
                fixtures.error_message(text_rng, kind, model_names[i], agent)[0]
                for i, agent in enumerate(agents)
                for kind in fixtures.ERROR_TYPES
                for _ in range(ERROR_VARIANTS)
            ],
            pa.string(),
        )
        self.hosts = pa.array(fixtures.HOSTS, pa.string())
        self.pids = np.resize(np.array(PIDS), len(fixtures.HOSTS))
        self.types = pa.array(["llm_call", "tool_call", "memory_operation"], pa.string())
        self.statuses = pa.array(["completed", "failed"], pa.string())
        # Event data: the two LLM finish reasons, each word as tool arguments, memory item counts.
        self.data = pa.array(
            [to_json({"finish_reason": r}) for r in ("tool_calls", "stop")]
            + [to_json({"arguments": {"query": w}}) for w in words]
            + [to_json({"items": k}) for k in range(40)],
            pa.string(),
        )


def _ticks(seconds: Any) -> Any:
    return np.floor(seconds / TICK) * TICK


def _weave(a: Any, b: Any, c: Any) -> Any:
    """Three per-run columns as one per-event column (run by run, then seq)."""
    return np.stack([a, b, c], axis=1).reshape(-1)


def _take(values: pa.Array, index: Any, valid: Any = None) -> pa.Array:
    """values[index] as a plain Arrow array; null where `valid` is False.

    (Dictionary arrays would skip the copy, but Parquet then keeps their whole
    dictionary per row group: larger files for no faster write.)
    """
    indices = pa.array(index.astype(np.int32, copy=False), mask=None if valid is None else ~valid)
    return values.take(indices)


def _ints(values: Any, valid: Any = None) -> pa.Array:
    return pa.array(
        values.astype(np.int64, copy=False), pa.int64(), mask=None if valid is None else ~valid
    )


def _floats(values: Any, valid: Any = None) -> pa.Array:
    return pa.array(values, pa.float64(), mask=None if valid is None else ~valid)


def _build(t: _Agents, rng: Any, starts: Any, end: float) -> tuple[pa.Table, pa.Table]:
    """One chunk's executions and events (3 per run) as Arrow tables of the store's schemas."""
    m = starts.size
    agent = rng.choice(t.count, size=m, p=t.weight)
    duration = t.median[agent] * np.exp(t.sigma[agent] * rng.standard_normal(m))
    failed = rng.random(m) < t.failure[agent]
    kind = rng.choice(len(t.error_p), size=m, p=t.error_p)
    lost = np.select(
        [kind == 0, kind == 1, kind == 3],
        [
            rng.choice(np.array([10.0, 30.0, 60.0]), size=m),
            rng.uniform(0.05, 0.4, m),
            rng.uniform(0.5, 5.0, m),
        ],
        0.0,
    )
    duration = np.maximum(_ticks(duration + np.where(failed, lost, 0.0)), TICK)
    # Nothing ends after `end`: a late run starts earlier.
    starts = np.minimum(starts, _ticks(end - duration))
    # Sorted as segments are, by (started_at, id): the id's random half breaks ties.
    rand = rng.integers(0, 2**64, m, dtype=np.uint64)
    order = np.lexsort((rand, starts))
    starts, rand, agent, duration, failed, kind = (
        a[order] for a in (starts, rand, agent, duration, failed, kind)
    )
    ended = starts + duration

    id_bytes = _id_bytes(starts, rand)
    ids = _strings(id_bytes)
    child = rng.random(m) < CHILD_SHARE
    child[:1] = False
    index = np.arange(m)
    root = np.maximum.accumulate(np.where(child, 0, index))
    # A root's trace id is its own: NULL in the lake. Ids stay plain text (all distinct).
    trace_id = ids.take(pa.array(root.astype(np.int32), mask=~child))
    parent_id = ids.take(pa.array((index - 1).astype(np.int32), mask=~child))

    # Two LLM calls (1% of them to a model without a price) around a tool call or memory operation.
    calls = []
    for _ in range(2):
        unpriced = rng.random(m) < fixtures.UNPRICED_SHARE
        prompt = np.maximum(1, np.rint(t.prompt[agent] * np.exp(0.6 * rng.standard_normal(m))))
        completion = np.maximum(
            1, np.rint(t.completion[agent] * np.exp(0.7 * rng.standard_normal(m)))
        )
        cost = np.rint((prompt * t.p_in[agent] + completion * t.p_out[agent]) / COST_TICK)
        cost = np.where(unpriced, 0.0, cost * COST_TICK)
        name = np.where(unpriced, t.unpriced_name, agent)
        calls.append((name, prompt.astype(np.int64), completion.astype(np.int64), cost, unpriced))
    (name0, p0, c0, cost0, unpriced0), (name2, p2, c2, cost2, unpriced2) = calls
    has_tool = t.n_tools[agent] > 0
    tool = t.tool_names[agent, (rng.random(m) * np.maximum(t.n_tools[agent], 1)).astype(np.int64)]
    word = rng.integers(0, t.n_words, m)
    items = rng.integers(0, 40, m)
    priced = ~(unpriced0 & unpriced2)
    prompt_sum, completion_sum = p0 + p2, c0 + c2
    host = rng.integers(0, len(t.hosts), m)
    variant = rng.integers(0, ERROR_VARIANTS, m)
    user, session = _people(rng, starts, root)  # drawn last: the other columns stay as they were

    columns = {
        "id": ids,
        "trace_id": trace_id,
        "parent_id": parent_id,
        "agent_name": _take(t.names, agent),
        "started_at": _floats(starts),
        "ended_at": _floats(ended),
        "duration": _floats(duration),
        "status": _take(t.statuses, failed.astype(np.int64)),
        "error": _take(
            t.errors, (agent * len(t.error_p) + kind) * ERROR_VARIANTS + variant, failed
        ),
        "error_type": _take(t.error_types, kind, failed),
        "kwargs": _take(t.kwargs, agent * t.n_words + word),
        "tags": _take(t.tags, agent, t.tagged[agent]),
        "model": _take(t.models, agent),
        "total_cost": _floats(cost0 + cost2, priced),
        "total_tokens": _ints(prompt_sum + completion_sum),
        "prompt_tokens": _ints(prompt_sum),
        "completion_tokens": _ints(completion_sum),
        "llm_calls": _ints(np.full(m, 2)),
        "tool_calls": _ints(has_tool),
        "unpriced_calls": _ints(unpriced0.astype(np.int64) + unpriced2),
        "host": _take(t.hosts, host),
        "pid": _ints(t.pids[host]),
        "user_id": user,
        "session_id": session,
    }
    executions = _table(EXECUTIONS_SCHEMA, columns, m)

    llm_data = np.where(has_tool, 0, 1)
    middle_data = np.where(has_tool, 2 + word, 2 + t.n_words + items)
    priced_event = _weave(~unpriced0, np.zeros(m, bool), ~unpriced2)
    is_llm = _weave(np.ones(m, bool), np.zeros(m, bool), np.ones(m, bool))
    zeros = np.zeros(m, np.int64)
    events = _table(
        EVENTS_SCHEMA,
        {
            "execution_id": _strings(np.repeat(id_bytes, 3, axis=0)),
            "seq": _ints(np.tile(np.arange(3), m)),
            "type": _take(t.types, _weave(zeros, np.where(has_tool, 1, 2), zeros)),
            "name": _take(t.event_names, _weave(name0, tool, name2)),
            "started_at": _floats(
                _weave(
                    starts + _ticks(0.02 * duration),
                    starts + _ticks(0.48 * duration),
                    starts + _ticks(0.55 * duration),
                )
            ),
            "duration": _floats(
                _weave(_ticks(0.45 * duration), _ticks(0.05 * duration), _ticks(0.42 * duration))
            ),
            "prompt_tokens": _ints(_weave(p0, zeros, p2), is_llm),
            "completion_tokens": _ints(_weave(c0, zeros, c2), is_llm),
            "total_tokens": _ints(_weave(p0 + c0, zeros, p2 + c2), is_llm),
            "cost": _floats(_weave(cost0, np.zeros(m), cost2), priced_event),
            "status": _take(
                t.statuses,
                np.zeros(3 * m, np.int64),
                _weave(np.ones(m, bool), has_tool, np.ones(m, bool)),
            ),
            "data": _take(t.data, _weave(llm_data, middle_data, np.ones(m, np.int64))),
        },
        3 * m,
    )
    return executions, events


_USER_NAMES = pa.array([f"user-{k:04d}" for k in range(1, USERS + 1)], pa.string())
_USER_WEIGHTS = 1.0 / (np.arange(USERS) + 10.0)
_USER_WEIGHTS /= _USER_WEIGHTS.sum()


def _people(rng: Any, starts: Any, root: Any) -> tuple[pa.Array, pa.Array]:
    """The user_id and session_id columns: a root's user and session, its nested runs' too.

    A session is one user's runs within one SESSION_SPAN of the clock, named
    `sess-<user>-<span>`; only the distinct sessions of the chunk become strings.
    """
    m = starts.size
    user = rng.choice(USERS, size=m, p=_USER_WEIGHTS)
    has_user = rng.random(m) < USER_SHARE
    user, has_user = user[root], has_user[root]  # nested runs: their root's
    span = np.floor(starts[root] / SESSION_SPAN).astype(np.int64)
    key = np.where(has_user, span * USERS + user, -1)
    distinct, which = np.unique(key, return_inverse=True)
    names = pa.array(
        [None if k < 0 else f"sess-{k % USERS + 1:04d}-{k // USERS:x}" for k in distinct.tolist()],
        pa.string(),
    )
    return _take(_USER_NAMES, user, has_user), _take(names, which, has_user)


def _table(schema: pa.Schema, columns: dict[str, pa.Array], rows: int) -> pa.Table:
    """A table of `schema`: the given columns, nulls for the rest (e.g. columns added later)."""
    return pa.Table.from_arrays(
        [columns.get(f.name, pa.nulls(rows, f.type)) for f in schema], schema=schema
    )


def _id_bytes(starts: Any, rand: Any) -> Any:
    """Run ids as a (runs, 33) byte matrix: `exec_`, 12 hex digits of the start millisecond, 16 of `rand`."""
    m = starts.size
    millis = (starts * 1000).astype(np.int64) & 0xFFFFFFFFFFFF
    lookup = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty((m, 33), dtype=np.uint8)
    out[:, :5] = np.frombuffer(b"exec_", dtype=np.uint8)
    shifts = np.arange(44, -1, -4, dtype=np.int64)
    out[:, 5:17] = lookup[(millis[:, None] >> shifts[None, :]) & 0xF]
    shifts = np.arange(60, -1, -4, dtype=np.uint64)
    out[:, 17:33] = lookup[((rand[:, None] >> shifts[None, :]) & np.uint64(0xF)).astype(np.int64)]
    return out


def _strings(matrix: Any) -> pa.Array:
    """Each row of a fixed-width byte matrix as one Arrow string."""
    rows, width = matrix.shape
    offsets = np.arange(0, width * (rows + 1), width, dtype=np.int32)
    return pa.StringArray.from_buffers(
        rows, pa.py_buffer(offsets.tobytes()), pa.py_buffer(np.ascontiguousarray(matrix).tobytes())
    )
