"""The newest rows of the lake, decoded once: the newest runs are asked for again and again.

A lake file never changes once written, so the row groups at the end of the
newest segment's executions file can be decoded once and kept while it stays the
newest. `get_executions` (sql/recent_executions.sql) then reads the newest runs
from memory instead of decompressing every column of those row groups at each
call; any other query, and a window reaching past the rows kept, reads the file.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from kagura.observability.store.tail import Segment

KEPT_ROWS = 65_536  # rows decoded and kept at most (about 10-30 MB)


class NewestRows:
    """The last row groups of one segment's executions file, decoded, from its end backwards."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._segment: str | None = None
        self._rows: pa.Table | None = None
        self._above = float("inf")  # every row of the file started after this is in _rows
        self._last: tuple[float, pa.Table] | None = None  # the last answer, by its `low`

    def since(self, lake: Path, seg: Segment, low: float) -> pa.Table | None:
        """The rows of `seg` started at or after `low`, from memory (decoded now if needed);
        None when they would be more than KEPT_ROWS."""
        with self._lock:
            if self._segment != seg.id:
                self._segment, self._rows, self._above = seg.id, None, float("inf")
                self._last = None
            if self._last is not None and self._last[0] == low:
                return self._last[1]  # the same table: the runner registers it once
            if low <= self._above and not self._read(lake, seg, low):
                return None
            rows = self._rows
            assert rows is not None
            answer = rows.filter(pc.greater_equal(rows.column("started_at"), low))
            self._last = (low, answer)
            return answer

    def _read(self, lake: Path, seg: Segment, low: float) -> bool:
        """Decode the last row groups, enough that every row started at or after `low` is
        among them (by the row groups' statistics); False if they hold too many rows."""
        import pyarrow.parquet as pq

        file = pq.ParquetFile(lake / seg.executions_path)
        meta = file.metadata
        column = meta.schema.to_arrow_schema().get_field_index("started_at")
        ceilings: list[float] = []  # ceilings[i]: the latest start in row groups 0..i
        for index in range(meta.num_row_groups):
            stats = meta.row_group(index).column(column).statistics
            if stats is None or not stats.has_min_max:
                return False
            ceilings.append(max(stats.max, ceilings[-1]) if ceilings else stats.max)
        first, rows = meta.num_row_groups, 0
        while first > 0 and ceilings[first - 1] >= low:
            first -= 1
            rows += meta.row_group(first).num_rows
            if rows > KEPT_ROWS:
                return False
        if first == meta.num_row_groups:
            first -= 1  # nothing starts after `low`: keep the last row group all the same
        if first < 0:
            return False  # an empty file
        self._rows = file.read_row_groups(list(range(first, meta.num_row_groups)))
        self._above = ceilings[first - 1] if first else float("-inf")
        return True
