-- score_summary, Spark twin of sql/score_summary.sql (same params, same rows)
-- Transpiled from the DuckDB file, but DuckDB's mode(label ORDER BY label) (ties: the first
-- label by name) is Spark's deterministic MODE(label, TRUE) (ties: the lowest value).
WITH newest AS (
  SELECT
    execution_id,
    name,
    kind,
    value,
    label
  FROM (
    SELECT
      execution_id,
      name,
      kind,
      value,
      label,
      ROW_NUMBER() OVER (PARTITION BY execution_id, name ORDER BY rev DESC) AS _w
    FROM scores
  ) AS _t
  WHERE
    _w = 1
), scored AS (
  SELECT
    n.name,
    n.kind,
    n.value,
    n.label,
    CASE COALESCE(:group, 'agent')
      WHEN 'model'
      THEN e.model
      WHEN 'date'
      THEN CAST(CAST(TIMESTAMP_SECONDS(e.started_at) AS DATE) AS STRING)
      ELSE e.agent_name
    END AS grp
  FROM newest AS n
  JOIN executions AS e
    ON e.id = n.execution_id
  WHERE
    (
      :agent IS NULL OR e.agent_name = :agent OR e.agent_name RLIKE :agent__glob
    )
    AND (
      :since IS NULL OR e.started_at >= :since
    )
    AND (
      :until IS NULL OR e.started_at < :until
    )
)
SELECT
  name,
  grp AS `group`,
  LISTAGG(DISTINCT kind, ',') WITHIN GROUP (ORDER BY
    kind NULLS LAST) AS kind,
  COUNT(*) AS scores,
  AVG(value) AS mean,
  MIN(value) AS min,
  MAX(value) AS max,
  MODE(label, TRUE) AS top_label
FROM scored
GROUP BY
  name,
  grp
ORDER BY
  name NULLS LAST,
  grp NULLS LAST
