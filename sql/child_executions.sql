-- child_executions: the runs started directly inside one run (nested agent calls), oldest first
-- grain: one row per execution
-- params: $parent (execution id)
-- reads: executions
SELECT *
FROM executions
WHERE parent_id = $parent
ORDER BY started_at, id
