-- cost_by_model: sql/cost_by_model.sql answered from rollups for whole hours, raw calls for the rest
-- grain: one row per model, or per model and local calendar day when $per_day is true
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds of the call, optional),
--         $per_day (default false), $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_events, rolled_executions, events, executions
-- A rollup row's call_* figures count the LLM calls that started in its hour, under the model
-- called and the agent of their run. Whole hours come from `rollups`; every other call from
-- `events` (segments without a rollup, and the SQLite tail) and `rolled_events` (segments with
-- a rollup, in the hours the rollups do not answer). Every figure equals the scan's.
WITH raw AS (
    SELECT name, started_at, prompt_tokens, completion_tokens, total_tokens, cost
    FROM events
    WHERE type = 'llm_call'
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      AND ($agent IS NULL OR execution_id IN (
            SELECT id FROM executions WHERE agent_name = $agent OR agent_name GLOB $agent))
    UNION ALL
    SELECT name, started_at, prompt_tokens, completion_tokens, total_tokens, cost
    FROM rolled_events
    WHERE type = 'llm_call'
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
      AND ($agent IS NULL OR execution_id IN (
            SELECT id FROM rolled_executions WHERE agent_name = $agent OR agent_name GLOB $agent))
),
calls AS (
    SELECT
        name,
        -- Per day: 15-minute buckets first (every time zone's midnight falls on a quarter hour).
        CASE WHEN coalesce($per_day, false) THEN floor(started_at / 900) * 900 END AS slot,
        count(*) AS calls,
        sum(prompt_tokens) AS prompt_tokens,
        sum(completion_tokens) AS completion_tokens,
        sum(total_tokens) AS tokens,
        sum(cost) AS cost,
        count(*) FILTER (WHERE cost IS NULL) AS unpriced_calls
    FROM raw
    GROUP BY ALL
    UNION ALL
    SELECT
        model,
        CASE WHEN coalesce($per_day, false) THEN hour END,
        sum(calls),
        sum(call_prompt_tokens),
        sum(call_completion_tokens),
        sum(call_tokens),
        sum(call_cost),
        sum(call_unpriced)
    FROM rollups
    WHERE calls > 0
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
    GROUP BY ALL
)
SELECT
    name AS model,
    CAST(to_timestamp(slot) AS DATE) AS date,
    sum(calls)::BIGINT AS calls,
    coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
    coalesce(sum(completion_tokens), 0)::BIGINT AS completion_tokens,
    coalesce(sum(tokens), 0)::BIGINT AS tokens,
    coalesce(sum(cost), 0.0)::DOUBLE AS cost,
    coalesce(sum(cost), 0.0)::DOUBLE / sum(calls) AS cost_per_call,
    sum(unpriced_calls)::BIGINT AS unpriced_calls
FROM calls
GROUP BY ALL
ORDER BY date NULLS FIRST, cost DESC, model
