-- summary_stats: sql/summary_stats.sql answered from rollups for whole hours, raw rows for the rest
-- grain: one row
-- params: $agent (exact name or glob, optional), $since, $until (epoch seconds, optional),
--         $cut_hours (starts of hours that are scanned even when whole, optional)
-- reads: rollups, rolled_executions, executions
-- An hour is read from `rollups` when it lies wholly in [$since, $until) and is not in $cut_hours.
-- Every other run is scanned: `executions` (segments without a rollup, and the SQLite tail) and
-- `rolled_executions` (segments with a rollup, in the hours the rollups do not answer).
-- Counts and sums equal the scan's; p50/p95_duration come from log-bucket histograms
-- (gamma 1.02: bucket k holds (1.02^(k-1), 1.02^k], read as 2 * 1.02^k / 2.02), within 1%: approx.
WITH raw AS (
    SELECT status, started_at, duration, total_cost, total_tokens, prompt_tokens,
           completion_tokens, llm_calls, tool_calls, unpriced_calls
    FROM executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    UNION ALL
    SELECT status, started_at, duration, total_cost, total_tokens, prompt_tokens,
           completion_tokens, llm_calls, tool_calls, unpriced_calls
    FROM rolled_executions
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      -- not in an hour the rollups answer (the same test as `rolled` below)
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
),
rolled AS (
    SELECT *
    FROM rollups
    WHERE ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
),
parts AS (
    SELECT status, count(*) AS runs, count(duration) AS duration_count, sum(duration) AS duration_sum,
           sum(total_cost) AS cost, sum(total_tokens) AS total_tokens, sum(prompt_tokens) AS prompt_tokens,
           sum(completion_tokens) AS completion_tokens, sum(llm_calls) AS llm_calls,
           sum(tool_calls) AS tool_calls, sum(unpriced_calls) AS unpriced_calls,
           min(duration) AS duration_min, max(duration) AS duration_max,
           min(started_at) AS first_started_at, max(started_at) AS last_started_at
    FROM raw
    GROUP BY status
    UNION ALL
    SELECT status, sum(runs), sum(duration_count), sum(duration_sum), sum(cost), sum(total_tokens),
           sum(prompt_tokens), sum(completion_tokens), sum(llm_calls), sum(tool_calls),
           sum(unpriced_calls), min(duration_min), max(duration_max), min(min_started_at),
           max(max_started_at)
    FROM rolled
    GROUP BY status
),
-- the histogram of every duration: raw ones bucketed here, rolled-up ones as stored
hist AS (
    SELECT bucket, sum(n) AS n
    FROM (
        SELECT CASE WHEN duration > 0 THEN ceil(ln(duration) / ln(1.02)) ELSE -32768 END AS bucket,
               count(*) AS n
        FROM raw
        WHERE duration IS NOT NULL
        GROUP BY bucket
        UNION ALL
        SELECT unnest(duration_buckets), unnest(duration_counts)
        FROM rolled
    )
    GROUP BY bucket
),
cumulative AS (
    SELECT bucket, sum(n) OVER (ORDER BY bucket ROWS UNBOUNDED PRECEDING) AS upto, sum(n) OVER () AS total
    FROM hist
),
-- quantile_cont's interpolation between the runs at ranks floor and ceil of q * (n - 1),
-- each read as its bucket's value
quantiles AS (
    SELECT
        q,
        min(bucket) FILTER (WHERE upto > floor(q * (total - 1))) AS low,
        min(bucket) FILTER (WHERE upto > ceil(q * (total - 1))) AS high,
        max(q * (total - 1) - floor(q * (total - 1))) AS frac
    FROM cumulative, (VALUES (0.5), (0.95)) AS qs(q)
    GROUP BY q
),
valued AS (
    SELECT
        q,
        CASE WHEN low = -32768 THEN 0.0 ELSE 2 * pow(1.02, low) / 2.02 END AS lo,
        CASE WHEN high = -32768 THEN 0.0 ELSE 2 * pow(1.02, high) / 2.02 END AS hi,
        frac
    FROM quantiles
),
totals AS (
    SELECT
        coalesce(sum(runs), 0)::BIGINT AS total_executions,
        coalesce(sum(runs) FILTER (WHERE status = 'completed'), 0)::BIGINT AS completed,
        coalesce(sum(runs) FILTER (WHERE status = 'failed'), 0)::BIGINT AS failed,
        coalesce(sum(runs) FILTER (WHERE status = 'running'), 0)::BIGINT AS running,
        coalesce(sum(runs) FILTER (WHERE status = 'cancelled'), 0)::BIGINT AS cancelled,
        coalesce(sum(runs) FILTER (WHERE status = 'abandoned'), 0)::BIGINT AS abandoned,
        coalesce(sum(runs) FILTER (WHERE status IN ('cancelled', 'abandoned')), 0)::BIGINT AS other,
        sum(duration_sum) / nullif(sum(duration_count), 0) AS avg_duration,
        coalesce(sum(cost), 0.0)::DOUBLE AS total_cost,
        coalesce(sum(total_tokens), 0)::BIGINT AS total_tokens,
        coalesce(sum(prompt_tokens), 0)::BIGINT AS prompt_tokens,
        coalesce(sum(completion_tokens), 0)::BIGINT AS completion_tokens,
        coalesce(sum(llm_calls), 0)::BIGINT AS llm_calls,
        coalesce(sum(tool_calls), 0)::BIGINT AS tool_calls,
        coalesce(sum(unpriced_calls), 0)::BIGINT AS unpriced_calls,
        sum(runs) FILTER (WHERE status = 'completed') AS done,
        sum(runs) FILTER (WHERE status <> 'running') AS finished,
        min(duration_min) AS duration_min,
        max(duration_max) AS duration_max,
        min(first_started_at) AS first_started_at,
        max(last_started_at) AS last_started_at
    FROM parts
)
SELECT
    total_executions, completed, failed, running, cancelled, abandoned, other, avg_duration,
    -- no quantile lies outside the exact extremes: clamped, one run gives its own duration
    least(greatest((SELECT lo + frac * (hi - lo) FROM valued WHERE q = 0.5), duration_min), duration_max)
        AS p50_duration,
    least(greatest((SELECT lo + frac * (hi - lo) FROM valued WHERE q = 0.95), duration_min), duration_max)
        AS p95_duration,
    total_cost, total_tokens, prompt_tokens, completion_tokens, llm_calls, tool_calls, unpriced_calls,
    CASE WHEN coalesce(finished, 0) = 0 THEN NULL ELSE 100.0 * coalesce(done, 0) / finished END AS success_rate,
    first_started_at,
    last_started_at,
    true AS approx
FROM totals
