-- monthly_projection: a 30-day spend estimate from the mean daily spend of a trailing window
-- grain: one row
-- params: $now (epoch seconds), $days (window in days, default 7), $agent (exact name or glob, optional)
-- reads: executions
-- window_days is the window, shortened to the time since the first run when the data is younger
-- (but at least one day), so a new store's estimate is not diluted by days before it existed.
-- method says how the estimate was made, in the words every front end shows.
WITH params AS (
    SELECT coalesce($days, 7)::DOUBLE AS days, $now::DOUBLE AS now
),
scoped AS (
    SELECT started_at, total_cost
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND started_at < $now
),
totals AS (
    SELECT
        coalesce(sum(s.total_cost) FILTER (WHERE s.started_at >= p.now - p.days * 86400), 0.0) AS window_cost,
        count(s.started_at) FILTER (WHERE s.started_at >= p.now - p.days * 86400) AS window_runs,
        greatest(least(p.days, (p.now - coalesce(min(s.started_at), p.now)) / 86400.0), 1.0) AS window_days,
        p.days AS days
    FROM params p
    LEFT JOIN scoped s ON true
    GROUP BY p.days, p.now
)
SELECT
    window_cost,
    window_runs,
    window_days,
    window_cost / window_days AS daily_mean,
    30.0 * window_cost / window_days AS monthly_estimate,
    'mean daily spend over the last '
        || CASE WHEN window_days = floor(window_days) THEN CAST(window_days::BIGINT AS VARCHAR)
            ELSE printf('%.1f', window_days) END
        || CASE WHEN window_days = 1 THEN ' day' ELSE ' days' END
        || CASE WHEN window_days < days THEN ' (all the telemetry there is)' ELSE '' END
        || ' x 30' AS method
FROM totals
