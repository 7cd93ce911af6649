-- trace_executions: every execution of one trace (a root run and the runs nested in it), oldest first
-- grain: one row per execution
-- params: $trace (trace id)
-- reads: executions
SELECT *
FROM executions
WHERE trace_id = $trace
ORDER BY started_at, id
