-- summary_stats: counts, durations, cost and tokens over every matching execution
-- grain: one row
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional)
-- reads: executions
-- avg/p50/p95_duration are over finished runs; success_rate is completed / finished runs, in percent.
-- Both are NULL when there is no finished run: no value, not zero. other = cancelled + abandoned.
SELECT
    count(*) AS total_executions,
    count(*) FILTER (WHERE status = 'completed') AS completed,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    count(*) FILTER (WHERE status = 'running') AS running,
    count(*) FILTER (WHERE status = 'cancelled') AS cancelled,
    count(*) FILTER (WHERE status = 'abandoned') AS abandoned,
    count(*) FILTER (WHERE status IN ('cancelled', 'abandoned')) AS other,
    avg(duration) AS avg_duration,
    quantile_cont(duration, 0.5) AS p50_duration,
    quantile_cont(duration, 0.95) AS p95_duration,
    coalesce(sum(total_cost), 0.0) AS total_cost,
    coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
    coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::BIGINT AS completion_tokens,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(tool_calls), 0)::BIGINT AS tool_calls,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls,
    CASE WHEN count(*) FILTER (WHERE status <> 'running') = 0 THEN NULL
         ELSE 100.0 * count(*) FILTER (WHERE status = 'completed')
              / count(*) FILTER (WHERE status <> 'running')
    END AS success_rate,
    min(started_at) AS first_started_at,
    max(started_at) AS last_started_at,
    false AS approx -- true when p50/p95 were read from rollups (sql/rollups/summary_stats.sql)
FROM executions
WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
