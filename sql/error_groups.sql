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
        translate(coalesce(error, ''), '123456789', '000000000') AS digits_as_0
    FROM executions
    WHERE status = 'failed'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
),
-- Messages that differ only in their digits normalise alike (no rule tells digits apart), so
-- group by the message with every digit as 0 first and normalise one message per group.
keyed AS (
    SELECT
        error_type,
        count(*) AS n,
        list(DISTINCT agent_name) AS agents,
        min(started_at) AS first_seen,
        max(started_at) AS last_seen,
        arg_max(id, started_at) AS sample_id,
        arg_max(error, started_at) AS sample_error,
        coalesce(arg_max(error, started_at), '') AS m0
    FROM failed
    GROUP BY error_type, digits_as_0
),
-- Rules run in this order; a rule whose trigger character is absent is skipped.
quoted AS (
    SELECT * EXCLUDE (m0), CASE WHEN contains(m0, '''') OR contains(m0, '"') THEN
        regexp_replace(regexp_replace(m0, '(^|[^\w])''[^'']*''', '\1''<str>''', 'g'), '"[^"]*"', '"<str>"', 'g')
        ELSE m0 END AS m1
    FROM keyed
),
linked AS (
    SELECT * EXCLUDE (m1), CASE WHEN contains(m1, '://') OR contains(m1, '@') THEN
        regexp_replace(regexp_replace(m1, '[a-zA-Z][a-zA-Z0-9+.-]*://[^\s''"<>)]+', '<url>', 'g'),
                       '[\w.+-]+@[\w-]+(\.[\w-]+)+', '<email>', 'g')
        ELSE m1 END AS m2
    FROM quoted
),
-- UUIDs, prefixed ids (req_8f3a9c, exec_0197...) and hex strings of 8 or more digits.
ids AS (
    SELECT * EXCLUDE (m2), regexp_replace(
        CASE WHEN contains(m2, '_') THEN regexp_replace(
            CASE WHEN contains(m2, '-') THEN regexp_replace(m2,
                '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g')
            ELSE m2 END,
            '\b[A-Za-z]+_[0-9A-Za-z]*[0-9][0-9A-Za-z]*\b', '<id>', 'g')
        ELSE CASE WHEN contains(m2, '-') THEN regexp_replace(m2,
                '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}', '<id>', 'g')
            ELSE m2 END END,
        '(^|[^\w-])(0x)?[0-9a-fA-F]{8,}\b', '\1<id>', 'g') AS m3
    FROM linked
),
places AS (
    SELECT * EXCLUDE (m3), CASE WHEN contains(m3, '/') OR contains(m3, '\') OR regexp_matches(m3, '[0-9]\.[0-9]') THEN
        regexp_replace(regexp_replace(m3,
            '\b[0-9]{1,3}(\.[0-9]{1,3}){3}(:[0-9]+)?\b', '<ip>', 'g'),
            '(^|[\s(\[=])((~|\.{1,2})?/[^\s''",;:()<>\]]+|[A-Za-z]:\\[^\s''",;:()<>]+|[\w.-]*[A-Za-z_][\w.-]*(/[\w.-]+)+)', '\1<path>', 'g')
        ELSE m3 END AS m4
    FROM ids
),
numbered AS (
    SELECT * EXCLUDE (m4),
        regexp_replace(m4, '(^|[^\w.-])-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?', '\1<n>', 'g') AS m5
    FROM places
),
normalised AS (
    SELECT * EXCLUDE (m5), left(trim(CASE WHEN regexp_matches(m5, '\s\s|[\t\n\r\f\v]')
        THEN regexp_replace(m5, '\s+', ' ', 'g') ELSE m5 END), 300) AS message
    FROM numbered
)
SELECT
    error_type,
    message,
    sum(n)::BIGINT AS count,
    list_sort(list_distinct(flatten(list(agents)))) AS agents,
    min(first_seen) AS first_seen,
    max(last_seen) AS last_seen,
    arg_max(sample_id, last_seen) AS sample_id,
    arg_max(sample_error, last_seen) AS sample_error
FROM normalised
GROUP BY error_type, message
ORDER BY count DESC, last_seen DESC, error_type, message
LIMIT coalesce($limit, 50)
