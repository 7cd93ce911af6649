-- budget_by_user: each user's spend today and this month (local time) against per-user daily and monthly budgets
-- grain: one row per user (kagura.context user_id) with runs this month, most spent today first
-- params: $now (epoch seconds, default the current time), $daily, $monthly (budgets in dollars per user, optional),
--         $agent (exact name or glob, optional)
-- reads: executions
-- A budget is exceeded when spend is strictly above it. Runs without a user are not listed.
-- unpriced_calls counts the user's LLM calls of the month whose price is unknown: their cost is not in the figures.
WITH bounds AS (
    SELECT
        now,
        epoch(date_trunc('day', to_timestamp(now))) AS day_start,
        epoch(date_trunc('month', to_timestamp(now))) AS month_start
    FROM (SELECT coalesce($now, epoch(now()))::DOUBLE AS now)
),
month AS (
    SELECT e.user_id, e.started_at, e.total_cost, e.unpriced_calls, b.day_start
    FROM executions e, bounds b
    WHERE e.user_id IS NOT NULL
      AND e.started_at >= b.month_start
      AND e.started_at < b.now
      AND ($agent IS NULL OR e.agent_name = $agent OR e.agent_name GLOB $agent)
),
users AS (
    SELECT
        user_id,
        coalesce(sum(total_cost) FILTER (WHERE started_at >= day_start), 0.0) AS today_cost,
        count(*) FILTER (WHERE started_at >= day_start) AS today_runs,
        coalesce(sum(total_cost), 0.0) AS month_cost,
        count(*) AS month_runs,
        coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
    FROM month
    GROUP BY user_id
)
SELECT
    user_id,
    today_cost,
    today_runs,
    $daily::DOUBLE AS daily_budget,
    coalesce(today_cost > $daily, false) AS daily_exceeded,
    month_cost,
    month_runs,
    $monthly::DOUBLE AS monthly_budget,
    coalesce(month_cost > $monthly, false) AS monthly_exceeded,
    unpriced_calls
FROM users
ORDER BY today_cost DESC, month_cost DESC, user_id
