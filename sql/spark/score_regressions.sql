-- score_regressions, Spark twin of sql/score_regressions.sql (same params, same rows)
-- Transpiled from the DuckDB file; only its ORDER BY drop needs the column name quoted for
-- the translation (DROP is a keyword).
WITH bounds AS (
  SELECT
    CAST(COALESCE(:now, UNIX_MICROS(NOW()) / 1000000) AS DOUBLE) AS now,
    CAST(COALESCE(:recent, 86400) AS DOUBLE) AS recent,
    CAST(COALESCE(:lookback, 604800) AS DOUBLE) AS lookback
), newest AS (
  SELECT
    execution_id,
    name,
    value
  FROM (
    SELECT
      execution_id,
      name,
      value,
      ROW_NUMBER() OVER (PARTITION BY execution_id, name ORDER BY rev DESC) AS _w
    FROM scores
    WHERE
      kind IN ('numeric', 'boolean')
  ) AS _t
  WHERE
    _w = 1
), windows AS (
  SELECT
    e.agent_name,
    n.name,
    n.value,
    e.started_at >= b.now - b.recent AS is_recent
  FROM newest AS n
  JOIN executions AS e
    ON e.id = n.execution_id
  CROSS JOIN bounds AS b
  WHERE
    e.started_at < b.now
    AND e.started_at >= b.now - b.recent - b.lookback
    AND (
      :agent IS NULL OR e.agent_name = :agent OR e.agent_name RLIKE :agent__glob
    )
), compared AS (
  SELECT
    agent_name,
    name,
    AVG(value) FILTER(WHERE
      NOT is_recent) AS baseline_mean,
    COUNT(*) FILTER(WHERE
      NOT is_recent) AS baseline_scores,
    AVG(value) FILTER(WHERE
      is_recent) AS recent_mean,
    COUNT(*) FILTER(WHERE
      is_recent) AS recent_scores
  FROM windows
  GROUP BY
    agent_name,
    name
)
SELECT
  agent_name,
  name,
  baseline_mean,
  baseline_scores,
  recent_mean,
  recent_scores,
  baseline_mean - recent_mean AS `drop`
FROM compared
WHERE
  baseline_scores > 0
  AND recent_scores > 0
  AND baseline_mean - recent_mean >= COALESCE(:min_drop, 0.1D)
ORDER BY
  `drop` DESC,
  agent_name NULLS LAST,
  name NULLS LAST
