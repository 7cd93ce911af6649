-- budget_status: sql/budget_status.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row
-- params: $now (epoch seconds, default the current time), $daily, $monthly (budgets in dollars, optional),
--         $days (trailing window of the projection in days, default 7), $agent (exact name or glob, optional),
--         $since (epoch seconds, optional), $cut_hours (starts of hours that are scanned even when whole:
--         the store passes the hours holding `now` and the start of the trailing window)
-- reads: rollups, rolled_executions, executions
-- Whole hours before $now come from `rollups`, every other run from `executions` and
-- `rolled_executions` (see sql/rollups/summary_stats.sql). An hour read from rollups lies wholly on
-- one side of each of the window's, the day's and the month's starts, so every sum equals the scan's.
-- One flat aggregate with the bounds written inline (constants DuckDB folds): a join with a
-- one-row table of bounds cost this answer a third of its time.
WITH scoped AS (
    -- one row per raw run or per rollup row: its start (an hour's start for rollups), runs, cost
    SELECT started_at, 1 AS runs, total_cost AS cost, unpriced_calls, started_at AS first_at
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < coalesce($now, epoch(now()))
    UNION ALL
    SELECT started_at, 1, total_cost, unpriced_calls, started_at
    FROM rolled_executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < coalesce($now, epoch(now()))
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND floor(started_at / 3600) * 3600 + 3600 <= coalesce($now, epoch(now()))
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
    UNION ALL
    SELECT hour, runs, cost, unpriced_calls, min_started_at
    FROM rollups
    WHERE runs > 0
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND hour + 3600 <= coalesce($now, epoch(now()))
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
),
totals AS (
    SELECT
        coalesce($now, epoch(now()))::DOUBLE AS now,
        coalesce($days, 7)::DOUBLE AS days,
        epoch(date_trunc('month', to_timestamp(coalesce($now, epoch(now()))))) AS month_start,
        epoch(date_trunc('month', to_timestamp(coalesce($now, epoch(now())))) + INTERVAL 1 MONTH) AS month_end,
        coalesce(sum(cost) FILTER (WHERE started_at >= epoch(date_trunc('day', to_timestamp(coalesce($now, epoch(now())))))), 0.0) AS today_cost,
        coalesce(sum(runs) FILTER (WHERE started_at >= epoch(date_trunc('day', to_timestamp(coalesce($now, epoch(now())))))), 0)::BIGINT AS today_runs,
        coalesce(sum(cost) FILTER (WHERE started_at >= epoch(date_trunc('month', to_timestamp(coalesce($now, epoch(now())))))), 0.0) AS month_cost,
        coalesce(sum(runs) FILTER (WHERE started_at >= epoch(date_trunc('month', to_timestamp(coalesce($now, epoch(now())))))), 0)::BIGINT AS month_runs,
        coalesce(sum(unpriced_calls) FILTER (WHERE started_at >= epoch(date_trunc('month', to_timestamp(coalesce($now, epoch(now())))))), 0)::BIGINT AS unpriced_calls,
        coalesce(sum(cost) FILTER (WHERE started_at >= coalesce($now, epoch(now())) - coalesce($days, 7) * 86400), 0.0) AS window_cost,
        min(first_at) AS first_at
    FROM scoped
),
derived AS (
    SELECT
        *,
        greatest(least(days, (now - coalesce(first_at, now)) / 86400.0), 1.0) AS window_days,
        (month_end - now) / 86400.0 AS days_left,
        (month_end - month_start) / 86400.0 AS days_in_month
    FROM totals
)
SELECT
    today_cost,
    today_runs,
    $daily::DOUBLE AS daily_budget,
    coalesce(today_cost > $daily, false) AS daily_exceeded,
    month_cost,
    month_runs,
    $monthly::DOUBLE AS monthly_budget,
    coalesce(month_cost > $monthly, false) AS monthly_exceeded,
    unpriced_calls,
    window_cost / window_days AS daily_mean,
    days_left,
    days_in_month,
    month_cost + window_cost / window_days * days_left AS projected_month_end,
    coalesce(month_cost + window_cost / window_days * days_left > $monthly, false) AS projected_exceeded,
    'month-to-date spend + mean daily spend over the last ' || printf('%g', round(window_days, 1))
        || CASE WHEN round(window_days, 1) = 1 THEN ' day' ELSE ' days' END
        || ' x ' || printf('%g', round(days_left, 1)) || ' days left' AS method
FROM derived
