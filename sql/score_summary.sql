-- score_summary: scores given to runs, per score name and agent, model or day
-- grain: one row per score name and group ($group: agent, model or date)
-- params: $group ('agent' (default), 'model' or 'date'), $agent (exact name or glob, optional),
--         $since, $until (epoch seconds of the run's start, optional)
-- reads: executions, scores
-- Only the newest score of each name counts for a run (scores are append-only: a later one
-- replaces an earlier one). mean, min and max are over numeric and boolean scores (true = 1,
-- so a boolean's mean is its pass rate); top_label is the most given label, ties by name.
WITH newest AS (
    SELECT execution_id, name, kind, value, label
    FROM scores
    QUALIFY row_number() OVER (PARTITION BY execution_id, name ORDER BY rev DESC) = 1
),
scored AS (
    SELECT
        n.name,
        n.kind,
        n.value,
        n.label,
        CASE coalesce($group, 'agent')
            WHEN 'model' THEN e.model
            WHEN 'date' THEN CAST(CAST(to_timestamp(e.started_at) AS DATE) AS VARCHAR)
            ELSE e.agent_name
        END AS grp
    FROM newest n
    JOIN executions e ON e.id = n.execution_id
    WHERE ($agent IS NULL OR e.agent_name = $agent OR e.agent_name GLOB $agent)
      AND ($since IS NULL OR e.started_at >= $since)
      AND ($until IS NULL OR e.started_at < $until)
)
SELECT
    name,
    grp AS "group",
    string_agg(DISTINCT kind, ',' ORDER BY kind) AS kind,
    count(*) AS scores,
    avg(value) AS mean,
    min(value) AS min,
    max(value) AS max,
    mode(label ORDER BY label) AS top_label
FROM scored
GROUP BY name, grp
ORDER BY name, grp NULLS LAST
