-- score_regressions: numeric and boolean scores whose recent mean fell below the baseline's
-- grain: one row per agent and score name that dropped by at least $min_drop
-- params: $now (epoch seconds, default the current time), $recent (seconds, default 86400),
--         $lookback (seconds before the recent window, default 604800), $min_drop (default 0.1),
--         $agent (exact name or glob, optional)
-- reads: executions, scores
-- Runs are placed by their start time: recent = [now - recent, now), baseline = the lookback
-- before that. Only the newest score of each name counts for a run. drop = baseline_mean -
-- recent_mean; a score is listed when drop >= $min_drop and both windows have scores.
WITH bounds AS (
    SELECT
        coalesce($now, epoch(now()))::DOUBLE AS now,
        coalesce($recent, 86400)::DOUBLE AS recent,
        coalesce($lookback, 604800)::DOUBLE AS lookback
),
newest AS (
    SELECT execution_id, name, value
    FROM scores
    WHERE kind IN ('numeric', 'boolean')
    QUALIFY row_number() OVER (PARTITION BY execution_id, name ORDER BY rev DESC) = 1
),
windows AS (
    SELECT
        e.agent_name,
        n.name,
        n.value,
        e.started_at >= b.now - b.recent AS is_recent
    FROM newest n
    JOIN executions e ON e.id = n.execution_id
    CROSS JOIN bounds b
    WHERE e.started_at < b.now
      AND e.started_at >= b.now - b.recent - b.lookback
      AND ($agent IS NULL OR e.agent_name = $agent OR e.agent_name GLOB $agent)
),
compared AS (
    SELECT
        agent_name,
        name,
        avg(value) FILTER (WHERE NOT is_recent) AS baseline_mean,
        count(*) FILTER (WHERE NOT is_recent) AS baseline_scores,
        avg(value) FILTER (WHERE is_recent) AS recent_mean,
        count(*) FILTER (WHERE is_recent) AS recent_scores
    FROM windows
    GROUP BY agent_name, name
)
SELECT
    agent_name,
    name,
    baseline_mean,
    baseline_scores,
    recent_mean,
    recent_scores,
    baseline_mean - recent_mean AS drop
FROM compared
WHERE baseline_scores > 0
  AND recent_scores > 0
  AND baseline_mean - recent_mean >= coalesce($min_drop, 0.1)
ORDER BY drop DESC, agent_name, name
