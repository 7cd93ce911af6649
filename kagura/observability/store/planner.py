"""The planner: which hours a query reads from rollups and which rows it scans.

An hour is answered from the rollups of the segments that have them when it
lies wholly inside [since, until) and no boundary of the query (a cut, such as
the start of a budget's trailing window) falls inside it. Everything else is
scanned: rows of segments without a rollup, the SQLite tail, and the rows of
segments with rollups in the partial hours at the edges. The SQL that joins the
two halves is `sql/rollups/NAME.sql`, the twin of `sql/NAME.sql`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC
from functools import cache
from pathlib import Path

from kagura.observability.store.engine import sql_dir
from kagura.observability.store.tail import Segment

HOUR = 3600.0


@cache
def rollup_sql(name: str) -> str | None:
    """The text of `sql/rollups/NAME.sql`, or None when NAME has no rollup twin (it scans)."""
    path: Path = sql_dir() / "rollups" / f"{name}.sql"
    return path.read_text(encoding="utf-8") if path.is_file() else None


def rollup_names() -> list[str]:
    """The analytics that read rollups, by name."""
    return sorted(p.stem for p in (sql_dir() / "rollups").glob("*.sql"))


@dataclass
class Plan:
    """What one query reads: rollups of `covered`, raw rows of `raw` and, at the edges, of `rolled`."""

    covered: list[Segment]  # segments whose rollups answer the whole hours
    raw: list[Segment]  # segments without a rollup: scanned
    rolled: list[Segment]  # covered segments that hold rows of partial or cut hours
    cut_hours: list[float]  # starts of hours that hold a cut: scanned, not read from rollups
    edges: tuple[tuple[float, float], ...] = ()  # the [start, end) spans scanned in `rolled`


def plan(
    segments: list[Segment],
    since: float | None,
    until: float | None,
    cuts: tuple[float, ...] = (),
    margin: float = 0.0,
) -> Plan:
    """Split the segments a query over [since, until) needs; `margin`: how long after its
    segment's last run start a row can lie (events of long runs)."""
    wanted = [
        s
        for s in segments
        if (since is None or s.max_started_at + margin >= since)
        and (until is None or s.min_started_at < until)
    ]
    cut_hours = sorted({math.floor(c / HOUR) * HOUR for c in cuts if c is not None})
    edges = [(h, h + HOUR) for h in cut_hours]
    if since is not None and since % HOUR:
        edges.append((since, math.ceil(since / HOUR) * HOUR))
    if until is not None and until % HOUR:
        edges.append((math.floor(until / HOUR) * HOUR, until))
    if since is not None and until is not None and math.ceil(since / HOUR) * HOUR > until:
        edges.append((since, until))  # less than one whole hour: all of it is an edge
    covered = [s for s in wanted if s.rollup_path]
    raw = [s for s in wanted if not s.rollup_path]
    rolled = [
        s
        for s in covered
        if any(s.min_started_at < hi and s.max_started_at + margin >= lo for lo, hi in edges)
    ]
    return Plan(covered, raw, rolled, cut_hours, _merged(edges))


def _merged(spans: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """These [start, end) spans, overlapping or touching ones joined, in order."""
    out: list[tuple[float, float]] = []
    for lo, hi in sorted(spans):
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return tuple(out)


def _offsets(zone: str, moments: list[float]) -> list[float] | None:
    """The zone's UTC offsets in seconds at these moments; None when the zone is unknown."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    try:
        tz = ZoneInfo(zone)
    except Exception:
        return None
    offsets = []
    for moment in moments:
        offset = datetime.fromtimestamp(moment, UTC).astimezone(tz).utcoffset()
        if offset is None:
            return None
        offsets.append(offset.total_seconds())
    return offsets


def whole_hour_zone(zone: str, moments: list[float]) -> bool:
    """Whether local midnights fall on whole UTC hours at these moments (dates can come from hours)."""
    offsets = _offsets(zone, moments)
    return offsets is not None and all(offset % HOUR == 0 for offset in offsets)


def blocks(
    since: float | None,
    until: float | None,
    cut_hours: list[float],
    first: int,
    end: int,
    widths: tuple[int, ...],
) -> tuple[list[tuple[int, int]], list[int]]:
    """The fewest rollup blocks that tile the whole hours of [since, until) (cut hours left out).

    `first`..`end`: the span the rollups hold (no run lies outside it, so a block
    may reach past it); `widths`: the block widths allowed, ascending (the coarser
    levels). Returns the blocks as (index into widths, start), and the hours not
    covered by any block, whose hourly rows are read instead.
    """
    low = -math.inf if since is None else math.ceil(since / HOUR) * HOUR
    high = math.inf if until is None else math.floor(until / HOUR) * HOUR
    cuts = sorted(int(c) for c in cut_hours)
    p = int(max(low, first))
    stop = min(high, end)
    chosen: list[tuple[int, int]] = []
    hours: list[int] = []
    started = False
    while p < stop:
        if p in cuts:
            p += int(HOUR)
            started = True
            continue
        pick = None
        for index in range(len(widths) - 1, -1, -1):
            width = widths[index]
            a = p // width * width
            if a != p and (started or a < low):
                continue
            if a + width > high or any(a <= c < a + width for c in cuts):
                continue
            pick = (index, a)
            break
        if pick is None:
            hours.append(p)
            p += int(HOUR)
        else:
            chosen.append(pick)
            p = pick[1] + widths[pick[0]]
        started = True
    return chosen, hours


def utc_days(zone: str, moments: list[float]) -> bool:
    """Whether local dates are UTC dates at these moments (the zone's offset is zero)."""
    offsets = _offsets(zone, moments)
    return offsets is not None and all(offset == 0 for offset in offsets)
