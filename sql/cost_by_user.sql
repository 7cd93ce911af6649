-- cost_by_user: spend, runs and tokens per user (kagura.context user_id), most expensive first
-- grain: one row per user_id; runs without one form the row whose user_id is NULL
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional)
-- reads: executions
-- calls: runs (nested runs count too: each run's cost is its own LLM calls);
-- unpriced_calls: LLM calls whose model had no known price (their cost is unknown and not in cost).
SELECT
    user_id,
    count(*) AS calls,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(total_tokens), 0)::BIGINT AS tokens,
    coalesce(sum(total_cost), 0.0) AS cost,
    coalesce(sum(total_cost), 0.0) / count(*) AS cost_per_call,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
FROM executions
WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
GROUP BY user_id
ORDER BY cost DESC, user_id NULLS LAST
