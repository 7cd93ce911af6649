"""The analytics commands of `kagura monitor`: latency, regressions, health, budget, errors, trend, sql.

Each command parses its options, asks the store for one analytic (one file of
`sql/`), and prints JSON or a rich table; the renderers are pure functions of the
rows. `regressions`, `health` and `budget` exit 1 when they find a problem, so
cron can alert.
"""

from __future__ import annotations

import csv
import json
import sys
import time
from typing import Annotated, Any

import typer

from kagura.cli.options import (
    APPROX_NOTE,
    MAX_LIMIT,
    AgentOpt,
    DbOpt,
    ExactOpt,
    JsonOpt,
    MonthSinceOpt,
    SessionOpt,
    SinceOpt,
    TagOpt,
    UntilOpt,
    UsageError,
    UserOpt,
    check_choice,
    console,
    inherited,
    open_store,
    parse_span,
    parse_window,
    print_json,
    reading,
)
from kagura.cli.params import QUERY_NAME, check_params, parse_at, parse_param

# The footer under regressions compared from rollups (`approx` true in --json).
REGRESSIONS_APPROX_NOTE = (
    "[dim]Whole hours read from rollups: counts, failure rates and cost/run exact; medians and"
    " p95s within 2% of a scan's, p-values close (--exact scans every run).[/dim]"
)


def fraction(flag: str, help: str) -> Any:
    """A float option whose value is a share or a rate: from 0 to 1."""
    return typer.Option(flag, min=0.0, max=1.0, help=help)


AtOpt = Annotated[
    str | None,
    typer.Option("--at", help="Judge as of this time instead of now (same forms as --since)."),
]


def _print_table_or_empty(table: Any, rows: list[Any], empty: str) -> None:
    out = console()
    if rows:
        out.print(table)
    else:
        out.print(empty)


# --- commands -------------------------------------------------------------------------


def latency(
    ctx: typer.Context,
    agent: AgentOpt = None,
    by: Annotated[
        str, typer.Option("--by", help="agent (run durations) or model (LLM call durations).")
    ] = "agent",
    per_day: Annotated[bool, typer.Option("--per-day", help="One row per local day too.")] = False,
    since: SinceOpt = None,
    until: UntilOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
) -> None:
    """Latency percentiles (p50, p90, p95, p99) of runs per agent, or of LLM calls per model."""
    from kagura.observability.render.catalogue import render_latency

    by = check_choice(by, ("agent", "model"), "--by")
    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag, exact=exact)
    if by == "agent":
        rows = store.latency_percentiles(agent, start, end, per_day=per_day).rows()
    else:
        if agent is not None:
            raise UsageError("--by model reads LLM calls of every agent; leave out --agent")
        rows = store.model_latency(None, start, end, per_day=per_day).rows()
    if json:
        print_json(rows)
        return
    _print_table_or_empty(render_latency(rows, by), rows, "No finished runs in this window.")
    if any(r.get("approx") for r in rows):
        console().print(APPROX_NOTE)


def regressions(
    ctx: typer.Context,
    agent: AgentOpt = None,
    recent: Annotated[
        str, typer.Option("--recent", help="The recent window: the last 2d (or 36h, 1w, ...).")
    ] = "2d",
    baseline: Annotated[
        str,
        typer.Option("--baseline", help="The baseline: this span just before the recent window."),
    ] = "14d",
    recent_runs: Annotated[
        int | None,
        typer.Option(
            "--recent-runs", min=1, help="Compare by count: each agent's newest N runs are recent."
        ),
    ] = None,
    baseline_runs: Annotated[
        int | None,
        typer.Option(
            "--baseline-runs",
            min=1,
            help="With --recent-runs: the N runs before them are the baseline (default 5 x recent).",
        ),
    ] = None,
    min_runs: Annotated[
        int, typer.Option("--min-runs", min=1, help="Runs needed on each side before a test runs.")
    ] = 20,
    min_change: Annotated[
        float,
        typer.Option(
            "--min-change",
            min=0.0,
            help="Smallest rise of median, p95 or cost/run that counts (0.2 = 20%).",
        ),
    ] = 0.2,
    min_failure_change: Annotated[
        float,
        fraction(
            "--min-failure-change",
            "Smallest rise of the failure rate that counts (0.05 = 5 points).",
        ),
    ] = 0.05,
    alpha: Annotated[
        float, fraction("--alpha", "Chance that noise flags anything in the report.")
    ] = 0.01,
    lookback: Annotated[
        str,
        typer.Option(
            "--lookback", help="With --recent-runs: look for runs this far back (e.g. 30d, 90d)."
        ),
    ] = "30d",
    at: AtOpt = None,
    scores: Annotated[
        bool,
        typer.Option(
            "--scores",
            help="Compare scores instead: numeric and boolean scores whose mean dropped by --min-drop.",
        ),
    ] = False,
    min_drop: Annotated[
        float,
        typer.Option("--min-drop", min=0.0, help="With --scores: the smallest drop of a mean."),
    ] = 0.1,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
) -> None:
    """Compare each agent's recent runs with its baseline: latency, tail, failures, cost. Exit 1 when flagged."""
    from kagura.observability.render.catalogue import render_regressions

    now = parse_at(at)
    if scores:
        people = (session, user, tag)
        _score_regressions(ctx, agent, recent, baseline, min_drop, now, db, json, people)
        return
    options: dict[str, Any] = {
        "now": now,
        "min_runs": min_runs,
        "min_change": min_change,
        "min_failure_change": min_failure_change,
        "alpha": alpha,
    }
    if recent_runs is not None:
        options.update(
            recent_runs=recent_runs,
            baseline_runs=baseline_runs,
            lookback=parse_span(lookback, "--lookback"),
        )
        window = f"Newest {recent_runs} runs of each agent against the {baseline_runs or 5 * recent_runs} before them"
    else:
        if baseline_runs is not None:
            raise UsageError("--baseline-runs needs --recent-runs")
        options.update(
            recent=parse_span(recent, "--recent"), baseline=parse_span(baseline, "--baseline")
        )
        window = f"Last {recent} against the {baseline} before it"
    store, agent = reading(ctx, agent, db, session, user, tag, exact=exact)
    rows = store.regressions(agent, **options).rows()
    if json:
        print_json(rows)
    elif rows:
        console().print(render_regressions(rows, window))
        if any(r.get("approx") for r in rows):
            console().print(REGRESSIONS_APPROX_NOTE)
    else:
        console().print("No runs in the compared windows.")
    if any(r["flagged"] for r in rows):
        raise typer.Exit(1)


def _score_regressions(ctx, agent, recent, baseline, min_drop, now, db, json, people) -> None:
    """`regressions --scores`: scores whose recent mean fell below the baseline's; exit 1 if any.
    `people`: the (session, user, tag) the runs are narrowed to."""
    store, agent = reading(ctx, agent, db, *people)
    rows = store.score_regressions(
        recent=parse_span(recent, "--recent"),
        lookback=parse_span(baseline, "--baseline"),
        min_drop=min_drop,
        agent_name=agent,
        now=now,
    ).rows()
    if json:
        print_json(rows)
    elif rows:
        from kagura.observability.render.scores import render_score_drops

        console().print(render_score_drops(rows, f"last {recent} against the {baseline} before it"))
    else:
        console().print("No score dropped in the compared windows.")
    if rows:
        raise typer.Exit(1)


def health(
    ctx: typer.Context,
    agent: AgentOpt = None,
    last: Annotated[
        int, typer.Option("--last", min=1, help="Judge each agent by its last N finished runs.")
    ] = 20,
    degraded: Annotated[
        float, fraction("--degraded", "Failure rate above which an agent is degraded.")
    ] = 0.2,
    unhealthy: Annotated[
        float, fraction("--unhealthy", "Failure rate above which it is unhealthy.")
    ] = 0.5,
    silent_after: Annotated[
        str,
        typer.Option(
            "--silent-after",
            help="Call an agent silent after this long without a run (and 10x its usual gap).",
        ),
    ] = "24h",
    lookback: Annotated[
        str,
        typer.Option(
            "--lookback", help="Judge the agents that ran within this span (e.g. 30d, 90d)."
        ),
    ] = "30d",
    min_runs: Annotated[
        int,
        typer.Option(
            "--min-runs",
            min=1,
            help="Finished runs an agent needs before a verdict; fewer: unknown.",
        ),
    ] = 5,
    at: AtOpt = None,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """healthy / degraded / unhealthy per agent from its last runs, and agents gone silent. Exit 1 when unhealthy or silent."""
    from kagura.observability.render.catalogue import render_health

    if degraded > unhealthy:
        raise UsageError("--degraded must not be above --unhealthy")
    now = parse_at(at)
    store, agent = reading(ctx, agent, db, session, user, tag)
    rows = store.agent_health(
        agent,
        last=last,
        degraded=degraded,
        unhealthy=unhealthy,
        silent_after=parse_span(silent_after, "--silent-after"),
        now=now,
        lookback=parse_span(lookback, "--lookback"),
        min_runs=min_runs,
    ).rows()
    if json:
        print_json(rows)
    else:
        before = "" if at is None else f" before {at}"
        _print_table_or_empty(
            render_health(rows, now),
            rows,
            f"No runs in the last {lookback}{before} (look further back with --lookback, or from --at).",
        )
    if any(r["status"] == "unhealthy" or r["silent"] for r in rows):
        raise typer.Exit(1)


def budget(
    ctx: typer.Context,
    daily: Annotated[
        float | None,
        typer.Option("--daily", min=0.0, help="Daily budget in dollars (today, local time)."),
    ] = None,
    monthly: Annotated[
        float | None,
        typer.Option("--monthly", min=0.0, help="Monthly budget in dollars (this calendar month)."),
    ] = None,
    agent: AgentOpt = None,
    window: Annotated[
        float,
        typer.Option("--window", min=0.01, help="Days of recent spend the projection averages."),
    ] = 7.0,
    at: AtOpt = None,
    per_user: Annotated[
        bool,
        typer.Option(
            "--per-user",
            help="The budgets are per user (kagura.context): list each user's spend; exit 1 if any is over.",
        ),
    ] = False,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
) -> None:
    """Spend today and this month against budgets, and the projected month end. Exit 1 when a budget is exceeded."""
    from kagura.observability.render.catalogue import render_budget

    now = parse_at(at)
    store, agent = reading(ctx, agent, db, exact=exact)
    if per_user:
        _budget_per_user(store, daily, monthly, agent, now, json)
        return
    status = store.budget_status(daily, monthly, agent_name=agent, days=window, now=now).one()
    if json:
        print_json(status)
    else:
        console().print(render_budget(status))
    if status["daily_exceeded"] or status["monthly_exceeded"]:
        raise typer.Exit(1)


def _budget_per_user(store, daily, monthly, agent, now, json) -> None:
    """`budget --per-user`: every user's spend against the per-user budgets; exit 1 if one is over."""
    if daily is None and monthly is None:
        raise UsageError("--per-user needs --daily or --monthly (a budget per user)")
    rows = store.budget_by_user(daily, monthly, agent_name=agent, now=now).rows()
    over = [r for r in rows if r["daily_exceeded"] or r["monthly_exceeded"]]
    if json:
        print_json(rows)
    else:
        from kagura.observability.render.people import render_user_budgets

        console().print(render_user_budgets(rows))
    if over:
        raise typer.Exit(1)


def errors(
    ctx: typer.Context,
    agent: AgentOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: Annotated[
        int,
        typer.Option("--limit", "-n", min=1, max=MAX_LIMIT, help="At most this many groups."),
    ] = 20,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Failures grouped by error type and message (numbers, ids, paths masked), most frequent first."""
    from kagura.observability.render.catalogue import render_errors

    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag)
    rows = store.error_groups(agent, start, end, limit=limit).rows()
    if json:
        print_json(rows)
        return
    _print_table_or_empty(render_errors(rows, time.time()), rows, "No failed runs in this window.")


def trend(
    ctx: typer.Context,
    agent: AgentOpt = None,
    since: MonthSinceOpt = "30d",
    until: UntilOpt = None,
    window: Annotated[int, typer.Option("--window", min=1, help="Days in the trailing mean.")] = 7,
    by_model: Annotated[
        bool, typer.Option("--by-model", help="Spend per day and model of the LLM calls instead.")
    ] = False,
    session: SessionOpt = None,
    user: UserOpt = None,
    tag: TagOpt = None,
    db: DbOpt = None,
    json: JsonOpt = False,
    exact: ExactOpt = False,
) -> None:
    """Spend per day with a trailing mean, and the projected month-end spend with its method."""
    from kagura.observability.render.catalogue import render_model_days, render_trend

    start, end = parse_window(since, until)
    store, agent = reading(ctx, agent, db, session, user, tag, exact=exact)
    if by_model:
        rows = store.cost_by_model(start, agent, until=end, per_day=True).rows()
    else:
        rows = store.cost_trend(start, agent, until=end, window=window).rows()
    projection = store.budget_status(agent_name=agent, days=window)
    if json:
        keys = ("month_cost", "daily_mean", "days_left", "projected_month_end", "method")
        print_json({"rows": rows, "projection": {k: projection[k] for k in keys}})
        return
    from kagura.observability.render.formatting import fmt_money

    out = console()
    if not rows:
        out.print("No spend in this window.")
        return
    out.print(render_model_days(rows) if by_model else render_trend(rows, window))
    out.print(
        f"[bold]Projected month end:[/bold] {fmt_money(projection['projected_month_end'])}"
        f"  [dim]({projection['method']})[/dim]"
    )


def sql(
    ctx: typer.Context,
    query: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME|QUERY]",
            help="A query name from --list, or one SELECT over executions and events.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            "-p",
            help="NAME=VALUE for $NAME (times such as since=7d are parsed); repeat it.",
        ),
    ] = None,
    list_: Annotated[
        bool, typer.Option("--list", help="List the queries under sql/ from their headers.")
    ] = False,
    markdown: Annotated[
        bool,
        typer.Option(
            "--markdown", help="With --list: print the catalogue as Markdown (docs/sql.md)."
        ),
    ] = False,
    csv_: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    time_limit: Annotated[
        float | None,
        typer.Option(
            "--time-limit",
            metavar="SECONDS",
            help="Stop an ad-hoc SELECT after this many seconds (default 60).",
        ),
    ] = None,
    memory_limit: Annotated[
        str | None,
        typer.Option(
            "--memory-limit",
            metavar="SIZE",
            help="Memory an ad-hoc SELECT may use, e.g. 512MB (default 2GB).",
        ),
    ] = None,
    engine: Annotated[
        str,
        typer.Option(
            "--engine",
            help="duckdb (default), or spark: run a named query on Apache Spark "
            "(master from KAGURA_SPARK_MASTER, default local[2]; needs kagura-ai[spark] and Java).",
        ),
    ] = "duckdb",
    db: DbOpt = None,
    json: JsonOpt = False,
) -> None:
    """Run a named query of sql/ or a read-only SELECT over the views executions and events.

    An ad-hoc SELECT runs in a sandbox: it reads only the store's own data, under a time and a memory limit.
    """
    from kagura.cli.spark_engine import check_engine
    from kagura.observability.analytics.sandbox import MEMORY_LIMIT, TIME_LIMIT, check_limits
    from kagura.observability.analytics.sql_docs import catalogue_markdown
    from kagura.observability.render.catalogue import render_catalogue, render_rows
    from kagura.observability.store import engine as queries

    engine = check_engine(engine)
    if json and csv_:
        raise UsageError("give one of --json and --csv")
    if list_ and query is not None:
        raise UsageError("--list lists the queries; give it without a query")
    if list_:
        entries = queries.catalogue()
        if markdown:
            texts = {e["name"]: queries.load_sql(e["name"]) for e in entries}
            from kagura.cli.monitor import ANALYTIC_COMMANDS

            sys.stdout.write(catalogue_markdown(entries, texts, ANALYTIC_COMMANDS))
        elif json:
            print_json(entries)
        else:
            console().print(render_catalogue(entries))
        return
    if markdown:
        raise UsageError("--markdown goes with --list")
    if query is None or not query.strip():
        raise UsageError(
            'give a query name (see --list) or a SELECT, e.g. "SELECT count(*) FROM executions"'
        )
    params = dict(parse_param(p) for p in param or [])
    names = {e["name"] for e in queries.catalogue()}
    db = inherited(ctx, "db", db)
    limits: dict[str, Any] = {
        "time_limit": TIME_LIMIT if time_limit is None else time_limit,
        "memory_limit": MEMORY_LIMIT if memory_limit is None else memory_limit,
    }
    try:
        check_limits(**limits)
    except ValueError as error:
        raise UsageError(str(error)) from None
    if set(params) & set(limits):
        raise UsageError(
            "time_limit and memory_limit are options (--time-limit, --memory-limit), not params"
        )
    if QUERY_NAME.match(query.strip()):
        name = query.strip()
        if time_limit is not None or memory_limit is not None:
            raise UsageError(
                "--time-limit and --memory-limit are for an ad-hoc SELECT, not a named query"
            )
        if name not in names:
            raise UsageError(f"no query named {name!r}; see `kagura monitor sql --list`")
        wanted = set(queries.param_names(queries.load_sql(name)))
        unknown = sorted(set(params) - wanted)
        if unknown:
            raise UsageError(
                f"{name} takes no param {', '.join(unknown)}; it takes: {', '.join(sorted(wanted)) or 'none'}"
            )
        params = check_params(name, params)
        if engine == "spark":
            from kagura.cli.spark_engine import run_named

            result = run_named(open_store(db), name, params)
        else:
            result = open_store(db).run(name, **params)
    else:
        if engine == "spark":
            raise UsageError(
                "--engine spark runs the named queries of sql/ (see --list), not a SELECT"
            )
        params = check_params("query", params)
        from kagura.observability.analytics.sandbox import check_read_only
        from kagura.observability.errors import QueryError

        try:
            check_read_only(query)
        except QueryError as error:
            raise UsageError(str(error)) from None
        result = open_store(db).sql(query, **limits, **params)
    rows = result.rows()
    if json:
        print_json(rows)
    elif csv_:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(result.columns)
        for row in rows:
            writer.writerow(["" if row[c] is None else _csv_value(row[c]) for c in result.columns])
    else:
        out = console()
        out.print(render_rows(rows, result.columns))
        out.print(f"[dim]{len(rows):,} row(s)[/dim]")


def _csv_value(value: Any) -> Any:
    if isinstance(value, (list, dict)):
        return json.dumps(value, default=str)
    return value


def register(monitor: typer.Typer) -> None:
    """Add the analytics commands to the `monitor` group."""
    monitor.command("latency")(latency)
    monitor.command("regressions")(regressions)
    monitor.command("health")(health)
    monitor.command("budget")(budget)
    monitor.command("errors")(errors)
    monitor.command("trend")(trend)
    monitor.command("sql")(sql)
