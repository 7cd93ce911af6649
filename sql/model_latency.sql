-- model_latency: p50, p90, p95 and p99 duration of LLM calls per model, optionally per day
-- grain: one row per model, or per model and local calendar day when $per_day is true
-- params: $model (exact name or glob, optional), $since, $until (epoch seconds of the call, optional),
--         $per_day (default false)
-- reads: events
-- tokens_per_second: completion tokens over the seconds spent in calls that report both.
-- date is NULL unless $per_day.
SELECT
    model,
    date,
    calls,
    failed,
    mean,
    q[1] AS p50,
    q[2] AS p90,
    q[3] AS p95,
    q[4] AS p99,
    max,
    tokens_per_second
FROM (
    SELECT
        name AS model,
        CASE WHEN coalesce($per_day, false) THEN CAST(to_timestamp(started_at) AS DATE) END AS date,
        count(*) AS calls,
        count(*) FILTER (WHERE status = 'failed' OR error IS NOT NULL) AS failed,
        avg(duration) AS mean,
        quantile_cont(duration, [0.5, 0.9, 0.95, 0.99]) AS q,
        max(duration) AS max,
        sum(completion_tokens) FILTER (WHERE duration > 0)
            / nullif(sum(duration) FILTER (WHERE completion_tokens IS NOT NULL AND duration > 0), 0)
            AS tokens_per_second
    FROM events
    WHERE type = 'llm_call'
      AND duration IS NOT NULL
      AND ($model IS NULL OR name = $model OR name GLOB $model)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    GROUP BY ALL
)
ORDER BY model, date
