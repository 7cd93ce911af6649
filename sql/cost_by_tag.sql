-- cost_by_tag: spend, runs and tokens per tag, most expensive first
-- grain: one row per tag: a label tag ("beta") by its name, a key/value tag as "key=value"
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional)
-- reads: executions
-- A run with two tags counts under both, so the rows add up to more than the total spend;
-- runs without tags are not listed. unpriced_calls: LLM calls whose model had no known price.
WITH tagged AS (
    SELECT
        unnest(json_keys(tags)) AS tag_key,
        tags,
        status,
        llm_calls,
        total_tokens,
        total_cost,
        unpriced_calls
    FROM executions
    WHERE tags IS NOT NULL
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
)
SELECT
    -- A label is stored as the key with the value true; other tags show their value.
    CASE WHEN tags->>tag_key = 'true' THEN tag_key ELSE tag_key || '=' || (tags->>tag_key) END AS tag,
    count(*) AS calls,
    count(*) FILTER (WHERE status = 'failed') AS failed,
    coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
    coalesce(sum(total_tokens), 0)::BIGINT AS tokens,
    coalesce(sum(total_cost), 0.0) AS cost,
    coalesce(sum(total_cost), 0.0) / count(*) AS cost_per_call,
    coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls
FROM tagged
GROUP BY 1
ORDER BY cost DESC, tag
