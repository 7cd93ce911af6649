-- latency_percentiles: p50, p90, p95 and p99 duration of finished runs per agent, optionally per day
-- grain: one row per agent, or per agent and local calendar day when $per_day is true
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $per_day (default false)
-- reads: executions
-- Percentiles interpolate between runs (quantile_cont); runs still in progress are left out.
-- date is NULL unless $per_day.
SELECT
    agent_name,
    date,
    runs,
    failed,
    mean,
    q[1] AS p50,
    q[2] AS p90,
    q[3] AS p95,
    q[4] AS p99,
    max,
    false AS approx -- true when read from rollups (sql/rollups/latency_percentiles.sql)
FROM (
    SELECT
        agent_name,
        CASE WHEN coalesce($per_day, false) THEN CAST(to_timestamp(started_at) AS DATE) END AS date,
        count(*) AS runs,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        avg(duration) AS mean,
        quantile_cont(duration, [0.5, 0.9, 0.95, 0.99]) AS q,
        max(duration) AS max
    FROM executions
    WHERE status <> 'running'
      AND duration IS NOT NULL
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    GROUP BY ALL
)
ORDER BY agent_name, date
