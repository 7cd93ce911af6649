-- cost_by_agent: sql/cost_by_agent.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row per agent
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_executions, executions
-- Whole hours come from `rollups`, every other run from `executions` and `rolled_executions`
-- (see sql/rollups/summary_stats.sql). Every figure equals the scan's.
WITH parts AS (
    SELECT agent_name, count(*) AS calls, count(*) FILTER (WHERE status = 'failed') AS failed,
           sum(llm_calls) AS llm_calls, sum(total_tokens) AS tokens, sum(total_cost) AS cost,
           sum(unpriced_calls) AS unpriced_calls
    FROM (
        SELECT agent_name, status, llm_calls, total_tokens, total_cost, unpriced_calls
        FROM executions
        WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
          AND ($since IS NULL OR started_at >= $since)
          AND ($until IS NULL OR started_at < $until)
        UNION ALL
        SELECT agent_name, status, llm_calls, total_tokens, total_cost, unpriced_calls
        FROM rolled_executions
        WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
          AND ($since IS NULL OR started_at >= $since)
          AND ($until IS NULL OR started_at < $until)
          AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
                   AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
                   AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
    )
    GROUP BY agent_name
    UNION ALL
    SELECT agent_name, sum(runs), sum(failed), sum(llm_calls), sum(total_tokens), sum(cost),
           sum(unpriced_calls)
    FROM rollups
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
    GROUP BY agent_name
    -- rows of LLM calls only (no run of the agent in that hour and model) add nothing
    HAVING sum(runs) > 0
)
SELECT
    agent_name,
    sum(calls)::BIGINT AS calls,
    sum(failed)::BIGINT AS failed,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(tokens), 0)::BIGINT AS tokens,
    coalesce(sum(cost), 0.0)::DOUBLE AS cost,
    coalesce(sum(cost), 0.0)::DOUBLE / sum(calls) AS cost_per_call,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
FROM parts
GROUP BY agent_name
ORDER BY cost DESC, agent_name
