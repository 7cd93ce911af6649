-- search: runs whose error, arguments, event fields or captured content contain $term, newest first
-- grain: one row per place the text was found (a run can appear more than once)
-- params: $term (case-insensitive, taken literally: no wildcards), $agent (exact name or glob, optional),
--         $since, $until (epoch seconds of the run's start, optional), $limit (default 50)
-- reads: executions, events
-- A plain scan: every run (and event) in the window is read and lower-cased; there is no index.
-- field: error, arguments, tags, metadata, or event:<type>:<name> (its data: tool arguments,
-- captured prompt, reply, result, output) or event error. snippet: up to 120 characters around the
-- first match.
WITH runs AS (
    SELECT id, agent_name, started_at, status, error, kwargs, tags, metadata
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
),
places AS (
    SELECT id AS execution_id, 'error' AS field, error AS body FROM runs
    UNION ALL SELECT id, 'arguments', kwargs FROM runs
    UNION ALL SELECT id, 'tags', tags FROM runs
    UNION ALL SELECT id, 'metadata', metadata FROM runs
    UNION ALL
    SELECT e.execution_id, 'event:' || e.type || ':' || coalesce(e.name, ''), e.data
    FROM events e WHERE e.execution_id IN (SELECT id FROM runs)
    UNION ALL
    SELECT e.execution_id, 'event error:' || e.type || ':' || coalesce(e.name, ''), e.error
    FROM events e WHERE e.execution_id IN (SELECT id FROM runs)
),
hits AS (
    SELECT execution_id, field, body, strpos(lower(body), lower($term)) AS at
    FROM places
    WHERE body IS NOT NULL AND strpos(lower(body), lower($term)) > 0
)
SELECT
    h.execution_id,
    r.agent_name,
    r.started_at,
    r.status,
    h.field,
    substr(h.body, greatest(1, h.at - 40)::BIGINT, 120) AS snippet
FROM hits h
JOIN runs r ON r.id = h.execution_id
ORDER BY r.started_at DESC, h.execution_id, h.field
LIMIT coalesce($limit, 50)
