-- cost_trend, Spark twin of sql/cost_trend.sql (same params, same rows)
-- Spark wants a literal window frame, so the trailing mean over $window days is the difference
-- of running totals $window days apart, divided by the days in the frame.
WITH quarters AS (
    -- 15-minute buckets first: every time zone's midnight falls on a quarter hour.
    SELECT
        CAST(floor(started_at / 900) AS BIGINT) AS quarter,
        count(*) AS runs,
        count(*) FILTER (WHERE status = 'failed') AS failed,
        sum(total_tokens) AS tokens,
        sum(total_cost) AS cost,
        sum(unpriced_calls) AS unpriced_calls
    FROM executions
    WHERE (:agent IS NULL OR agent_name = :agent OR agent_name RLIKE :agent__glob)
      AND (:since IS NULL OR started_at >= :since)
      AND (:until IS NULL OR started_at < :until)
    GROUP BY quarter
),
daily AS (
    SELECT
        CAST(timestamp_seconds(quarter * 900) AS DATE) AS date,
        CAST(sum(runs) AS BIGINT) AS runs,
        CAST(sum(failed) AS BIGINT) AS failed,
        CAST(coalesce(sum(tokens), 0) AS BIGINT) AS tokens,
        coalesce(sum(cost), 0.0D) AS cost,
        CAST(coalesce(sum(unpriced_calls), 0) AS BIGINT) AS unpriced_calls
    FROM quarters
    GROUP BY date
),
calendar AS (
    SELECT explode(sequence(first_day, last_day, INTERVAL 1 DAY)) AS date
    FROM (
        -- From the first day with runs, not from $since: `--since 0` must not list 1970 onwards.
        SELECT min(date) AS first_day, max(date) AS last_day
        FROM daily
    )
    WHERE first_day <= last_day
),
filled AS (
    SELECT
        c.date,
        coalesce(d.runs, 0) AS runs,
        coalesce(d.failed, 0) AS failed,
        coalesce(d.tokens, 0) AS tokens,
        coalesce(d.cost, 0.0D) AS cost,
        coalesce(d.unpriced_calls, 0) AS unpriced_calls,
        sum(coalesce(d.cost, 0.0D)) OVER (ORDER BY c.date ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
            AS cumulative_cost,
        row_number() OVER (ORDER BY c.date) AS nth
    FROM calendar c
    LEFT JOIN daily d ON d.date = c.date
)
SELECT
    f.date,
    f.runs,
    f.failed,
    f.tokens,
    f.cost,
    f.unpriced_calls,
    (f.cumulative_cost - coalesce(b.cumulative_cost, 0.0D)) / least(f.nth, coalesce(:window, 7))
        AS trailing_mean,
    f.cumulative_cost
FROM filled f
LEFT JOIN filled b ON b.nth = f.nth - coalesce(:window, 7)
ORDER BY f.date
