"""The SQLite tail's schema, one named migration at a time.

A store at schema version N (its `PRAGMA user_version`) has run the first N functions of
MIGRATIONS, in order; opening it where it can be written runs the rest (`upgrade`), in
one write transaction, so a store is never left half-migrated.

To change the schema (STYLE.md: the schema changes only by appending a migration):

1. Write `def m00N_what_it_does(con)` below the last one: N is the next number, the name
   says what it does (`m003_add_session_id`). Its body runs SQL through `_run`, which
   takes statements one by one inside the caller's transaction (never `executescript`,
   which commits), e.g. `_run(con, "ALTER TABLE executions ADD COLUMN session_id TEXT")`.
   Since m006 `executions` and `events` are views over two generations of tables: a new
   column goes into both tables (`executions_0`, `executions_1`), and the views' INSTEAD OF
   triggers (which name every column) are dropped and made again with it.
2. Append it to MIGRATIONS. `tests/observability/test_tail.py` checks that the names are
   numbered in order and that an empty database migrates to the columns of `rows.py`;
   `tests/reliability/test_upgrade.py` opens a store of the previous version.
3. Add the column to `EXECUTION_COLUMNS` / `EVENT_COLUMNS` in `rows.py` at the position
   the migration leaves it (new columns go last), so SQLite, Arrow and Parquet agree.
   Parquet segments written before it lack the column: the lake's readers (`engine.py`'s
   `read_parquet`, the sandbox's Arrow dataset) must read those as null, and a test
   should query a lake holding an old segment.
4. Never edit, rename, reorder or remove a migration that has shipped: a store out there
   has run it. Old kagura refuses a store written by a newer one (SchemaTooNewError).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable


def _run(con: sqlite3.Connection, text: str) -> None:
    """Run `text`, statements separated by ';' at a line's end, inside the open transaction."""
    for statement in text.split(";\n"):
        if statement.strip():
            con.execute(statement)


# Migrations are frozen text: never edit one that has shipped, append a new one.
_M001 = """
CREATE TABLE executions (
  id TEXT PRIMARY KEY, trace_id TEXT, parent_id TEXT, agent_name TEXT NOT NULL,
  started_at REAL NOT NULL, ended_at REAL, duration REAL, status TEXT NOT NULL,
  error TEXT, error_type TEXT, kwargs TEXT, tags TEXT, model TEXT, total_cost REAL,
  total_tokens INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
  llm_calls INTEGER, tool_calls INTEGER, unpriced_calls INTEGER, metrics TEXT,
  host TEXT, pid INTEGER
);
CREATE INDEX executions_started_at ON executions (started_at);
CREATE TABLE events (
  execution_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, name TEXT,
  started_at REAL NOT NULL, duration REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
  total_tokens INTEGER, cost REAL, status TEXT, error TEXT, data TEXT,
  PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;
-- The lake's manifest: one row per segment (a pair of Parquet files).
CREATE TABLE segments (
  id TEXT PRIMARY KEY, date TEXT NOT NULL, executions_path TEXT NOT NULL,
  events_path TEXT NOT NULL, min_started_at REAL NOT NULL, max_started_at REAL NOT NULL,
  executions INTEGER NOT NULL, events INTEGER NOT NULL, bytes INTEGER NOT NULL,
  created_at REAL NOT NULL
);
-- Files taken out of the manifest, deleted once no reader can still hold them.
CREATE TABLE retired_files (path TEXT PRIMARY KEY, retired_at REAL NOT NULL);
"""

# Every write gives its rows a new, never reused `rev`, so a reader can fetch
# just what changed since its last snapshot; `generation` counts the changes
# that remove or rewrite tail rows in place (compaction, retention), after
# which readers read the tail whole again.
_M002 = """
CREATE TABLE executions_v2 (
  rev INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE, trace_id TEXT, parent_id TEXT, agent_name TEXT NOT NULL,
  started_at REAL NOT NULL, ended_at REAL, duration REAL, status TEXT NOT NULL,
  error TEXT, error_type TEXT, kwargs TEXT, tags TEXT, model TEXT, total_cost REAL,
  total_tokens INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
  llm_calls INTEGER, tool_calls INTEGER, unpriced_calls INTEGER, metrics TEXT,
  host TEXT, pid INTEGER
);
INSERT INTO executions_v2 (id, trace_id, parent_id, agent_name, started_at, ended_at, duration,
  status, error, error_type, kwargs, tags, model, total_cost, total_tokens, prompt_tokens,
  completion_tokens, llm_calls, tool_calls, unpriced_calls, metrics, host, pid)
SELECT id, trace_id, parent_id, agent_name, started_at, ended_at, duration,
  status, error, error_type, kwargs, tags, model, total_cost, total_tokens, prompt_tokens,
  completion_tokens, llm_calls, tool_calls, unpriced_calls, metrics, host, pid
FROM executions ORDER BY started_at;
DROP TABLE executions;
ALTER TABLE executions_v2 RENAME TO executions;
CREATE TABLE events_v2 (
  rev INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, name TEXT,
  started_at REAL NOT NULL, duration REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
  total_tokens INTEGER, cost REAL, status TEXT, error TEXT, data TEXT,
  UNIQUE (execution_id, seq)
);
INSERT INTO events_v2 (execution_id, seq, type, name, started_at, duration, prompt_tokens,
  completion_tokens, total_tokens, cost, status, error, data)
SELECT execution_id, seq, type, name, started_at, duration, prompt_tokens,
  completion_tokens, total_tokens, cost, status, error, data
FROM events ORDER BY execution_id, seq;
DROP TABLE events;
ALTER TABLE events_v2 RENAME TO events;
CREATE TABLE state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO state (key, value) VALUES ('generation', 0);
"""

# The tail as two generations of tables, so that compaction empties a whole table (SQLite
# frees its pages) instead of deleting rows one by one through their indexes. Writers
# append to the live generation (`state.live`); compaction seals it (the other becomes
# live, taking the runs not yet settled), moves the sealed tables into the lake and
# empties them in the transaction that lists the new segments. The views `executions` and
# `events` show both generations, so every reader reads them as before; their triggers
# send other writers' INSERT, UPDATE and DELETE to the tables (the store's own hot paths
# write the tables directly: tail.py). A later migration that adds a column adds it to
# both tables of the relation; the views read `*` and follow.
_M006 = """
ALTER TABLE executions RENAME TO executions_0;
ALTER TABLE events RENAME TO events_0;
CREATE TABLE executions_1 (
  rev INTEGER PRIMARY KEY AUTOINCREMENT,
  id TEXT NOT NULL UNIQUE, trace_id TEXT, parent_id TEXT, agent_name TEXT NOT NULL,
  started_at REAL NOT NULL, ended_at REAL, duration REAL, status TEXT NOT NULL,
  error TEXT, error_type TEXT, kwargs TEXT, tags TEXT, model TEXT, total_cost REAL,
  total_tokens INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,
  llm_calls INTEGER, tool_calls INTEGER, unpriced_calls INTEGER, metrics TEXT,
  host TEXT, pid INTEGER, session_id TEXT, user_id TEXT, metadata TEXT
);
CREATE TABLE events_1 (
  rev INTEGER PRIMARY KEY AUTOINCREMENT,
  execution_id TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT NOT NULL, name TEXT,
  started_at REAL NOT NULL, duration REAL, prompt_tokens INTEGER, completion_tokens INTEGER,
  total_tokens INTEGER, cost REAL, status TEXT, error TEXT, data TEXT,
  UNIQUE (execution_id, seq)
);
CREATE VIEW executions AS SELECT * FROM executions_0 UNION ALL SELECT * FROM executions_1;
CREATE VIEW events AS SELECT * FROM events_0 UNION ALL SELECT * FROM events_1;
INSERT INTO state (key, value) VALUES ('live', 0)
"""


# Frozen column lists of the tail's two relations as m006 found them.
_M006_EXEC = (
    "id, trace_id, parent_id, agent_name, started_at, ended_at, duration, status, error, "
    "error_type, kwargs, tags, model, total_cost, total_tokens, prompt_tokens, completion_tokens, "
    "llm_calls, tool_calls, unpriced_calls, metrics, host, pid, session_id, user_id, metadata"
)
_M006_EVENT = (
    "execution_id, seq, type, name, started_at, duration, prompt_tokens, completion_tokens, "
    "total_tokens, cost, status, error, data"
)
_LIVE = "(SELECT value FROM state WHERE key = 'live')"


def _m006_triggers(view: str, columns: str, key: str) -> list[str]:
    """INSTEAD OF triggers that write through the view `view` into its two tables.

    An insert goes to the live table and takes the row of the same key out of the sealed
    one (so that a run is never in both); updates and deletes reach either table by rev.
    """
    new = ", ".join(f"NEW.{c}" for c in columns.split(", "))
    same = " AND ".join(f"{c} = NEW.{c}" for c in key.split(", "))
    insert = " ".join(
        f"DELETE FROM {view}_{1 - g} WHERE {same} AND {_LIVE} = {g}; "
        f"INSERT INTO {view}_{g} ({columns}) SELECT {new} WHERE {_LIVE} = {g};"
        for g in (0, 1)
    )
    update = " ".join(
        f"UPDATE {view}_{g} SET ({columns}) = ({new}) WHERE rev = OLD.rev;" for g in (0, 1)
    )
    delete = " ".join(f"DELETE FROM {view}_{g} WHERE rev = OLD.rev;" for g in (0, 1))
    return [
        f"CREATE TRIGGER {view}_insert INSTEAD OF INSERT ON {view} BEGIN {insert} END",
        f"CREATE TRIGGER {view}_update INSTEAD OF UPDATE ON {view} BEGIN {update} END",
        f"CREATE TRIGGER {view}_delete INSTEAD OF DELETE ON {view} BEGIN {delete} END",
    ]


def m001_initial(con: sqlite3.Connection) -> None:
    """Executions, events, the lake's manifest (segments) and the files it retired."""
    _run(con, _M001)


def m002_rev(con: sqlite3.Connection) -> None:
    """A never reused `rev` on every row, and the `generation` readers watch."""
    _run(con, _M002)


def m003_session_user_metadata(con: sqlite3.Connection) -> None:
    """Who and what a run belongs to: session_id, user_id and metadata (kagura.context)."""
    _run(
        con,
        """
ALTER TABLE executions ADD COLUMN session_id TEXT;
ALTER TABLE executions ADD COLUMN user_id TEXT;
ALTER TABLE executions ADD COLUMN metadata TEXT
""",
    )


def m004_scores(con: sqlite3.Connection) -> None:
    """Scores given to runs: append-only rows, kept in SQLite (compaction leaves them)."""
    _run(
        con,
        """
CREATE TABLE scores (
  rev INTEGER PRIMARY KEY AUTOINCREMENT, execution_id TEXT NOT NULL, name TEXT NOT NULL,
  kind TEXT NOT NULL, value REAL, label TEXT, comment TEXT, created_at REAL NOT NULL
);
CREATE INDEX scores_execution ON scores (execution_id)
""",
    )


def m005_segment_rollups(con: sqlite3.Connection) -> None:
    """Each segment's rollup file (per-hour counts, sums, histograms), listed with it; NULL for
    segments written before rollups (the planner scans those; compaction and the doctor build them)."""
    _run(con, "ALTER TABLE segments ADD COLUMN rollup_path TEXT")


def m006_tail_generations(con: sqlite3.Connection) -> None:
    """The tail in two generations of tables (executions_0/1, events_0/1) behind views of the
    old names: compaction empties a sealed generation whole instead of deleting its rows."""
    _run(con, _M006)
    for trigger in _m006_triggers("executions", _M006_EXEC, "id") + _m006_triggers(
        "events", _M006_EVENT, "execution_id, seq"
    ):
        con.execute(trigger)


Migration = Callable[[sqlite3.Connection], None]

# Append only: a store at version N has run the first N of these.
MIGRATIONS: tuple[Migration, ...] = (
    m001_initial,
    m002_rev,
    m003_session_user_metadata,
    m004_scores,
    m005_segment_rollups,
    m006_tail_generations,
)
SCHEMA_VERSION = len(MIGRATIONS)


def upgrade(con: sqlite3.Connection, version: int) -> list[str]:
    """Run the migrations after `version` inside the caller's write transaction.

    Returns the names of those it ran, in order.
    """
    ran = []
    for migration in MIGRATIONS[version:]:
        migration(con)
        ran.append(migration.__name__)
    return ran
