-- find_execution: the executions whose id starts with a prefix (at most 20)
-- grain: one row per matching execution
-- params: $prefix (an id or the start of one)
-- reads: executions
SELECT *
FROM executions
WHERE starts_with(id, $prefix)
ORDER BY id
LIMIT 20
