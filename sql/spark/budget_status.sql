-- budget_status, Spark twin of sql/budget_status.sql (same params, same rows)
-- Transpiled from the DuckDB file, but DuckDB's printf('%g', x) has no Spark equivalent:
-- Java's %g keeps trailing zeros. The method text rounds to one decimal and drops a '.0'.
WITH bounds AS (
  SELECT
    now,
    days,
    UNIX_MICROS(DATE_TRUNC('DAY', TIMESTAMP_SECONDS(now))) / 1000000 AS day_start,
    UNIX_MICROS(DATE_TRUNC('MONTH', TIMESTAMP_SECONDS(now))) / 1000000 AS month_start,
    UNIX_MICROS(DATE_TRUNC('MONTH', TIMESTAMP_SECONDS(now)) + INTERVAL '1' MONTH) / 1000000 AS month_end
  FROM (
    SELECT
      CAST(COALESCE(:now, UNIX_MICROS(NOW()) / 1000000) AS DOUBLE) AS now,
      CAST(COALESCE(:days, 7) AS DOUBLE) AS days
  )
), scoped AS (
  SELECT
    started_at,
    total_cost,
    unpriced_calls
  FROM executions
  WHERE
    (
      :agent IS NULL OR agent_name = :agent OR agent_name RLIKE :agent__glob
    )
    AND (
      :since IS NULL OR started_at >= :since
    )
    AND started_at < (
      SELECT
        now
      FROM bounds
    )
), totals AS (
  SELECT
    COALESCE(SUM(s.total_cost) FILTER(WHERE
      s.started_at >= b.day_start), 0.0D) AS today_cost,
    COUNT(s.started_at) FILTER(WHERE
      s.started_at >= b.day_start) AS today_runs,
    COALESCE(SUM(s.total_cost) FILTER(WHERE
      s.started_at >= b.month_start), 0.0D) AS month_cost,
    COUNT(s.started_at) FILTER(WHERE
      s.started_at >= b.month_start) AS month_runs,
    CAST(COALESCE(SUM(s.unpriced_calls) FILTER(WHERE
      s.started_at >= b.month_start), 0) AS BIGINT) AS unpriced_calls,
    COALESCE(SUM(s.total_cost) FILTER(WHERE
      s.started_at >= b.now - b.days * 86400), 0.0D) AS window_cost,
    GREATEST(LEAST(b.days, (
      b.now - COALESCE(MIN(s.started_at), b.now)
    ) / 86400.0D), 1.0D) AS window_days,
    (
      b.month_end - b.now
    ) / 86400.0D AS days_left,
    (
      b.month_end - b.month_start
    ) / 86400.0D AS days_in_month
  FROM bounds AS b
  LEFT JOIN scoped AS s
    ON TRUE
  GROUP BY
    b.now,
    b.days,
    b.day_start,
    b.month_start,
    b.month_end
)
SELECT
  today_cost,
  today_runs,
  CAST(:daily AS DOUBLE) AS daily_budget,
  COALESCE(today_cost > :daily, FALSE) AS daily_exceeded,
  month_cost,
  month_runs,
  CAST(:monthly AS DOUBLE) AS monthly_budget,
  COALESCE(month_cost > :monthly, FALSE) AS monthly_exceeded,
  unpriced_calls,
  window_cost / window_days AS daily_mean,
  days_left,
  days_in_month,
  month_cost + window_cost / window_days * days_left AS projected_month_end,
  COALESCE(month_cost + window_cost / window_days * days_left > :monthly, FALSE) AS projected_exceeded,
  'month-to-date spend + mean daily spend over the last ' || REGEXP_REPLACE(FORMAT_STRING('%.1f', ROUND(window_days, 1)), '\\.0$', '') || CASE WHEN ROUND(window_days, 1) = 1 THEN ' day' ELSE ' days' END || ' x ' || REGEXP_REPLACE(FORMAT_STRING('%.1f', ROUND(days_left, 1)), '\\.0$', '') || ' days left' AS method
FROM totals
