-- find_execution: the executions whose id starts with a prefix (at most 21: more means "over 20")
-- grain: one row per matching execution
-- params: $prefix (an id or the start of one)
-- reads: executions
-- `id >= $prefix` lets the Parquet reader skip row groups by their id statistics.
SELECT *
FROM executions
WHERE id >= $prefix AND starts_with(id, $prefix)
ORDER BY id
LIMIT 21
