-- agent_health: sql/agent_health.sql answered from rollups for whole hours, raw rows for the newest ones
-- grain: one row per agent that has ever run
-- params: $now, $last, $degraded, $unhealthy, $silent_after, $silent_factor, $agent, $since, $min_runs
--         (as sql/agent_health.sql), $cut_hours (starts of hours that are scanned even when whole)
-- reads: rollups, rolled_executions, executions
-- The planner makes every hour from the newest runs back to where each agent has $last finished
-- runs a cut hour, so each agent's last $last finished runs are among the scanned rows; older
-- whole hours give only counts and first/last run times, from `rollups`. Every figure equals the scan's.
-- `now` and `last` are written inline where rows are filtered (constants DuckDB folds): a join
-- with the one-row settings there costs more than the rest of the filter.
WITH settings AS (
    SELECT
        coalesce($now, epoch(now())) AS now,
        coalesce($last, 20) AS last,
        coalesce($degraded, 0.2) AS degraded,
        coalesce($unhealthy, 0.5) AS unhealthy,
        coalesce($silent_after, 86400) AS silent_after,
        coalesce($silent_factor, 10) AS silent_factor,
        coalesce($min_runs, 5) AS min_runs
),
raw AS (
    SELECT agent_name, status, started_at
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < coalesce($now, epoch(now()))
    UNION ALL
    SELECT agent_name, status, started_at
    FROM rolled_executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < coalesce($now, epoch(now()))
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND floor(started_at / 3600) * 3600 + 3600 <= coalesce($now, epoch(now()))
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
),
parts AS (
    SELECT
        agent_name,
        max_by(status, started_at, coalesce($last, 20)) FILTER (WHERE status <> 'running') AS recent,
        count(*) FILTER (WHERE status = 'running') AS running,
        count(*) AS runs,
        min(started_at) AS first_run_at,
        max(started_at) AS last_run_at
    FROM raw
    GROUP BY agent_name
    UNION ALL
    -- rollups hold settled runs only: no running ones, and none of the newest (cut) hours
    SELECT agent_name, NULL, 0, sum(runs), min(min_started_at), max(max_started_at)
    FROM rollups
    WHERE runs > 0
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND hour + 3600 <= coalesce($now, epoch(now()))
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
    GROUP BY agent_name
),
per_agent AS (
    SELECT
        agent_name,
        any_value(recent) FILTER (WHERE recent IS NOT NULL) AS recent,
        sum(running) AS running,
        sum(runs) AS runs,
        min(first_run_at) AS first_run_at,
        max(last_run_at) AS last_run_at
    FROM parts
    GROUP BY agent_name
),
rated AS (
    SELECT
        p.*,
        coalesce(len(recent), 0) AS considered,
        coalesce(len(list_filter(recent, lambda s: s IN ('failed', 'abandoned'))), 0) AS failed,
        CASE WHEN runs > 1 THEN (last_run_at - first_run_at) / (runs - 1) END AS mean_gap,
        s.*
    FROM per_agent p
    CROSS JOIN settings s
)
SELECT
    agent_name,
    CASE
        WHEN considered = 0 OR considered < min_runs THEN 'unknown'
        WHEN failed / considered > unhealthy THEN 'unhealthy'
        WHEN failed / considered > degraded THEN 'degraded'
        ELSE 'healthy'
    END AS status,
    considered,
    failed,
    CASE WHEN considered > 0 THEN failed / considered END AS failure_rate,
    running::BIGINT AS running,
    runs::BIGINT AS runs,
    last_run_at,
    now - last_run_at AS seconds_since_last_run,
    mean_gap,
    now - last_run_at > greatest(silent_after, silent_factor * coalesce(mean_gap, 0)) AS silent
FROM rated
ORDER BY
    CASE status WHEN 'unhealthy' THEN 0 WHEN 'degraded' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END,
    silent DESC,
    agent_name
