-- budget_status: spend today and this month (local time) against daily and monthly budgets, with the projected month-end spend
-- grain: one row
-- params: $now (epoch seconds, default the current time), $daily, $monthly (budgets in dollars, optional),
--         $days (trailing window of the projection in days, default 7), $agent (exact name or glob, optional),
--         $since (epoch seconds, optional: runs before it are ignored; lets the store skip older files)
-- reads: executions
-- A budget is exceeded when spend is strictly above it. The projection is month-to-date spend plus
-- the mean daily spend of the trailing window times the days left in the month; the window is
-- shortened to the age of the data (at least one day). unpriced_calls counts LLM calls of the month
-- whose price is unknown: their cost is not in the figures.
WITH bounds AS (
    SELECT
        now,
        days,
        epoch(date_trunc('day', to_timestamp(now))) AS day_start,
        epoch(date_trunc('month', to_timestamp(now))) AS month_start,
        epoch(date_trunc('month', to_timestamp(now)) + INTERVAL 1 MONTH) AS month_end
    FROM (SELECT coalesce($now, epoch(now()))::DOUBLE AS now, coalesce($days, 7)::DOUBLE AS days)
),
scoped AS (
    SELECT started_at, total_cost, unpriced_calls
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < (SELECT now FROM bounds)
),
totals AS (
    SELECT
        coalesce(sum(s.total_cost) FILTER (WHERE s.started_at >= b.day_start), 0.0) AS today_cost,
        count(s.started_at) FILTER (WHERE s.started_at >= b.day_start) AS today_runs,
        coalesce(sum(s.total_cost) FILTER (WHERE s.started_at >= b.month_start), 0.0) AS month_cost,
        count(s.started_at) FILTER (WHERE s.started_at >= b.month_start) AS month_runs,
        coalesce(sum(s.unpriced_calls) FILTER (WHERE s.started_at >= b.month_start), 0)::BIGINT AS unpriced_calls,
        coalesce(sum(s.total_cost) FILTER (WHERE s.started_at >= b.now - b.days * 86400), 0.0) AS window_cost,
        greatest(least(b.days, (b.now - coalesce(min(s.started_at), b.now)) / 86400.0), 1.0) AS window_days,
        (b.month_end - b.now) / 86400.0 AS days_left,
        (b.month_end - b.month_start) / 86400.0 AS days_in_month
    FROM bounds b
    LEFT JOIN scoped s ON true
    GROUP BY b.now, b.days, b.day_start, b.month_start, b.month_end
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
FROM totals
