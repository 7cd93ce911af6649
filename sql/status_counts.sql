-- status_counts: how many runs have each status (cheaper than summary_stats, for live headers)
-- grain: one row per status that occurs
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional)
-- reads: executions
SELECT status, count(*) AS runs
FROM executions
WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
GROUP BY status
ORDER BY status
