"""The analytics of EventStore: one method per SQL file, as dicts and as a Polars twin.

Latency percentiles, regressions, agent health, budgets, error groups, cost by
model and over time, the catalogue of `sql/`, and read-only ad-hoc SQL (`sql()`),
which runs in the sandbox of `sandbox.py`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from kagura.observability.analytics.sandbox import (
    MEMORY_LIMIT,
    TIME_LIMIT,
    check_limits,
    check_read_only,
    run_sandboxed,
)
from kagura.observability.store.engine import Result, Views, catalogue, load_sql
from kagura.observability.timespec import epoch, parse_span

if TYPE_CHECKING:  # pragma: no cover
    import polars as pl

DAY = 86400.0
# A call starts after its run does: files of runs up to this long before `since` can hold calls after it.
EVENT_MARGIN = DAY


class Analytics:
    """Mixed into EventStore: each method is a docstring and one line over sql/NAME.sql.

    It uses the store's `run` (a named file over all data), `_views` (a snapshot
    of the lake files and the tail) and `_run_sql` (the DuckDB runner).
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

    # --- latency ---------------------------------------------------------------

    def latency_percentiles(
        self, agent_name=None, since=None, until=None, per_day: bool = False, *, exact=False
    ) -> list[dict[str, Any]]:
        """p50/p90/p95/p99 run duration per agent (per day with per_day) (sql/latency_percentiles.sql).

        Whole hours are read from rollups (percentiles within 1%, `approx` True);
        `exact=True` scans every run.
        """
        return self._latency(agent_name, since, until, per_day, exact).rows()

    def latency_percentiles_frame(
        self, agent_name=None, since=None, until=None, per_day: bool = False, *, exact=False
    ) -> pl.DataFrame:
        """latency_percentiles() as a Polars frame."""
        return self._latency(agent_name, since, until, per_day, exact).pl()

    def model_latency(
        self, model=None, since=None, until=None, per_day: bool = False
    ) -> list[dict[str, Any]]:
        """p50/p90/p95/p99 LLM call duration per model (per day with per_day) (sql/model_latency.sql)."""
        return self._run_events("model_latency", since, until, model=model, per_day=per_day).rows()

    def model_latency_frame(
        self, model=None, since=None, until=None, per_day: bool = False
    ) -> pl.DataFrame:
        """model_latency() as a Polars frame."""
        return self._run_events("model_latency", since, until, model=model, per_day=per_day).pl()

    def _latency(self, agent_name, since, until, per_day, exact=False) -> Result:
        return self._planned(
            "latency_percentiles",
            exact=exact,
            local_dates=bool(per_day),
            agent=agent_name,
            since=epoch(since, "since"),
            until=epoch(until, "until"),
            per_day=bool(per_day),
        )

    # --- regressions -------------------------------------------------------------

    def regressions(self, agent_name=None, **options: Any) -> list[dict[str, Any]]:
        """Per agent (and agent-model pair): recent runs against a baseline, with flags (sql/regressions.sql).

        Options: recent (seconds or timedelta, default 2 days), baseline (the
        span before it, default 14 days), or recent_runs / baseline_runs to
        compare each agent's newest runs by count (among the runs of the last
        `lookback`, default 30 days; None: all); now; min_runs (20),
        min_change (0.2), min_failure_change (0.05), alpha (0.01, for the whole report).
        """
        return self._regressions(agent_name, **options).rows()

    def regressions_frame(self, agent_name=None, **options: Any) -> pl.DataFrame:
        """regressions() as a Polars frame."""
        return self._regressions(agent_name, **options).pl()

    def _regressions(
        self,
        agent_name=None,
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
    ) -> Result:
        until = epoch(now, "now")
        if until is None:
            until = time.time()
        by_count = recent_runs is not None
        if by_count:
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
        return self.run(
            "regressions",
            agent=agent_name,
            since=since,
            split=split,
            until=until,
            recent_runs=recent_runs,
            baseline_runs=baseline_runs,
            min_runs=_whole(min_runs, "min_runs"),
            min_change=_fraction(min_change, "min_change", upper=None),
            min_failure_change=_fraction(min_failure_change, "min_failure_change"),
            alpha=_fraction(alpha, "alpha"),
        )

    # --- health ------------------------------------------------------------------

    def agent_health(
        self,
        agent_name=None,
        last: int = 20,
        degraded: float = 0.2,
        unhealthy: float = 0.5,
        silent_after: Any = DAY,
        silent_factor: float = 10.0,
        now: Any = None,
        lookback: Any = 30 * DAY,
        min_runs: int = 5,
    ) -> list[dict[str, Any]]:
        """healthy / degraded / unhealthy per agent from its last runs, and silence (sql/agent_health.sql).

        Agents that ran within `lookback` (default 30 days; None: all history) are judged;
        one with fewer than `min_runs` finished runs is "unknown" (too few runs to judge).
        """
        return self._health(
            agent_name,
            last,
            degraded,
            unhealthy,
            silent_after,
            silent_factor,
            now,
            lookback,
            min_runs,
        ).rows()

    def agent_health_frame(
        self,
        agent_name=None,
        last: int = 20,
        degraded: float = 0.2,
        unhealthy: float = 0.5,
        silent_after: Any = DAY,
        silent_factor: float = 10.0,
        now: Any = None,
        lookback: Any = 30 * DAY,
        min_runs: int = 5,
    ) -> pl.DataFrame:
        """agent_health() as a Polars frame."""
        return self._health(
            agent_name,
            last,
            degraded,
            unhealthy,
            silent_after,
            silent_factor,
            now,
            lookback,
            min_runs,
        ).pl()

    def _health(
        self,
        agent_name,
        last,
        degraded,
        unhealthy,
        silent_after,
        silent_factor,
        now,
        lookback,
        min_runs=5,
    ):
        degraded = _fraction(degraded, "degraded")
        unhealthy = _fraction(unhealthy, "unhealthy")
        if degraded > unhealthy:
            raise ValueError(f"degraded ({degraded}) must not be above unhealthy ({unhealthy})")
        at = epoch(now, "now") if now is not None else time.time()
        return self.run(
            "agent_health",
            agent=agent_name,
            now=at,
            since=None if lookback is None else at - _seconds(lookback, "lookback"),
            last=_whole(last, "last"),
            degraded=degraded,
            unhealthy=unhealthy,
            silent_after=_seconds(silent_after, "silent_after"),
            silent_factor=_positive(silent_factor, "silent_factor"),
            min_runs=_whole(min_runs, "min_runs"),
        )

    # --- budgets -----------------------------------------------------------------

    def budget_status(
        self,
        daily=None,
        monthly=None,
        agent_name=None,
        days: float = 7,
        now: Any = None,
        *,
        exact: bool = False,
    ) -> dict[str, Any]:
        """Spend today and this month against budgets, and the projected month end (sql/budget_status.sql)."""
        return self._budget(daily, monthly, agent_name, days, now, exact).one()

    def budget_status_frame(
        self,
        daily=None,
        monthly=None,
        agent_name=None,
        days: float = 7,
        now: Any = None,
        *,
        exact: bool = False,
    ) -> pl.DataFrame:
        """budget_status() as a one-row Polars frame."""
        return self._budget(daily, monthly, agent_name, days, now, exact).pl()

    def _budget(self, daily, monthly, agent_name, days, now, exact=False) -> Result:
        at = epoch(now, "now") if now is not None else time.time()
        days = _positive(days, "days")
        # Hours holding `now` or the trailing window's start are split by them: scanned.
        cuts: tuple[float, ...] = (at, at - days * DAY) if at is not None else ()
        return self._planned(
            "budget_status",
            exact=exact,
            cuts=cuts,
            local_dates=True,
            now=at,
            daily=_money(daily, "daily"),
            monthly=_money(monthly, "monthly"),
            days=days,
            agent=agent_name,
            # The month began at most 31 days ago: older lake files can be skipped.
            since=at - (max(days, 31.0) + 1.0) * DAY,
        )

    # --- errors ------------------------------------------------------------------

    def error_groups(
        self, agent_name=None, since=None, until=None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Failures grouped by error type and normalised message, most frequent first (sql/error_groups.sql)."""
        return self._errors(agent_name, since, until, limit).rows()

    def error_groups_frame(
        self, agent_name=None, since=None, until=None, limit: int = 50
    ) -> pl.DataFrame:
        """error_groups() as a Polars frame."""
        return self._errors(agent_name, since, until, limit).pl()

    def _errors(self, agent_name, since, until, limit) -> Result:
        return self.run(
            "error_groups",
            agent=agent_name,
            since=epoch(since, "since"),
            until=epoch(until, "until"),
            limit=_whole(limit, "limit"),
        )

    # --- cost ----------------------------------------------------------------------

    def cost_by_model(
        self, since=None, agent_name=None, *, until=None, per_day: bool = False, exact=False
    ) -> pl.DataFrame:
        """Spend, calls and tokens per model of LLM calls (sql/cost_by_model.sql)."""
        return self._cost_by_model(since, agent_name, until, per_day, exact).pl()

    def cost_by_model_rows(
        self, since=None, agent_name=None, *, until=None, per_day: bool = False, exact=False
    ) -> list[dict[str, Any]]:
        """cost_by_model() as a list of dicts."""
        return self._cost_by_model(since, agent_name, until, per_day, exact).rows()

    def _cost_by_model(self, since, agent_name, until, per_day, exact=False) -> Result:
        if exact:
            return self._run_events(
                "cost_by_model", since, until, agent=agent_name, per_day=bool(per_day)
            )
        return self._planned(
            "cost_by_model",
            local_dates=bool(per_day),
            agent=agent_name,
            since=epoch(since, "since"),
            until=epoch(until, "until"),
            per_day=bool(per_day),
        )

    def cost_trend(
        self, since=None, agent_name=None, *, until=None, window: int = 7, exact=False
    ) -> pl.DataFrame:
        """Spend per day, zero-filled, with a trailing mean and running total (sql/cost_trend.sql)."""
        return self._trend(since, agent_name, until, window, exact).pl()

    def cost_trend_rows(
        self, since=None, agent_name=None, *, until=None, window: int = 7, exact=False
    ) -> list[dict[str, Any]]:
        """cost_trend() as a list of dicts."""
        return self._trend(since, agent_name, until, window, exact).rows()

    def _trend(self, since, agent_name, until, window, exact=False) -> Result:
        return self._planned(
            "cost_trend",
            exact=exact,
            local_dates=True,
            agent=agent_name,
            since=epoch(since, "since"),
            until=epoch(until, "until"),
            window=_whole(window, "window"),
        )

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
        since, until = epoch(since, "since"), epoch(until, "until")
        views = self._views(None if since is None else since - EVENT_MARGIN, until, events=True)
        return self._run_sql(
            load_sql(name), f"sql/{name}.sql", views, {**params, "since": since, "until": until}
        )


# --- argument checks ------------------------------------------------------------------


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
