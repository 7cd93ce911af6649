"""Options shared by every `kagura monitor` command, and the parsers behind them.

Options are declared once here (as `Annotated` types) and reused by the monitor,
analytics and doctor commands. Parsers raise `UsageError` (exit 2) or `NotFound`
(exit 1); the top-level group turns them into one line on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from kagura.observability import timespec
from kagura.observability.timespec import TimeSpecError

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.eventstore import EventStore


class CliError(Exception):
    """An error the CLI reports as one line; `exit_code` is what the process returns."""

    exit_code = 1


class UsageError(CliError):
    """The command line asks for something malformed (exit code 2)."""

    exit_code = 2


class NotFound(CliError):
    """Something asked for is not there: no telemetry yet, an unknown id (exit code 1)."""

    exit_code = 1


# --- shared options -----------------------------------------------------------

AgentOpt = Annotated[
    str | None,
    typer.Option(
        "--agent", "-a", help="Only this agent (exact name, or a glob such as 'project_a_*')."
    ),
]
StatusOpt = Annotated[
    str | None,
    typer.Option(
        "--status",
        "-s",
        help="Only runs with this status: completed, failed, running, cancelled, abandoned.",
    ),
]
# Beyond this a limit means "all" anyway; larger values overflow the query engine.
MAX_LIMIT = 1_000_000_000
LimitOpt = Annotated[
    int, typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="At most this many rows.")
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since",
        help="From this time: unix seconds, 2024-05-01, 2024-05-01T14:00, or an age: 30min, 24h, 7d, 3mo.",
    ),
]
# --since of the commands that look at a month by default (trend, report): default "30d".
MonthSinceOpt = Annotated[
    str | None,
    typer.Option("--since", help="From this time (default 30d ago; same forms as everywhere)."),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until",
        help="Up to this time (same forms as --since; a bare date means the end of that day).",
    ),
]
DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db", help="Telemetry database (default: $KAGURA_HOME/telemetry.db).", dir_okay=False
    ),
]
LakeOpt = Annotated[
    str | None,
    typer.Option(
        "--lake",
        help="A lake many hosts share (s3://bucket/prefix or a folder; default: $KAGURA_LAKE): read every host's runs.",
    ),
]
HostOpt = Annotated[
    str | None,
    typer.Option("--host", help="With a shared lake: only these host ids (comma-separated)."),
]
JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print JSON (stable keys) instead of tables.")
]
RefreshOpt = Annotated[
    float, typer.Option("--refresh", "-r", min=0.1, help="Seconds between refreshes.")
]
OnceOpt = Annotated[bool, typer.Option("--once", help="Render one frame and exit.")]
SessionOpt = Annotated[
    str | None, typer.Option("--session", help="Only runs of this session (kagura.context).")
]
UserOpt = Annotated[
    str | None, typer.Option("--user", help="Only runs of this user (kagura.context).")
]
TagOpt = Annotated[
    str | None,
    typer.Option(
        "--tag", help="Only runs with this tag: a label (beta) or key=value (team=search)."
    ),
]


def reading(
    ctx: typer.Context,
    agent: str | None,
    db: Path | None,
    session: str | None = None,
    user: str | None = None,
    tag: str | None = None,
    *,
    exact: bool = False,
) -> tuple[EventStore, str | None]:
    """The store a command reads, and its --agent.

    --agent and --db come from the command or its group (`inherited`); the agent
    must have run (`require_agent`); the store scans every run with --exact and
    is narrowed to --session, --user and --tag (`scoped`).
    """
    agent, db = inherited(ctx, "agent", agent), inherited(ctx, "db", db)
    store = open_store(db)
    store.exact = exact
    require_agent(store, agent, db)
    return scoped(store, session, user, tag), agent


def scoped(store: EventStore, session: str | None, user: str | None, tag: str | None) -> EventStore:
    """`store` narrowed to `--session`, `--user` and `--tag` (itself when none is given)."""
    if session is None and user is None and tag is None:
        return store
    for option, value in (("--session", session), ("--user", user), ("--tag", tag)):
        if value is not None and not value.strip():
            raise UsageError(f"{option} needs a value")
    return store.where(session_id=session, user_id=user, tag=tag)


ExactOpt = Annotated[
    bool,
    typer.Option(
        "--exact", help="Scan every run instead of reading rollups (exact percentiles, slower)."
    ),
]
# The footer under answers whose percentiles came from rollups (`approx` true in --json).
APPROX_NOTE = (
    "[dim]Percentiles read from rollups: within 1% of exact (--exact scans every run).[/dim]"
)


# --- time parsing ---------------------------------------------------------------
# One parser (kagura.observability.timespec) for every time and span, here and in
# the Python API; these wrappers turn its errors into usage errors (exit 2).


def parse_time(
    value: str | None,
    option: str = "--since",
    *,
    end_of_day: bool = False,
    now: float | None = None,
) -> float | None:
    """Epoch seconds for a --since/--until value; None stays None.

    Naive dates and times are local time; a bare date is the start of that day,
    or the start of the next one when `end_of_day` (so `--until 2024-05-01`
    includes that day).
    """
    try:
        return timespec.parse_moment(value, option, end_of_day=end_of_day, now=now)
    except TimeSpecError as error:
        raise UsageError(str(error)) from None


def parse_window(since: str | None, until: str | None) -> tuple[float | None, float | None]:
    """(since, until) epoch seconds from the two options, checked to be in order."""
    start = parse_time(since, "--since")
    end = parse_time(until, "--until", end_of_day=True)
    if start is not None and end is not None and start >= end:
        raise UsageError("--since must be before --until")
    return start, end


def parse_span(value: str, option: str) -> float:
    """Seconds in a span such as 90min, 36h, 2d, 1w or 3mo; UsageError otherwise."""
    try:
        return timespec.parse_span(value, option)
    except TimeSpecError as error:
        raise UsageError(str(error)) from None


def parse_age(value: str, option: str = "--older-than", *, now: float | None = None) -> float:
    """The cut-off (epoch seconds) for an age such as 30d or an earlier time; never now or later."""
    try:
        return timespec.parse_cutoff(value, option, now=now)
    except TimeSpecError as error:
        raise UsageError(str(error)) from None


def check_status(status: str | None) -> str | None:
    """`status` lower-cased if it is a known status, else a UsageError listing them."""
    if status is None:
        return None
    from kagura.observability.store.rows import STATUSES

    value = status.strip().lower()
    if value not in STATUSES:
        raise UsageError(f"unknown --status {status!r}; use one of: {', '.join(STATUSES)}")
    return value


def check_choice(value: str, choices: tuple[str, ...] | list[str], option: str) -> str:
    """`value` lower-cased if it is one of `choices`, else a UsageError listing them."""
    lowered = value.strip().lower()
    if lowered not in choices:
        raise UsageError(f"unknown {option} {value!r}; use one of: {', '.join(choices)}")
    return lowered


# --- the store ----------------------------------------------------------------


def db_path(db: Path | None) -> Path:
    """The database the command reads: --db, else $KAGURA_HOME/telemetry.db."""
    if db is not None:
        return Path(db).expanduser()
    from kagura.config import default_db_path

    return default_db_path()


def no_telemetry(path: Path) -> NotFound:
    """The error for a store that does not exist yet."""
    return NotFound(f"No telemetry yet at {path}: run an agent or `kagura demo`")


def open_store(db: Path | None) -> EventStore:
    """The EventStore at --db (or the default); NotFound when there is no telemetry yet.

    With a shared lake (--lake or KAGURA_LAKE) and no store here, the fleet is
    read from the lake alone.
    """
    from kagura.observability.eventstore import EventStore
    from kagura.observability.store.shared_lake import lake_url

    path = db_path(db)
    if not path.exists() and db is None and lake_url() is not None:
        return EventStore(":memory:")
    if not path.exists():
        raise no_telemetry(path)
    if path.is_dir():
        raise UsageError(f"--db {path} is a folder; give the telemetry database file")

    store = EventStore(path)
    if store.read_only:  # said once, on stderr, so --json output stays clean
        sys.stderr.write(f"Note: {path} is read-only here; reading it without writing\n")
    return store


def use_lake(lake: str | None, host: str | None) -> None:
    """Make --lake and --host this process's KAGURA_LAKE and KAGURA_LAKE_HOSTS (every store reads them)."""
    import os

    from kagura.observability.errors import StoreError
    from kagura.observability.store.shared_lake import HOSTS_ENV, LAKE_ENV, SharedLake, host_filter

    if lake is not None:
        try:
            SharedLake(lake)  # a malformed URL stops here, before any store opens
        except StoreError as error:
            raise UsageError(str(error)) from None
        os.environ[LAKE_ENV] = lake
    if host is not None:
        try:
            host_filter(host)
        except StoreError as error:
            raise UsageError(str(error)) from None
        os.environ[HOSTS_ENV] = host


def require_agent(store: EventStore, agent: str | None, db: Path | None) -> None:
    """NotFound (exit 1) when --agent names or matches no agent that ever ran.

    The one rule for every command: an unknown agent is an error, before any
    output (tables and --json alike); a known agent with no runs in the window
    gives an empty result and exit 0.
    """
    if agent is None:
        return
    from fnmatch import fnmatchcase

    names = store.agent_names()
    if any(name == agent or fnmatchcase(name, agent) for name in names):
        return
    known = ", ".join(names[:8]) + (" ..." if len(names) > 8 else "")
    hint = f"known agents: {known}" if names else "no agent has run yet"
    raise NotFound(f"No runs of agent {agent!r} in {db_path(db)}; {hint}")


# --- output -------------------------------------------------------------------


def print_json(value: Any) -> None:
    """Print `value` as indented, strict JSON on stdout (dates as ISO text, NaN/inf as null)."""
    from kagura.observability.render.report import plain

    sys.stdout.write(json.dumps(plain(value), indent=2, ensure_ascii=False, default=str) + "\n")


def console(stderr: bool = False):
    """A rich Console for command output (NO_COLOR and pipes handled by rich)."""
    import os

    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    # Piped output is read by grep and scripts: do not cut names to rich's default 80 columns.
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, width=width)


def inherited(ctx: typer.Context, name: str, value: Any) -> Any:
    """`value`, or the same option given to the group (`kagura monitor --db X list`)."""
    if value is not None:
        return value
    parent = ctx.parent
    while parent is not None:
        if parent.params.get(name) is not None:
            return parent.params[name]
        parent = parent.parent
    return None
