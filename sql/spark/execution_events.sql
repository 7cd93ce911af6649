-- execution_events, Spark twin of sql/execution_events.sql (same params, same rows)
-- Spark gives a NULL parameter no type, and array_contains refuses an untyped NULL: $ids is cast.
SELECT *
FROM events
WHERE (:ids IS NULL OR array_contains(CAST(:ids AS ARRAY<STRING>), execution_id))
  AND (:since IS NULL OR started_at >= :since)
  AND (:until IS NULL OR started_at < :until)
  AND (:type IS NULL OR type = :type)
ORDER BY execution_id NULLS LAST, seq NULLS LAST
