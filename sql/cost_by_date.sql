-- cost_by_date: spend, runs and tokens per calendar day (local time)
-- grain: one row per day with at least one run
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional)
-- reads: executions
SELECT
    CAST(to_timestamp(started_at) AS DATE) AS date,
    count(*) AS calls,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(total_tokens), 0)::BIGINT AS tokens,
    coalesce(sum(total_cost), 0.0) AS cost,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
FROM executions
WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
GROUP BY date
ORDER BY date
