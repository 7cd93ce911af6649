-- agent_health, Spark twin of sql/agent_health.sql (same params, same rows)
-- Spark's max_by takes no count (DuckDB's max_by(x, y, n) is the top n as a list): each agent's
-- last $last finished runs are numbered with row_number() instead.
WITH settings AS (
    SELECT
        coalesce(:now, unix_micros(now()) / 1000000) AS now,
        coalesce(:last, 20) AS last,
        coalesce(:degraded, 0.2D) AS degraded,
        coalesce(:unhealthy, 0.5D) AS unhealthy,
        coalesce(:silent_after, 86400) AS silent_after,
        coalesce(:silent_factor, 10) AS silent_factor,
        coalesce(:min_runs, 5) AS min_runs
),
scoped AS (
    SELECT
        agent_name,
        status,
        started_at,
        row_number() OVER (PARTITION BY agent_name, status = 'running' ORDER BY started_at DESC) AS nth
    FROM executions
    WHERE (:agent IS NULL OR agent_name = :agent OR agent_name RLIKE :agent__glob)
      AND (:since IS NULL OR started_at >= :since)
      AND started_at < (SELECT now FROM settings)
),
per_agent AS (
    SELECT
        agent_name,
        count(*) FILTER (WHERE status <> 'running' AND nth <= (SELECT last FROM settings)) AS considered,
        count(*) FILTER (
            WHERE status IN ('failed', 'abandoned') AND nth <= (SELECT last FROM settings)
        ) AS failed,
        count(*) FILTER (WHERE status = 'running') AS running,
        count(*) AS runs,
        min(started_at) AS first_run_at,
        max(started_at) AS last_run_at
    FROM scoped
    GROUP BY agent_name
),
rated AS (
    SELECT
        p.*,
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
