-- recent_executions: executions, newest first, filtered by agent, status and time
-- grain: one row per execution
-- params: $agent (exact name or glob such as 'project_a_*', optional), $status (optional),
--         $since, $until (epoch seconds, optional; since inclusive, until exclusive), $limit (default 100),
--         $roots (true: runs without a parent only; default false)
-- reads: executions
SELECT *
FROM executions
WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
  AND ($status IS NULL OR status = $status)
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
  AND (NOT coalesce($roots, false) OR parent_id IS NULL)
ORDER BY started_at DESC, id DESC
LIMIT coalesce($limit, 100)
