"""The analytics of EventStore: one method per file of `sql/`, named after it, returning a Result.

`sql/cost_trend.sql` is `EventStore.cost_trend()` and `kagura monitor sql cost_trend`;
the method checks its arguments and runs the file (over rollups where the planner
can). A Result reads as row dicts and as a Polars frame (store/engine.py), and an
analytic whose answer is one row returns a `Row`, which also reads as that row's
dict. The older `*_frame` / `*_rows` names stay as aliases (ALIASES). Also here:
the catalogue of `sql/`, and read-only ad-hoc SQL (`sql()`) in the sandbox of
`sandbox.py`.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypedDict, TypeVar

from kagura.observability.analytics.sandbox import (
    MEMORY_LIMIT,
    TIME_LIMIT,
    check_limits,
    check_read_only,
    run_sandboxed,
)
from kagura.observability.store.engine import Result, Row, Views, catalogue, load_sql
from kagura.observability.timespec import epoch, parse_span

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

DAY = 86400.0
# A call starts after its run does: files of runs up to this long before `since` can hold calls after it.
EVENT_MARGIN = DAY

# Methods that are no SQL file's name: older names of analytics, kept with the
# shape they returned (alias -> (the analytic, "pl" for a Polars frame or "rows"
# for a list of dicts)), and the two methods about the catalogue itself.
ALIASES: dict[str, tuple[str, str]] = {}
NOT_ANALYTICS = ("catalogue", "sql")
# The one analytic whose method keeps a plainer shape: agent_names() is a list of names.
PLAIN = {"agent_names": "a list of agent names (str); run('agent_names') is the Result"}

_P = ParamSpec("_P")
_S = TypeVar("_S")


def _frame_alias(
    alias: str, method: Callable[Concatenate[_S, _P], Result]
) -> Callable[Concatenate[_S, _P], pl.DataFrame]:
    """`method` under an older name that returned its rows as a Polars frame."""
    ALIASES[alias] = (method.__name__, "pl")

    @functools.wraps(method)
    def frame(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> pl.DataFrame:
        return method(self, *args, **kwargs).pl()

    frame.__name__ = frame.__qualname__ = alias
    frame.__doc__ = (
        f"{method.__name__}() as a Polars frame (an older name for `{method.__name__}(...).pl()`)."
    )
    return frame


def _rows_alias(
    alias: str, method: Callable[Concatenate[_S, _P], Result]
) -> Callable[Concatenate[_S, _P], list[dict[str, Any]]]:
    """`method` under an older name that returned its rows as a list of dicts."""
    ALIASES[alias] = (method.__name__, "rows")

    @functools.wraps(method)
    def rows(self: _S, *args: _P.args, **kwargs: _P.kwargs) -> list[dict[str, Any]]:
        return method(self, *args, **kwargs).rows()

    rows.__name__ = rows.__qualname__ = alias
    rows.__doc__ = f"{method.__name__}() as a list of dicts (an older name for `{method.__name__}(...).rows()`)."
    return rows


class _Window(TypedDict):
    since: float | None
    until: float | None


def _window(since: Any, until: Any) -> _Window:
    """The `$since` and `$until` params from times in any accepted form (timespec.epoch)."""
    return {"since": epoch(since, "since"), "until": epoch(until, "until")}


def _row(result: Result) -> Row:
    """The Result of a file whose grain is one row, as a Row."""
    return Row(result.arrow(), result.name)


class Analytics:
    """Mixed into EventStore: each analytic is a docstring and one call over sql/NAME.sql.

    It uses the store's `run` (a named file over all data), `_planned` (the same
    from rollups where it can), `_views` (a snapshot of the lake files and the
    tail), `_run_sql` (the DuckDB runner) and `_recent` (newest runs first).
    """

    if TYPE_CHECKING:  # what EventStore provides

        def run(self, name: str, **params: Any) -> Result: ...

        def _views(
            self, since: float | None = None, until: float | None = None, events: bool = False
        ) -> Views: ...

        def _run_sql(
            self, text: str, label: str, views: Views, params: dict[str, Any]
        ) -> Result: ...

        def _with_scores(self, views: Views) -> Views: ...

        def _planned(
            self,
            name: str,
            *,
            exact: bool = False,
            cuts: tuple[float, ...] = (),
            local_dates: bool = False,
            **params: Any,
        ) -> Result: ...

        def _health_cuts(
            self, last: int, now: float, since: float | None
        ) -> tuple[float, ...] | None: ...

        def _recent(
            self,
            agent_name: str | None,
            status: str | None,
            since: Any,
            until: Any,
            limit: int,
            roots_only: bool = False,
        ) -> Result: ...

    # --- runs and events -------------------------------------------------------------

    def recent_executions(
        self,
        agent_name: str | None = None,
        status: str | None = None,
        since: Any = None,
        limit: int = 100,
        *,
        until: Any = None,
        roots_only: bool = False,
    ) -> Result:
        """Executions newest first, one row each as stored (sql/recent_executions.sql); get_executions() gives Kagura's dicts."""
        return self._recent(agent_name, status, since, until, limit, roots_only)

    def execution_events(
        self,
        execution_ids: list[str] | None = None,
        since: Any = None,
        type: str | None = None,
        *,
        until: Any = None,
    ) -> Result:
        """The events of some executions (all: None), in the order they happened (sql/execution_events.sql)."""
        return self.run("execution_events", ids=execution_ids, type=type, **_window(since, until))

    def find_execution(self, prefix: str) -> Result:
        """The executions whose id starts with `prefix`, at most 21 (sql/find_execution.sql)."""
        return self.run("find_execution", prefix=prefix)

    def child_executions(self, parent_id: str) -> Result:
        """The runs started directly inside one run, oldest first (sql/child_executions.sql)."""
        return self.run("child_executions", parent=parent_id)

    def trace_executions(self, trace_id: str) -> Result:
        """Every execution of one trace, oldest first (sql/trace_executions.sql)."""
        return self.run("trace_executions", trace=trace_id)

    def status_counts(
        self, agent_name: str | None = None, since: Any = None, until: Any = None
    ) -> Result:
        """How many runs have each status (sql/status_counts.sql)."""
        return self.run("status_counts", agent=agent_name, **_window(since, until))

    def summary_stats(
        self,
        agent_name: str | None = None,
        since: Any = None,
        *,
        until: Any = None,
        exact: bool = False,
    ) -> Row:
        """Counts, success rate, durations (avg, p50, p95), cost and tokens over every matching run (sql/summary_stats.sql).

        Whole hours are read from rollups (p50/p95 within 1%, `approx` True);
        `exact=True` scans every run. get_summary_stats() is the same as a dict.
        """
        return _row(
            self._planned("summary_stats", exact=exact, agent=agent_name, **_window(since, until))
        )

    def agent_names(self) -> list[str]:
        """Every agent that has recorded a run, by name (sql/agent_names.sql)."""
        return [r["agent_name"] for r in self.run("agent_names")]

    def otlp_spans(
        self, agent_name: str | None = None, since: Any = None, until: Any = None
    ) -> Result:
        """Finished runs and their events as OTLP JSON spans, one per row (sql/otlp_spans.sql)."""
        return self.run("otlp_spans", agent=agent_name, **_window(since, until))

    # --- latency ---------------------------------------------------------------

    def latency_percentiles(
        self,
        agent_name: str | None = None,
        since: Any = None,
        until: Any = None,
        per_day: bool = False,
        *,
        exact: bool = False,
    ) -> Result:
        """p50/p90/p95/p99 run duration per agent (per day with per_day) (sql/latency_percentiles.sql).

        Whole hours are read from rollups (percentiles within 1%, `approx` True);
        `exact=True` scans every run.
        """
        return self._planned(
            "latency_percentiles",
            exact=exact,
            local_dates=bool(per_day),
            agent=agent_name,
            per_day=bool(per_day),
            **_window(since, until),
        )

    def model_latency(
        self, model: str | None = None, since: Any = None, until: Any = None, per_day: bool = False
    ) -> Result:
        """p50/p90/p95/p99 LLM call duration per model (per day with per_day) (sql/model_latency.sql)."""
        return self._run_events("model_latency", since, until, model=model, per_day=bool(per_day))

    # --- regressions -------------------------------------------------------------

    def regressions(
        self,
        agent_name: str | None = None,
        *,
        recent: Any = 2 * DAY,
        baseline: Any = 14 * DAY,
        recent_runs: int | None = None,
        baseline_runs: int | None = None,
        lookback: Any = 30 * DAY,
        now: Any = None,
        min_runs: int = 20,
        min_change: float = 0.2,
        min_failure_change: float = 0.05,
        alpha: float = 0.01,
        exact: bool = False,
    ) -> Result:
        """Per agent (and agent-model pair): recent runs against a baseline, with flags (sql/regressions.sql).

        recent (seconds or timedelta, default 2 days), baseline (the span before
        it, default 14 days), or recent_runs / baseline_runs to compare each
        agent's newest runs by count (among the runs of the last `lookback`,
        default 30 days; None: all); now; min_runs (20), min_change (0.2),
        min_failure_change (0.05), alpha (0.01, for the whole report).

        Compared by time, whole hours are read from rollups: counts, failure
        rates and cost per run exact, medians and p95s within 2% of a scan's,
        p-values close to its (`approx` True); `exact=True` scans every run.
        Compared by count, it scans (the newest runs are needed one by one).
        """
        until = epoch(now, "now")
        if until is None:
            until = time.time()
        if recent_runs is not None:
            recent_runs = _whole(recent_runs, "recent_runs")
            baseline_runs = _whole(baseline_runs, "baseline_runs") if baseline_runs else None
            # Newest runs are recent ones: looking back a bounded span keeps this fast.
            since = None if lookback is None else until - _seconds(lookback, "lookback")
            split = None
        else:
            if baseline_runs is not None:
                raise ValueError("baseline_runs needs recent_runs (compare by count on both sides)")
            split = until - _seconds(recent, "recent")
            since = split - _seconds(baseline, "baseline")
        params: dict[str, Any] = {
            "agent": agent_name,
            "since": since,
            "until": until,
            "min_runs": _whole(min_runs, "min_runs"),
            "min_change": _fraction(min_change, "min_change", upper=None),
            "min_failure_change": _fraction(min_failure_change, "min_failure_change"),
            "alpha": _fraction(alpha, "alpha"),
        }
        if split is None:
            return self.run(
                "regressions",
                split=None,
                recent_runs=recent_runs,
                baseline_runs=baseline_runs,
                **params,
            )
        # The hour holding the split is scanned: each rollup row then lies on one side of it.
        return self._planned("regressions", exact=exact, cuts=(split,), split=split, **params)

    # --- health and errors ------------------------------------------------------------

    def agent_health(
        self,
        agent_name: str | None = None,
        last: int = 20,
        degraded: float = 0.2,
        unhealthy: float = 0.5,
        silent_after: Any = DAY,
        silent_factor: float = 10.0,
        now: Any = None,
        lookback: Any = 30 * DAY,
        min_runs: int = 5,
    ) -> Result:
        """healthy / degraded / unhealthy per agent from its last runs, and silence (sql/agent_health.sql).

        Agents that ran within `lookback` (default 30 days; None: all history) are judged;
        one with fewer than `min_runs` finished runs is "unknown" (too few runs to judge).
        """
        degraded = _fraction(degraded, "degraded")
        unhealthy = _fraction(unhealthy, "unhealthy")
        if degraded > unhealthy:
            raise ValueError(f"degraded ({degraded}) must not be above unhealthy ({unhealthy})")
        at = _now(now)
        since = None if lookback is None else at - _seconds(lookback, "lookback")
        last = _whole(last, "last")
        # The newest hours (each agent's last runs) are scanned, older ones read from rollups.
        cuts = self._health_cuts(last, at, since)
        return (self.run if cuts is None else functools.partial(self._planned, cuts=cuts))(
            "agent_health",
            agent=agent_name,
            now=at,
            since=since,
            last=last,
            degraded=degraded,
            unhealthy=unhealthy,
            silent_after=_seconds(silent_after, "silent_after"),
            silent_factor=_positive(silent_factor, "silent_factor"),
            min_runs=_whole(min_runs, "min_runs"),
        )

    def error_groups(
        self, agent_name: str | None = None, since: Any = None, until: Any = None, limit: int = 50
    ) -> Result:
        """Failures grouped by error type and normalised message, most frequent first (sql/error_groups.sql)."""
        return self.run(
            "error_groups", agent=agent_name, limit=_whole(limit, "limit"), **_window(since, until)
        )

    # --- cost ----------------------------------------------------------------------

    def cost_by_agent(
        self,
        since: Any = None,
        agent_name: str | None = None,
        *,
        until: Any = None,
        exact: bool = False,
    ) -> Result:
        """Spend, runs and tokens per agent (sql/cost_by_agent.sql)."""
        return self._planned(
            "cost_by_agent", exact=exact, agent=agent_name, **_window(since, until)
        )

    def cost_by_date(
        self,
        since: Any = None,
        agent_name: str | None = None,
        *,
        until: Any = None,
        exact: bool = False,
    ) -> Result:
        """Spend, runs and tokens per local calendar day (sql/cost_by_date.sql)."""
        return self._planned(
            "cost_by_date", exact=exact, local_dates=True, agent=agent_name, **_window(since, until)
        )

    def cost_by_model(
        self,
        since: Any = None,
        agent_name: str | None = None,
        *,
        until: Any = None,
        per_day: bool = False,
        exact: bool = False,
    ) -> Result:
        """Spend, calls and tokens per model of LLM calls (sql/cost_by_model.sql)."""
        if exact:
            return self._run_events(
                "cost_by_model", since, until, agent=agent_name, per_day=bool(per_day)
            )
        return self._planned(
            "cost_by_model",
            local_dates=bool(per_day),
            agent=agent_name,
            per_day=bool(per_day),
            **_window(since, until),
        )

    def cost_by_user(
        self, since: Any = None, agent_name: str | None = None, *, until: Any = None
    ) -> Result:
        """Spend, runs and tokens per user of `kagura.context` (sql/cost_by_user.sql)."""
        return self.run("cost_by_user", agent=agent_name, **_window(since, until))

    def cost_by_session(
        self, since: Any = None, agent_name: str | None = None, *, until: Any = None
    ) -> Result:
        """Spend, runs and tokens per session of `kagura.context` (sql/cost_by_session.sql)."""
        return self.run("cost_by_session", agent=agent_name, **_window(since, until))

    def cost_by_tag(
        self, since: Any = None, agent_name: str | None = None, *, until: Any = None
    ) -> Result:
        """Spend, runs and tokens per tag; a run counts under each of its tags (sql/cost_by_tag.sql)."""
        return self.run("cost_by_tag", agent=agent_name, **_window(since, until))

    def cost_trend(
        self,
        since: Any = None,
        agent_name: str | None = None,
        *,
        until: Any = None,
        window: int = 7,
        exact: bool = False,
    ) -> Result:
        """Spend per day, zero-filled, with a trailing mean and running total (sql/cost_trend.sql)."""
        return self._planned(
            "cost_trend",
            exact=exact,
            local_dates=True,
            agent=agent_name,
            window=_whole(window, "window"),
            **_window(since, until),
        )

    # --- budgets -----------------------------------------------------------------

    def budget_status(
        self,
        daily: float | None = None,
        monthly: float | None = None,
        agent_name: str | None = None,
        days: float = 7,
        now: Any = None,
        *,
        exact: bool = False,
    ) -> Row:
        """Spend today and this month against budgets, and the projected month end (sql/budget_status.sql)."""
        at = _now(now)
        days = _positive(days, "days")
        # Hours holding `now` or the trailing window's start are split by them: scanned.
        return _row(
            self._planned(
                "budget_status",
                exact=exact,
                cuts=(at, at - days * DAY),
                local_dates=True,
                now=at,
                daily=_money(daily, "daily"),
                monthly=_money(monthly, "monthly"),
                days=days,
                agent=agent_name,
                # The month began at most 31 days ago: older lake files can be skipped. On an
                # hour, so that this bound splits no hour the rollups could answer.
                since=(at - (max(days, 31.0) + 1.0) * DAY) // 3600 * 3600,
            )
        )

    def budget_by_user(
        self,
        daily: float | None = None,
        monthly: float | None = None,
        agent_name: str | None = None,
        now: Any = None,
    ) -> Result:
        """Each user's spend today and this month against per-user budgets (sql/budget_by_user.sql)."""
        return self.run(
            "budget_by_user",
            daily=_money(daily, "daily"),
            monthly=_money(monthly, "monthly"),
            agent=agent_name,
            now=_now(now),
        )

    def monthly_projection(
        self, days: float = 7, agent_name: str | None = None, now: Any = None
    ) -> Row:
        """A 30-day spend estimate from the trailing `days` (sql/monthly_projection.sql)."""
        return _row(
            self.run(
                "monthly_projection", days=_positive(days, "days"), agent=agent_name, now=_now(now)
            )
        )

    # --- scores and search ------------------------------------------------------------

    def score_summary(
        self,
        group_by: str = "agent",
        since: Any = None,
        agent_name: str | None = None,
        *,
        until: Any = None,
    ) -> Result:
        """Scores per name and agent, model or day: count, mean, min, max, top label (sql/score_summary.sql)."""
        if group_by not in ("agent", "model", "date"):
            raise ValueError(f"group_by must be agent, model or date, got {group_by!r}")
        return self.run("score_summary", group=group_by, agent=agent_name, **_window(since, until))

    def score_regressions(
        self,
        recent: Any = "1d",
        lookback: Any = "7d",
        min_drop: float = 0.1,
        agent_name: str | None = None,
        now: Any = None,
    ) -> Result:
        """Numeric and boolean scores whose recent mean dropped below the baseline's (sql/score_regressions.sql)."""
        return self.run(
            "score_regressions",
            now=_now(now),
            recent=_seconds(recent, "recent"),
            lookback=_seconds(lookback, "lookback"),
            min_drop=_fraction(min_drop, "min_drop", upper=None),
            agent=agent_name,
        )

    def search(
        self,
        text: str,
        agent_name: str | None = None,
        since: Any = None,
        until: Any = None,
        limit: int = 50,
    ) -> Result:
        """Places where `text` occurs (errors, arguments, event data, captured content), newest first (sql/search.sql).

        A plain case-insensitive scan of every run and event in [since, until): no index;
        narrow it with `since` on a large store.
        """
        if not isinstance(text, str) or not text.strip():
            raise ValueError("give some text to search for")
        return self.run(
            "search",
            term=text,
            agent=agent_name,
            limit=_whole(limit, "limit"),
            **_window(since, until),
        )

    # --- older names, kept with the shapes they returned ---------------------------------

    latency_percentiles_frame = _frame_alias("latency_percentiles_frame", latency_percentiles)
    model_latency_frame = _frame_alias("model_latency_frame", model_latency)
    regressions_frame = _frame_alias("regressions_frame", regressions)
    agent_health_frame = _frame_alias("agent_health_frame", agent_health)
    error_groups_frame = _frame_alias("error_groups_frame", error_groups)
    budget_status_frame = _frame_alias("budget_status_frame", budget_status)
    summary_frame = _frame_alias("summary_frame", summary_stats)
    events_frame = _frame_alias("events_frame", execution_events)
    cost_by_model_rows = _rows_alias("cost_by_model_rows", cost_by_model)
    cost_trend_rows = _rows_alias("cost_trend_rows", cost_trend)

    def executions_frame(
        self,
        agent_name: str | None = None,
        status: str | None = None,
        since: Any = None,
        limit: int = 100_000,
        *,
        until: Any = None,
    ) -> pl.DataFrame:
        """recent_executions() as a Polars frame, up to 100,000 rows (an older name)."""
        return self.recent_executions(agent_name, status, since, limit, until=until).pl()

    ALIASES["executions_frame"] = ("recent_executions", "pl")

    # --- the catalogue and ad-hoc SQL ------------------------------------------------

    def catalogue(self) -> list[dict[str, Any]]:
        """Every query under sql/: name, summary, grain, params, reads (from its header)."""
        return catalogue()

    def sql(
        self,
        text: str,
        *,
        time_limit: float = TIME_LIMIT,
        memory_limit: str = MEMORY_LIMIT,
        **params: Any,
    ) -> Result:
        """Run one read-only SELECT over the views `executions`, `events` and `scores` in a
        sandbox; QueryError otherwise.

        The query reaches no file but the store's own data, and stops with a
        QueryError after `time_limit` seconds or beyond `memory_limit` (e.g. "2GB").
        """
        check_limits(time_limit, memory_limit)
        reads = check_read_only(text)
        views = self._views(events="events" in reads)
        if "scores" in reads:
            views = self._with_scores(views)
        return run_sandboxed(text, params, views, "query", time_limit, memory_limit)

    def _run_events(self, name: str, since: Any, until: Any, **params: Any) -> Result:
        """Run a file over events: reads the lake files of runs that began up to a day before `since`."""
        window = _window(since, until)
        start = window["since"]
        views = self._views(
            None if start is None else start - EVENT_MARGIN, window["until"], events=True
        )
        return self._run_sql(load_sql(name), f"sql/{name}.sql", views, {**params, **window})


# --- argument checks ------------------------------------------------------------------


def _now(now: Any) -> float:
    """Epoch seconds of `now` (any accepted time), or the current time when None."""
    at = epoch(now, "now")
    return time.time() if at is None else at


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name} must be a number, got {value!r}")
    number = float(value)
    if number != number or number in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _seconds(value: Any, name: str) -> float:
    """A positive span in seconds from seconds, a timedelta or text such as "7d" (timespec.parse_span)."""
    return parse_span(value, name)


def _positive(value: Any, name: str) -> float:
    number = _number(value, name)
    if number <= 0:
        raise ValueError(f"{name} must be positive, got {value!r}")
    return number


def _whole(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _fraction(value: Any, name: str, upper: float | None = 1.0) -> float:
    number = _number(value, name)
    if number < 0 or (upper is not None and number > upper):
        bound = f"between 0 and {upper:g}" if upper is not None else ">= 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return number


def _money(value: Any, name: str) -> float | None:
    if value is None:
        return None
    number = _number(value, name)
    if number < 0:
        raise ValueError(f"{name} budget must not be negative, got {value!r}")
    return number
