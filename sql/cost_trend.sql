-- cost_trend: spend per local calendar day with a trailing mean and a running total, days without runs included
-- grain: one row per day from the first day with runs to the day of the last run
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $window (days of the trailing mean, default 7)
-- reads: executions
-- Spend counts on the day its run started. trailing_mean is the mean daily spend of the $window
-- days ending on that day (days without runs count as zero; fewer days at the start of the range).
WITH quarters AS (
    -- 15-minute buckets first: every time zone's midnight falls on a quarter hour, so a bucket
    -- never spans two local days, and dates are worked out once per bucket, not per run.
    SELECT
        floor(started_at / 900)::BIGINT AS quarter,
        count(*) AS runs,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        sum(total_tokens) AS tokens,
        sum(total_cost) AS cost,
        sum(unpriced_calls) AS unpriced_calls
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    GROUP BY quarter
),
daily AS (
    SELECT
        CAST(to_timestamp(quarter * 900) AS DATE) AS date,
        sum(runs)::BIGINT AS runs,
        sum(failed)::BIGINT AS failed,
        coalesce(sum(tokens), 0)::BIGINT AS tokens,
        coalesce(sum(cost), 0.0) AS cost,
        coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
    FROM quarters
    GROUP BY date
),
calendar AS (
    SELECT CAST(day AS DATE) AS date
    FROM (
        -- From the first day with runs, not from $since: `--since 0` must not list 1970 onwards.
        SELECT min(date) AS first_day, max(date) AS last_day
        FROM daily
    ),
    generate_series(first_day::TIMESTAMP, last_day::TIMESTAMP, INTERVAL 1 DAY) AS days(day)
)
SELECT
    c.date,
    coalesce(d.runs, 0) AS runs,
    coalesce(d.failed, 0) AS failed,
    coalesce(d.tokens, 0) AS tokens,
    coalesce(d.cost, 0.0) AS cost,
    coalesce(d.unpriced_calls, 0) AS unpriced_calls,
    avg(coalesce(d.cost, 0.0)) OVER (
        ORDER BY c.date ROWS BETWEEN coalesce($window, 7) - 1 PRECEDING AND CURRENT ROW
    ) AS trailing_mean,
    sum(coalesce(d.cost, 0.0)) OVER (ORDER BY c.date ROWS UNBOUNDED PRECEDING) AS cumulative_cost
FROM calendar c
LEFT JOIN daily d USING (date)
ORDER BY c.date
