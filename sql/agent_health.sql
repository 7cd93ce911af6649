-- agent_health: healthy, degraded or unhealthy per agent from the failure rate of its last N finished runs, and whether it has gone silent
-- grain: one row per agent that has ever run
-- params: $now (epoch seconds, default the current time), $last (runs per agent, default 20),
--         $degraded (failure rate above which an agent is degraded, default 0.2),
--         $unhealthy (failure rate above which it is unhealthy, default 0.5),
--         $silent_after (seconds, default 86400), $silent_factor (default 10), $agent (exact name or glob, optional),
--         $since (epoch seconds, optional: only agents that ran since then, judged on those runs),
--         $min_runs (finished runs needed before a verdict, default 5)
-- reads: executions
-- A failure is a failed or abandoned run (its process died). An agent is silent when its last run
-- started longer ago than both $silent_after and $silent_factor times its mean gap between runs.
-- status is 'unknown' for an agent with fewer than $min_runs finished runs among its last N:
-- one failed run out of one says nothing yet.
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
per_agent AS (
    SELECT
        agent_name,
        max_by(status, started_at, (SELECT last FROM settings)) FILTER (WHERE status <> 'running') AS recent,
        count(*) FILTER (WHERE status = 'running') AS running,
        count(*) AS runs,
        min(started_at) AS first_run_at,
        max(started_at) AS last_run_at
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND started_at < (SELECT now FROM settings)
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
    running,
    runs,
    last_run_at,
    now - last_run_at AS seconds_since_last_run,
    mean_gap,
    now - last_run_at > greatest(silent_after, silent_factor * coalesce(mean_gap, 0)) AS silent
FROM rated
ORDER BY
    CASE status WHEN 'unhealthy' THEN 0 WHEN 'degraded' THEN 1 WHEN 'unknown' THEN 2 ELSE 3 END,
    silent DESC,
    agent_name
