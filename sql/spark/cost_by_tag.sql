-- cost_by_tag, Spark twin of sql/cost_by_tag.sql (same params, same rows)
-- DuckDB's json_keys and tags->>key become one explode of the tags object read as a
-- map of strings: Spark keeps a non-string JSON value (true, 2) as its text, as ->> does.
WITH tagged AS (
  SELECT
    EXPLODE(FROM_JSON(tags, 'MAP<STRING, STRING>')) AS (tag_key, tag_value),
    status,
    llm_calls,
    total_tokens,
    total_cost,
    unpriced_calls
  FROM executions
  WHERE
    NOT tags IS NULL
    AND (
      :agent IS NULL OR agent_name = :agent OR agent_name RLIKE :agent__glob
    )
    AND (
      :since IS NULL OR started_at >= :since
    )
    AND (
      :until IS NULL OR started_at < :until
    )
)
SELECT
  CASE WHEN tag_value = 'true' THEN tag_key ELSE tag_key || '=' || tag_value END AS tag,
  COUNT(*) AS calls,
  COUNT(*) FILTER(WHERE status = 'failed') AS failed,
  CAST(COALESCE(SUM(llm_calls), 0) AS BIGINT) AS llm_calls,
  CAST(COALESCE(SUM(total_tokens), 0) AS BIGINT) AS tokens,
  COALESCE(SUM(total_cost), 0.0D) AS cost,
  COALESCE(SUM(total_cost), 0.0D) / COUNT(*) AS cost_per_call,
  CAST(COALESCE(SUM(unpriced_calls), 0) AS BIGINT) AS unpriced_calls
FROM tagged
GROUP BY
  1
ORDER BY
  cost DESC,
  tag NULLS LAST
