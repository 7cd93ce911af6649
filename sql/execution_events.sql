-- execution_events: the events of some executions, in the order they happened
-- grain: one row per event
-- params: $ids (list of execution ids, optional: all events), $since, $until (epoch seconds, optional),
--         $type (event type, optional)
-- reads: events
SELECT *
FROM events
WHERE ($ids IS NULL OR list_contains($ids, execution_id))
  AND ($since IS NULL OR started_at >= $since)
  AND ($until IS NULL OR started_at < $until)
  AND ($type IS NULL OR type = $type)
ORDER BY execution_id, seq
