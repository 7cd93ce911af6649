-- latency_percentiles: sql/latency_percentiles.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row per agent, or per agent and local calendar day when $per_day is true
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $per_day (default false), $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_executions, executions
-- Whole hours come from `rollups`, every other run from `executions` and `rolled_executions`
-- (see sql/rollups/summary_stats.sql). runs, failed, mean and max equal the scan's; p50..p99 are
-- read from the merged log-bucket histograms (gamma 1.02), within 1% of quantile_cont's: approx.
WITH raw AS (
    SELECT agent_name, started_at, status, duration
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    UNION ALL
    SELECT agent_name, started_at, status, duration
    FROM rolled_executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
),
finished AS (
    SELECT
        agent_name,
        CASE WHEN coalesce($per_day, false) THEN CAST(to_timestamp(started_at) AS DATE) END AS date,
        status,
        duration
    FROM raw
    WHERE status <> 'running' AND duration IS NOT NULL
),
rolled AS (
    SELECT
        agent_name,
        CASE WHEN coalesce($per_day, false) THEN CAST(to_timestamp(hour) AS DATE) END AS date,
        *
    EXCLUDE (agent_name)
    FROM rollups
    WHERE duration_count > 0
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
),
tallies AS (
    SELECT agent_name, date, sum(runs) AS runs, sum(failed) AS failed, sum(total) AS total,
           min(min) AS min, max(max) AS max
    FROM (
        SELECT agent_name, date, count(*) AS runs, count(*) FILTER (WHERE status = 'failed') AS failed,
               sum(duration) AS total, min(duration) AS min, max(duration) AS max
        FROM finished
        GROUP BY ALL
        UNION ALL
        -- rollups hold settled runs only; runs and failed counted where a duration was recorded
        SELECT agent_name, date, sum(duration_count), sum(duration_count) FILTER (WHERE status = 'failed'),
               sum(duration_sum), min(duration_min), max(duration_max)
        FROM rolled
        GROUP BY ALL
    )
    GROUP BY ALL
),
hist AS (
    SELECT agent_name, date, bucket, sum(n) AS n
    FROM (
        SELECT agent_name, date,
               CASE WHEN duration > 0 THEN ceil(ln(duration) / ln(1.02)) ELSE -32768 END AS bucket,
               count(*) AS n
        FROM finished
        GROUP BY ALL
        UNION ALL
        SELECT agent_name, date, unnest(duration_buckets), unnest(duration_counts)
        FROM rolled
    )
    GROUP BY ALL
),
cumulative AS (
    SELECT
        *,
        sum(n) OVER (PARTITION BY agent_name, date ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS upto,
        sum(n) OVER (PARTITION BY agent_name, date) AS total
    FROM hist
),
-- quantile_cont's interpolation between the runs at ranks floor and ceil of q * (n - 1),
-- each read as its bucket's value 2 * 1.02^k / 2.02
quantiles AS (
    SELECT
        agent_name,
        date,
        q,
        min(bucket) FILTER (WHERE upto > floor(q * (total - 1))) AS low,
        min(bucket) FILTER (WHERE upto > ceil(q * (total - 1))) AS high,
        max(q * (total - 1) - floor(q * (total - 1))) AS frac
    FROM cumulative, (VALUES (0.5), (0.9), (0.95), (0.99)) AS qs(q)
    GROUP BY ALL
),
valued AS (
    SELECT
        agent_name,
        date,
        list(lo + frac * (hi - lo) ORDER BY q) AS q
    FROM (
        SELECT
            *,
            CASE WHEN low = -32768 THEN 0.0 ELSE 2 * pow(1.02, low) / 2.02 END AS lo,
            CASE WHEN high = -32768 THEN 0.0 ELSE 2 * pow(1.02, high) / 2.02 END AS hi
        FROM quantiles
    )
    GROUP BY ALL
)
SELECT
    t.agent_name,
    t.date,
    t.runs::BIGINT AS runs,
    coalesce(t.failed, 0)::BIGINT AS failed,
    t.total / t.runs AS mean,
    -- no quantile lies outside the exact extremes: clamped, one run gives its own duration
    least(greatest(v.q[1], t.min), t.max) AS p50,
    least(greatest(v.q[2], t.min), t.max) AS p90,
    least(greatest(v.q[3], t.min), t.max) AS p95,
    least(greatest(v.q[4], t.min), t.max) AS p99,
    t.max,
    true AS approx
FROM tallies t
JOIN valued v ON v.agent_name = t.agent_name AND v.date IS NOT DISTINCT FROM t.date
WHERE t.runs > 0
ORDER BY t.agent_name, t.date
