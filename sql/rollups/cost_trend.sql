-- cost_trend: sql/cost_trend.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row per day from the first day with runs to the day of the last run
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $window (days of the trailing mean, default 7),
--         $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_executions, executions
-- Whole hours come from `rollups`, every other run from `executions` and `rolled_executions`
-- (see sql/rollups/summary_stats.sql); read so only where local midnights fall on whole hours.
-- Every figure equals the scan's.
WITH slots AS (
    -- 15-minute buckets of raw runs, whole hours of rollups: neither spans two local days
    SELECT floor(started_at / 900) * 900 AS slot, count(*) AS runs,
           count(*) FILTER (WHERE status = 'failed') AS failed, sum(total_tokens) AS tokens,
           sum(total_cost) AS cost, sum(unpriced_calls) AS unpriced_calls
    FROM (
        SELECT started_at, status, total_tokens, total_cost, unpriced_calls
        FROM executions
        WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
          AND ($since IS NULL OR started_at >= $since)
          AND ($until IS NULL OR started_at < $until)
        UNION ALL
        SELECT started_at, status, total_tokens, total_cost, unpriced_calls
        FROM rolled_executions
        WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
          AND ($since IS NULL OR started_at >= $since)
          AND ($until IS NULL OR started_at < $until)
          AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
                   AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
                   AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
    )
    GROUP BY slot
    UNION ALL
    SELECT hour, sum(runs), sum(failed), sum(total_tokens), sum(cost), sum(unpriced_calls)
    FROM rollups
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
    GROUP BY hour
    HAVING sum(runs) > 0
),
daily AS (
    SELECT
        CAST(to_timestamp(slot) AS DATE) AS date,
        sum(runs)::BIGINT AS runs,
        sum(failed)::BIGINT AS failed,
        coalesce(sum(tokens), 0)::BIGINT AS tokens,
        coalesce(sum(cost), 0.0)::DOUBLE AS cost,
        coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
    FROM slots
    GROUP BY date
),
calendar AS (
    SELECT CAST(day AS DATE) AS date
    FROM (
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
