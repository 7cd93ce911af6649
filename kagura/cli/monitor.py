"""`kagura monitor`: the live view, history, stats, traces, cost, compaction and pruning.

Each command parses its options, asks the store (through the Dashboard), and
prints JSON or a rich rendering. The analytics and doctor commands join this
group through their `register(monitor_app)` hooks.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from kagura.cli import analytics, doctor, scores, search
from kagura.cli.options import (
    APPROX_NOTE,
    MAX_LIMIT,
    AgentOpt,
    DbOpt,
    ExactOpt,
    HostOpt,
    JsonOpt,
    LakeOpt,
    LimitOpt,
    NotFound,
    OnceOpt,
    RefreshOpt,
    SessionOpt,
    SinceOpt,
    StatusOpt,
    TagOpt,
    UntilOpt,
    UsageError,
    UserOpt,
    check_choice,
    check_status,
    console,
    db_path,
    inherited,
    no_telemetry,
    open_store,
    parse_age,
    parse_window,
    print_json,
    reading,
    require_agent,
    use_lake,
)

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.render.dashboard import Dashboard

monitor_app = typer.Typer(
    name="monitor",
    help="Watch and query agent telemetry. With no command: the live view (Ctrl+C exits).",
    invoke_without_command=True,
    no_args_is_help=False,
    rich_markup_mode=None,  # plain help: rich formatting would double `kagura --help` time
    context_settings={"help_option_names": ["-h", "--help"]},
)

GROUPS = ("agent", "date", "model", "user", "session", "tag")


def dashboard(db: Path | None) -> Dashboard:
    """A Dashboard over the store at --db (NotFound when there is no telemetry yet)."""
    from kagura.observability.render.dashboard import Dashboard

    return Dashboard(open_store(db), console=console())


def _wait_for_store(path: Path, refresh: float) -> bool:
    """Wait (showing why) until the database exists; False when the user pressed Ctrl+C."""
    from rich.live import Live
    from rich.text import Text

    message = Text(
        f"No telemetry yet at {path}: run an agent or `kagura demo`. Waiting... (Ctrl+C exits)",
        style="yellow",
    )
    try:
        with Live(message, console=console(), auto_refresh=False, transient=True):
            while not path.exists():
                time.sleep(refresh)
    except KeyboardInterrupt:
        return False
    return True


def live_view(agent: str | None, refresh: float, db: Path | None, once: bool) -> None:
    """Run the live view (or print one frame with `once`)."""
    path = db_path(db)
    if not path.exists():
        if once:
            raise no_telemetry(path)
        if not _wait_for_store(path, refresh):
            return
    board = dashboard(db)
    require_agent(board.store, agent, db)
    board.show_live(agent_name=agent, refresh_rate=refresh, once=once)


@monitor_app.callback(invoke_without_command=True)
def monitor(
    ctx: typer.Context,
    agent: AgentOpt = None,
    refresh: RefreshOpt = 1.0,
    db: DbOpt = None,
    once: OnceOpt = False,
    lake: LakeOpt = None,
    host: HostOpt = None,
) -> None:
    """Watch and query agent telemetry. With no command: the live view of recent runs (Ctrl+C exits)."""
    use_lake(lake, host)
    if ctx.invoked_subcommand is None:
        live_view(agent, refresh, db, once)


@monitor_app.command()
def live(
    ctx: typer.Context,
    agent: AgentOpt = None,
    refresh: RefreshOpt = 1.0,
    db: DbOpt = None,
    once: OnceOpt = False,
) -> None:
    """Live view: totals and the most recent runs, including those still running (Ctrl+C exits)."""
    live_view(inherited(ctx, "agent", agent), refresh, inherited(ctx, "db", db), once)


@monitor_app.command("list")
def list_(
    ctx: typer.Context,
    agent: AgentOpt = None,
    status: StatusOpt = None,
    limit: LimitOpt = 20,
    since: SinceOpt = None,
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    all_runs: Annotated[
        bool, typer.Option("--all", help="Nested runs too (by default only top-level runs).")
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Execution history, newest first, with the ids to pass to `kagura monitor trace`.

    Top-level runs only unless --all; session and user columns appear when runs have them.
    """
    status = check_status(status)
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag)
    rows = store.get_executions(
        agent_name=agent,
        status=status,
        since=start,
        limit=limit,
        until=end,
        roots_only=not all_runs,
    )
    if json:
        print_json(rows)
        return
    from kagura.observability.render.runs import render_list_table

    console().print(render_list_table(rows))


@monitor_app.command()
def stats(
    ctx: typer.Context,
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
) -> None:
    """Summary statistics: counts, success rate, durations (avg, p50, p95), cost, tokens, calls."""
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag, exact=exact)
    summary = store.get_summary_stats(agent_name=agent, since=start, until=end)
    if json:
        print_json(summary)
        return
    from kagura.observability.render.runs import render_stats

    out = console()
    out.print(render_stats(summary, agent))
    if summary.get("approx"):
        out.print(APPROX_NOTE)


@monitor_app.command()
def trace(
    ctx: typer.Context,
    execution_id: Annotated[
        str, typer.Argument(metavar="ID", help="An execution id, or a unique prefix of one.")
    ],
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """One execution in detail: info, metrics, and a timeline of its events with nested runs as subtrees."""
    db = inherited(ctx, "db", db)
    board = dashboard(db)
    if not execution_id.strip():
        raise UsageError("give an execution id (copy one from `kagura monitor list`)")
    execution, runs = board.trace_data(execution_id)
    if execution is None:
        raise NotFound(
            f"No execution {execution_id!r} in {db_path(db)}: copy an id from `kagura monitor list`"
        )
    from kagura.observability.render.trace import nest_trace, render_trace

    if json:  # the same tree as the text view: child runs nested, each with its events
        print_json(nest_trace(execution, runs))
        return

    board.console.print(render_trace(execution, runs))
    if execution.get("scores"):
        from kagura.observability.render.scores import render_run_scores

        board.console.print(render_run_scores(execution["scores"]))


@monitor_app.command()
def cost(
    ctx: typer.Context,
    group_by: Annotated[
        str, typer.Option("--group-by", "-g", help="agent, date, model, user, session or tag.")
    ] = "agent",
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
    limit: Annotated[
        int,
        typer.Option(
            "--limit",
            "-n",
            min=1,
            max=MAX_LIMIT,
            help="Show the N most expensive groups; the rest add up in one row (--json has all).",
        ),
    ] = 25,
) -> None:
    """Spend by agent (or by day, with a bar per day), a Total row, and the estimated monthly cost."""
    from kagura.observability.render.dashboard import Dashboard

    group = check_choice(group_by, GROUPS, "--group-by")
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag, exact=exact)
    if group not in ("agent", "date") and f"cost_by_{group}" not in {
        q["name"] for q in store.catalogue()
    }:
        raise UsageError(f"--group-by {group} is not available in this version; use agent or date")
    board = Dashboard(store, console=console())
    if json:
        print_json(board.cost_data(group, agent, start, end))
        return
    board.show_cost_summary(group, agent_name=agent, since=start, until=end, limit=limit)


@monitor_app.command()
def compact(
    ctx: typer.Context,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Move settled runs from the SQLite tail into the Parquet lake now (also merges small files)."""
    from kagura.cli.progress import run_with_spinner

    store = open_store(inherited(ctx, "db", db))
    result = run_with_spinner("Compacting telemetry", store.compact, quiet=json)
    if json:
        print_json(result)
        return
    console().print(
        f"Compacted {result.get('executions', 0):,} executions and {result.get('events', 0):,} events "
        f"into {result.get('segments', 0):,} segment(s); merged {result.get('merged', 0):,}; "
        f"{result.get('seconds', 0.0):.2f}s"
    )


@monitor_app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Delete runs that started before this: an age (90d, 12h, 3mo, 30min) or a date (2024-01-01).",
        ),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only print what would be deleted.")
    ] = False,
    yes: Annotated[
        bool,
        typer.Option(
            "--yes", "-y", help="Delete without asking (needed when there is no terminal)."
        ),
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Delete old runs (and their events) from the tail and the lake, and wipe their bytes from disk.

    Prints what will go first, then asks on a terminal; elsewhere it needs --yes.
    """
    import sys

    from kagura.cli.progress import run_with_spinner

    cutoff = parse_age(older_than)
    store = open_store(inherited(ctx, "db", db))
    plan = store.prune_plan(cutoff)
    if dry_run or plan["runs"] == 0:
        if json:
            print_json(
                {"deleted": 0, "would_delete": plan["runs"], "older_than": cutoff, "plan": plan}
            )
        else:
            console().print(
                _plan_line(plan, "Would delete" if plan["runs"] else "Nothing to delete:")
            )
        return
    if not yes:
        if not sys.stdin.isatty():
            raise UsageError(
                f"prune would delete {plan['runs']:,} runs started before {_when(cutoff)}: "
                "pass --yes to confirm (there is no terminal to ask on)"
            )
        console().print(_plan_line(plan, "Will delete"))
        if not typer.confirm("Delete them?", default=False):
            console().print("Nothing deleted.")
            raise typer.Exit(1)
    elif not json:
        console().print(_plan_line(plan, "Deleting"))
    result = run_with_spinner("Pruning telemetry", lambda: store.prune(cutoff), quiet=json)
    if json:
        print_json(
            {
                "deleted": result["deleted"],
                "would_delete": None,
                "older_than": cutoff,
                "plan": plan,
                "pending": result["pending"],
                "quarantined_removed": result["quarantined_removed"],
            }
        )
        return
    console().print(f"Deleted {result['deleted']:,} runs that started before {_when(cutoff)}.")
    if result["quarantined_removed"]:
        console().print(
            f"Removed {result['quarantined_removed']} quarantined lake file(s) of those days "
            "(damaged files that `kagura monitor doctor --repair` had set aside)."
        )
    pending = result["pending"]
    if pending:
        console().print(
            f"{len(pending.get('files', []))} lake file(s) holding deleted runs"
            + (" and the database's free pages" if pending.get("vacuum") else "")
            + " go when the other processes reading this store close it "
            "(`kagura monitor doctor` shows what waits)."
        )


def _when(at: float) -> str:
    from kagura.observability.render.formatting import fmt_datetime

    return fmt_datetime(at)


def _plan_line(plan: dict, verb: str) -> str:
    """e.g. "Would delete 1,234 runs (3,702 events) over 12 days, 2024-01-01 .. 2024-01-12, about 1.2 MB of lake files"."""
    if not plan["runs"]:
        return f"{verb} no run started before {_when(plan['cutoff'])}."
    size = plan["lake_bytes"]
    shown = f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size:,} bytes"
    return (
        f"{verb} {plan['runs']:,} runs ({plan['events']:,} events) over {plan['days']:,} day(s), "
        f"started {_when(plan['first'])} .. {_when(plan['last'])} (before {_when(plan['cutoff'])}), "
        f"about {shown} of lake files."
    )


analytics.register(monitor_app)
doctor.register(monitor_app)
scores.register(monitor_app)
search.register(monitor_app)

# The analytic (sql/NAME.sql, EventStore.NAME) each command shows by default. NAME is
# the command's other name, so one name reaches an analytic from the shell, Python and
# SQL: `kagura monitor agent_health` is `kagura monitor health` (hidden from the list).
ANALYTIC_COMMANDS = {
    "list": "recent_executions",
    "stats": "summary_stats",
    "cost": "cost_by_agent",
    "latency": "latency_percentiles",
    "health": "agent_health",
    "budget": "budget_status",
    "errors": "error_groups",
    "trend": "cost_trend",
    "scores": "score_summary",
    "export": "otlp_spans",
}


def add_analytic_names(group: typer.Typer) -> None:
    """Register each command of ANALYTIC_COMMANDS again under its analytic's name."""
    for info in list(group.registered_commands):
        assert info.callback is not None  # every command of the group has a body
        name = info.name or info.callback.__name__
        if name in ANALYTIC_COMMANDS:
            help_text = (info.help or info.callback.__doc__ or "").strip()
            group.command(
                ANALYTIC_COMMANDS[name],
                hidden=True,
                help=f"The same as `kagura monitor {name}`. {help_text}",
            )(info.callback)
