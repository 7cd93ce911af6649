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
from collections.abc import Callable
from typing import Any

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
    # Each call's run by position (a hash lookup and a take: a third of a join's time);
    # calls whose run is not among `executions` are left out, as an inner join would.
    run = pc.index_in(calls.column("execution_id"), value_set=executions.column("id"))
    found = pc.is_valid(run)
    if pc.all(found).as_py() is False:
        calls, run = calls.filter(found), run.filter(found)
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
            "agent_name": pc.take(executions.column("agent_name"), run),
            "status": pc.take(executions.column("status"), run),
        }
    )
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


# --- coarser grains, kept in memory ------------------------------------------------------

DAY = 86400
# Block widths of the coarser levels: one day, then aligned runs of 2, 4, ... 512 days. Any
# span of whole days is covered by at most two blocks per width, so a query merges a number of
# rows that grows with the log of its span and not with the runs in it.
WIDTHS = tuple(DAY * 2**k for k in range(10))
_SUMS = (
    "runs",
    "failed",
    "unpriced_runs",
    "cost",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "llm_calls",
    "tool_calls",
    "unpriced_calls",
    "duration_count",
    "duration_sum",
    "calls",
    "call_prompt_tokens",
    "call_completion_tokens",
    "call_tokens",
    "call_cost",
    "call_unpriced",
)
_MINS = ("duration_min", "min_started_at")
_MAXES = ("duration_max", "max_started_at")


def coarsen(table: pa.Table, width: int) -> pa.Table:
    """Rollup rows (ROLLUP_SCHEMA) merged into blocks of `width` seconds aligned on the epoch.

    `hour` becomes the block's start; counts and sums add up (NULL stays NULL only
    where every merged row is NULL, as SQL's sum), extremes take the extreme, and
    histograms add their counts bucket by bucket. Rows come sorted by their keys.
    """
    if table.num_rows == 0:
        return ROLLUP_SCHEMA.empty_table()
    block = pc.multiply(pc.divide(table.column("hour"), width), width)
    table = table.set_column(0, "hour", block)
    sums = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
    aggregates: list[tuple[Any, ...]] = [(name, "sum", sums) for name in _SUMS]
    aggregates += [(name, "min") for name in _MINS] + [(name, "max") for name in _MAXES]
    merged = table.group_by(KEYS, use_threads=False).aggregate(aggregates)
    merged = merged.rename_columns(
        [
            name.rsplit("_", 1)[0] if name.endswith(("_sum", "_min", "_max")) else name
            for name in merged.column_names
        ]
    )
    parts = [_keyed(merged)]
    for name in ("duration", "cost"):
        parts.append(_merged_histogram(table, name))
    return _conform(_align(parts)).sort_by([(k, "ascending") for k in KEYS])


def _merged_histogram(table: pa.Table, name: str) -> pa.Table:
    """Per key of `table`: its rows' histograms `name` added up (buckets ascending)."""
    buckets = table.column(f"{name}_buckets").combine_chunks()
    counts = table.column(f"{name}_counts").combine_chunks()
    parents = pc.list_parent_indices(buckets)
    flat = table.select(KEYS).take(parents)
    flat = flat.append_column("bucket", pc.list_flatten(buckets))
    flat = flat.append_column("n", pc.list_flatten(counts))
    summed = flat.group_by([*KEYS, "bucket"], use_threads=False).aggregate([("n", "sum")])
    summed = summed.sort_by([*((k, "ascending") for k in KEYS), ("bucket", "ascending")])
    listed = summed.group_by(KEYS, use_threads=False).aggregate(
        [("bucket", "list"), ("n_sum", "list")]
    )
    listed = listed.rename_columns(
        {"bucket_list": f"{name}_buckets", "n_sum_list": f"{name}_counts"}
    )
    return _keyed(listed)


class Levels:
    """The coarser levels of one manifest version: for each width of WIDTHS, its blocks' rows."""

    def __init__(self, tables: list[pa.Table]):
        self.tables = tables  # tables[i]: rows of blocks WIDTHS[i] wide, `hour` their start
        self.starts = [set(t.column("hour").unique().to_pylist()) for t in tables]
        self.nbytes = sum(t.nbytes for t in tables)
        days = tables[0].column("hour")
        # The span the rollups hold: the first day's start and the last day's end (None: empty).
        self.first: int | None = pc.min(days).as_py() if len(days) else None
        self.end: int | None = pc.max(days).as_py() + DAY if len(days) else None

    def rows(self, blocks: list[tuple[int, int]]) -> list[pa.Table]:
        """The rows of these (level index, block start) blocks."""
        wanted: dict[int, list[int]] = {}
        for level, start in blocks:
            if start in self.starts[level]:
                wanted.setdefault(level, []).append(start)
        return [
            self.tables[level].filter(
                pc.is_in(self.tables[level].column("hour"), pa.array(starts, pa.int64()))
            )
            for level, starts in sorted(wanted.items())
        ]


LEVELS_FILE = "cache/rollup-levels.parquet"  # under the lake; derived, safe to delete


class RollupCache:
    """The rollups of one lake in memory, so a query reads no rollup file it read before.

    Per manifest version (the listed segments with rollups, by id, rollup file
    and its mtime) it keeps the levels of WIDTHS: rows merged per UTC day, then per
    aligned runs of 2, 4, ... days. A new version rebuilds only the blocks that
    hold days of segments added or removed, from those days' hourly rows. Hourly
    rows, needed only for the partial days at a query's edges, are read from the
    files of the segments that hold them, a few segments kept. Memory grows with
    days x agents x models x statuses x buckets, not with runs.

    The levels are also written to LEVELS_FILE (with the version they stand for),
    so a new process starts from them instead of merging every rollup again.
    """

    HOURLY_KEPT = 8
    KEPT = 16  # answers of kept() (tiled rows, health's starting hour) at most

    def __init__(self, writable: bool = True):
        import threading

        self._lock = threading.Lock()
        self._writable = writable
        self._hourly: dict[tuple[str, str, int], pa.Table] = {}
        self._days: dict[tuple[str, str, int], list[int]] = {}  # version: key -> the days it holds
        self._levels: Levels | None = None
        self._loaded = False
        self._kept: dict[tuple, tuple[Levels, Any]] = {}

    def levels(self, lake, segments) -> Levels:
        """The levels over `segments` (each with a rollup file under `lake`)."""
        by_key = {_key(lake, s): s for s in segments}
        with self._lock:
            if self._levels is not None and by_key.keys() == self._days.keys():
                return self._levels
            if not self._loaded:
                self._loaded = True
                self._load(lake)
            added = [k for k in by_key if k not in self._days]
            removed = [k for k in self._days if k not in by_key]
            if self._levels is not None and not added and not removed:
                return self._levels
            # Few added segments (a compaction): their hourly rows are kept for the merge below.
            few = len(added) <= self.HOURLY_KEPT
            hourly = {}
            days = dict(self._days)
            for key in removed:
                del days[key]
            for key in added:
                table = self._hours_of(lake, by_key[key], keep=few)
                held = sorted(set(pc.divide(table.column("hour"), DAY).to_pylist()))
                days[key] = [d * DAY for d in held]
                if few:
                    hourly[key] = table
            if self._levels is None:
                dirty = None
            else:
                dirty = set()
                for key in added:
                    dirty.update(days[key])
                for key in removed:
                    dirty.update(self._days[key])
            self._levels = self._build(lake, by_key, days, dirty, hourly)
            self._days = days
            for key in [k for k in self._hourly if k not in by_key]:
                del self._hourly[key]
            if self._writable:
                self._save(lake)
            return self._levels

    def _build(self, lake, by_key: dict, days: dict, dirty: set[int] | None, read: dict) -> Levels:
        """Levels over the segments `by_key`; only the blocks holding `dirty` days (None: all) anew."""
        if dirty is None:
            touching = list(by_key)
        else:
            touching = [k for k in by_key if dirty.intersection(days[k])]
        # Segment by segment, so only one segment's hourly rows are held at a time.
        merged = []
        for key in touching:
            rows = read.pop(key) if key in read else self._hours_of(lake, by_key[key], keep=False)
            if dirty is not None:
                day_of = pc.multiply(pc.divide(rows.column("hour"), DAY), DAY)
                rows = rows.filter(pc.is_in(day_of, pa.array(sorted(dirty), pa.int64())))
            merged.append(coarsen(rows, DAY))
        rows = concat(merged)
        previous = self._levels if dirty is not None else None
        tables: list[pa.Table] = []
        below = rows
        for index, width in enumerate(WIDTHS):
            if dirty is not None and index:
                blocks = pa.array(sorted({d // width * width for d in dirty}), pa.int64())
                starts = pc.multiply(pc.divide(below.column("hour"), width), width)
                fresh = coarsen(below.filter(pc.is_in(starts, blocks)), width)
            else:
                fresh = coarsen(below, width)
            if previous is not None:
                kept = previous.tables[index]
                blocks = pa.array(sorted({d // width * width for d in dirty or ()}), pa.int64())
                kept = kept.filter(pc.invert(pc.is_in(kept.column("hour"), blocks)))
                fresh = concat([kept, fresh]).sort_by([(k, "ascending") for k in KEYS])
            tables.append(fresh)
            below = fresh
        return Levels(tables)

    def tiled(
        self,
        lake,
        segments,
        levels: Levels,
        blocks: list[tuple[int, int]],
        hours: list[int],
        margin: float = 0.0,
    ) -> pa.Table:
        """The rows of these blocks of `levels` and of these hours, as one table (kept)."""
        return self.kept(
            levels,
            ("tiled", tuple(blocks), tuple(hours), margin),
            lambda: concat(levels.rows(blocks) + self.hours(lake, segments, hours, margin)),
        )

    def kept(self, levels: Levels, key: tuple, make: Callable[[], Any]) -> Any:
        """`make()`, kept by `key` while `levels` is the current version: a question asked
        again (the same window, the same hour) is answered without the work. A few answers
        are kept, only of that version (an older one's would keep its levels alive)."""
        with self._lock:
            held = self._kept.get(key)
        if held is not None and held[0] is levels:
            return held[1]
        value = make()
        with self._lock:
            self._kept = {k: v for k, v in self._kept.items() if v[0] is levels}
            self._kept[key] = (levels, value)
            while len(self._kept) > self.KEPT:
                self._kept.pop(next(iter(self._kept)))
        return value

    def hours(self, lake, segments, hours: list[int], margin: float = 0.0) -> list[pa.Table]:
        """The hourly rows of `hours` in these segments' rollup files; `margin`: how long after
        its segment's last run start a row can lie (LLM calls of long runs)."""
        if not hours:
            return []
        import bisect

        hours = sorted(hours)
        wanted = pa.array(hours, pa.int64())
        out = []
        for seg in segments:
            # the first wanted hour that ends after the segment's first run starts
            at = bisect.bisect_right(hours, seg.min_started_at - HOUR)
            if at == len(hours) or hours[at] > seg.max_started_at + margin:
                continue
            table = self.hourly(lake, seg)
            out.append(table.filter(pc.is_in(table.column("hour"), wanted)))
        return out

    def hourly(self, lake, seg) -> pa.Table:
        """A segment's hourly rollup rows (kept among the newest few read)."""
        with self._lock:
            return self._hours_of(lake, seg)

    def _hours_of(self, lake, seg, keep: bool = True) -> pa.Table:
        """A segment's hourly rollup rows (the newest few segments read are kept)."""
        key = _key(lake, seg)
        table = self._hourly.pop(key, None)
        if table is None:
            import pyarrow.parquet as pq

            # ParquetFile reads one known file without the dataset machinery read_table
            # starts (about 0.1 s of a new process's first read).
            table = pq.ParquetFile(lake / seg.rollup_path).read()
            table = table.select(ROLLUP_SCHEMA.names).cast(ROLLUP_SCHEMA)
        if keep:
            self._hourly[key] = table  # newest last
            while len(self._hourly) > self.HOURLY_KEPT:
                self._hourly.pop(next(iter(self._hourly)))
        return table

    def _load(self, lake) -> None:
        """Start from the levels a process wrote to LEVELS_FILE (nothing when absent or unreadable)."""
        import json

        import pyarrow.parquet as pq

        try:
            table = pq.ParquetFile(lake / LEVELS_FILE).read()
            meta = json.loads(table.schema.metadata[b"kagura.rollup_versions"])
            days = {(k[0], k[1], k[2]): [int(d) for d in k[3]] for k in meta}
            tables = _split_levels(table)
        except Exception:  # a missing, damaged or older file: merged anew from the rollups
            return
        self._levels, self._days = Levels(tables), days

    def _save(self, lake) -> None:
        """Write the levels with the version they stand for: a temporary file, then a rename."""
        import json
        import os

        import pyarrow.parquet as pq

        assert self._levels is not None
        meta = json.dumps([[*k, d] for k, d in sorted(self._days.items())])
        parts = [
            t.append_column("width", pa.repeat(pa.scalar(w, pa.int64()), t.num_rows))
            if t.num_rows
            else t.append_column("width", pa.array([], pa.int64()))
            for t, w in zip(self._levels.tables, WIDTHS, strict=True)
        ]
        table = pa.concat_tables(parts)
        table = table.replace_schema_metadata({"kagura.rollup_versions": meta})
        path = lake / LEVELS_FILE
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(mode=0o700, exist_ok=True)
            pq.write_table(table, tmp, compression="zstd")
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)  # a cache: a store that can't write it merges anew


def _key(lake, seg) -> tuple[str, str, int]:
    """A segment's rollup as the levels know it: segment id, rollup file, and the file's mtime
    (the doctor rebuilds a wrong rollup under the same name)."""
    import os

    # os.stat of a joined string: a tenth of pathlib's cost, paid per segment per query
    return seg.id, seg.rollup_path, os.stat(os.path.join(lake, seg.rollup_path)).st_mtime_ns


def _split_levels(table: pa.Table) -> list[pa.Table]:
    """The levels of a saved LEVELS_FILE table, one per WIDTHS entry.

    `RollupCache._save` writes them one after another in WIDTHS order, so each is
    a zero-copy slice (a filter per width cost a new process about 50 ms at 10M
    runs); a file whose widths are out of order is filtered instead.
    """
    import numpy as np

    width = table.column("width")
    rows = table.select(ROLLUP_SCHEMA.names)
    values = width.to_numpy()
    if len(values) and bool((np.diff(values) < 0).any()):
        return [rows.filter(pc.equal(width, w)).cast(ROLLUP_SCHEMA) for w in WIDTHS]
    starts = np.searchsorted(values, WIDTHS, "left")
    ends = np.searchsorted(values, WIDTHS, "right")
    return [
        rows.slice(int(a), int(b - a)).cast(ROLLUP_SCHEMA)
        for a, b in zip(starts, ends, strict=True)
    ]


def concat(tables: list[pa.Table]) -> pa.Table:
    """The rows of these rollup tables as one (an empty rollup table when none has rows)."""
    tables = [t for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else ROLLUP_SCHEMA.empty_table()
