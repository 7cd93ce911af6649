-- error_groups: failed runs grouped by error type and normalised message, most frequent first
-- grain: one row per (error type, normalised message)
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional), $limit (default 50)
-- reads: executions
-- The message is normalised so that runs failing the same way group together: quoted values
-- become '<str>', URLs <url>, e-mail addresses <email>, UUIDs, prefixed ids (req_8f3a...) and
-- hex strings of 8 or more digits <id>, IP addresses <ip>, file paths <path>, and standalone
-- numbers <n> (numbers inside names such as gpt-4o stay). Messages are cut at 300 characters.
-- sample_id is the newest run of the group (pass it to `kagura monitor trace`), sample_error
-- its message as recorded.
WITH failed AS (
    SELECT
        id,
        agent_name,
        started_at,
        coalesce(error_type, 'Unknown') AS error_type,
        error,
        left(
            regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
            regexp_replace(regexp_replace(regexp_replace(regexp_replace(regexp_replace(
                coalesce(error, ''),
                '(^|[^\w])''[^'']*''', '\1''<str>''', 'g'),
                '"[^"]*"', '"<str>"', 'g'),
                '[a-zA-Z][a-zA-Z0-9+.-]*://[^\s''"<>)]+', '<url>', 'g'),
                '[\w.+-]+@[\w-]+(\.[\w-]+)+', '<email>', 'g'),
                '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g'),
                '\b[A-Za-z]+_[0-9A-Za-z]*[0-9][0-9A-Za-z]*\b', '<id>', 'g'),
                '(^|[^\w-])(0x)?[0-9a-fA-F]{8,}\b', '\1<id>', 'g'),
                '\b[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]+)?\b', '<ip>', 'g'),
                '(^|[\s(\[=])((~|\.{1,2})?/[^\s''",;:()<>\]]+|[A-Za-z]:\\[^\s''",;:()<>]+|[\w.-]*[A-Za-z_][\w.-]*(/[\w.-]+)+)', '\1<path>', 'g'),
                '(^|[^\w.-])-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?', '\1<n>', 'g'),
                '\s+', ' ', 'g'),
            300
        ) AS message
    FROM executions
    WHERE status = 'failed'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
)
SELECT
    error_type,
    trim(message) AS message,
    count(*) AS count,
    list(DISTINCT agent_name ORDER BY agent_name) AS agents,
    min(started_at) AS first_seen,
    max(started_at) AS last_seen,
    arg_max(id, started_at) AS sample_id,
    arg_max(error, started_at) AS sample_error
FROM failed
GROUP BY error_type, trim(message)
ORDER BY count DESC, last_seen DESC, error_type, message
LIMIT coalesce($limit, 50)
