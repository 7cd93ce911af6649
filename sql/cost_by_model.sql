-- cost_by_model: spend, calls and tokens per model of LLM calls, most expensive first (optionally per day)
-- grain: one row per model, or per model and local calendar day when $per_day is true
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds of the call, optional),
--         $per_day (default false)
-- reads: events, executions
-- Every LLM call counts under the model it called, so a run that used two models adds to both.
-- calls: LLM calls; unpriced_calls: calls whose model had no known price (their cost is unknown
-- and not in cost). date is NULL unless $per_day.
WITH calls AS (
    SELECT
        name,
        -- Per day: 15-minute buckets first. Every time zone's midnight falls on a quarter hour,
        -- so a bucket never spans two local days, and dates are worked out once per bucket.
        CASE WHEN coalesce($per_day, false) THEN floor(started_at / 900)::BIGINT END AS quarter,
        count(*) AS calls,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(total_tokens) AS tokens,
        sum(cost) AS cost,
        count(*) FILTER (WHERE cost IS NULL) AS unpriced_calls
    FROM events
    WHERE type = 'llm_call'
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      AND ($agent IS NULL OR execution_id IN (
            SELECT id FROM executions WHERE agent_name = $agent OR agent_name GLOB $agent))
    GROUP BY ALL
)
SELECT
    name AS model,
    CAST(to_timestamp(quarter * 900) AS DATE) AS date,
    sum(calls)::BIGINT AS calls,
    coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::BIGINT AS completion_tokens,
    coalesce(sum(tokens), 0)::BIGINT AS tokens,
    coalesce(sum(cost), 0.0) AS cost,
    coalesce(sum(cost), 0.0) / sum(calls) AS cost_per_call,
    sum(unpriced_calls)::BIGINT AS unpriced_calls
FROM calls
GROUP BY ALL
ORDER BY date NULLS FIRST, cost DESC, model
