-- cost_by_date: sql/cost_by_date.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row per day with at least one run
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_executions, executions
-- Whole hours come from `rollups`, every other run from `executions` and `rolled_executions`
-- (see sql/rollups/summary_stats.sql). An hour's local date is its start's: the store reads
-- rollups for this only where local midnights fall on whole hours. Every figure equals the scan's.
WITH parts AS (
    -- 15-minute buckets of raw runs first, so dates are worked out once per bucket
    SELECT floor(started_at / 900) * 900 AS slot, count(*) AS calls,
           count(*) FILTER (WHERE status = 'failed') AS failed, sum(llm_calls) AS llm_calls,
           sum(total_tokens) AS tokens, sum(total_cost) AS cost, sum(unpriced_calls) AS unpriced_calls
    FROM (
        SELECT started_at, status, llm_calls, total_tokens, total_cost, unpriced_calls
        FROM executions
        WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
          AND ($since IS NULL OR started_at >= $since)
          AND ($until IS NULL OR started_at < $until)
        UNION ALL
        SELECT started_at, status, llm_calls, total_tokens, total_cost, unpriced_calls
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
    SELECT hour, sum(runs), sum(failed), sum(llm_calls), sum(total_tokens), sum(cost),
           sum(unpriced_calls)
    FROM rollups
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
    GROUP BY hour
    HAVING sum(runs) > 0
)
SELECT
    CAST(to_timestamp(slot) AS DATE) AS date,
    sum(calls)::BIGINT AS calls,
    sum(failed)::BIGINT AS failed,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(tokens), 0)::BIGINT AS tokens,
    coalesce(sum(cost), 0.0)::DOUBLE AS cost,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
FROM parts
GROUP BY date
ORDER BY date
