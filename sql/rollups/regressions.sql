-- regressions: sql/regressions.sql (its time-window form) answered from rollups for whole hours, raw rows for the rest
-- grain: one row per agent, plus one per (agent, model) for agents that ran more than one model
-- params: $since (baseline start, epoch seconds), $split (recent start), $until (recent end, optional),
--         $agent (exact name or glob, optional), $min_runs, $min_change, $min_failure_change, $alpha
--         (as sql/regressions.sql), $cut_hours (starts of hours that are scanned even when whole;
--         the planner makes the hour holding $split one)
-- reads: rollups, rolled_executions, executions
-- Only the time-window form: comparing each agent's newest runs by count ($recent_runs) needs the
-- runs one by one, so that form always scans sql/regressions.sql.
-- Whole hours come from `rollups` (see sql/rollups/summary_stats.sql); the hour holding $split is
-- scanned, so every rollup row lies wholly on one side of it. Counts, failure rates, cost per run
-- and the failure test equal the scan's. The other tests are those of sql/regressions.sql, read from log-bucket
-- histograms (gamma 1.02: bucket k holds (1.02^(k-1), 1.02^k], read as 2 * 1.02^k / 2.02) instead
-- of 1% steps: raw rows are bucketed here as compaction buckets them, so both halves merge.
-- Medians and p95s are within 2% of the scan's (both read the same run's value, each to within
-- its resolution); rank sums tie runs within a bucket rather than a step, so p-values are close
-- to the scan's, not equal: approx.
WITH settings AS (
    SELECT
        coalesce($min_runs, 20) AS min_runs,
        coalesce($min_change, 0.2) AS min_change,
        coalesce($min_failure_change, 0.05) AS min_failure_change,
        coalesce($alpha, 0.01) AS alpha
),
raw AS (
    SELECT agent_name, model::VARCHAR AS model, started_at, duration, status, total_cost
    FROM executions
    WHERE status <> 'running'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
    UNION ALL
    SELECT agent_name, model::VARCHAR, started_at, duration, status, total_cost
    FROM rolled_executions
    WHERE status <> 'running'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR started_at >= $since)
      AND ($until IS NULL OR started_at < $until)
      -- not in an hour the rollups answer (the same test as `rolled` below)
      AND NOT (($since IS NULL OR floor(started_at / 3600) * 3600 >= $since)
               AND ($until IS NULL OR floor(started_at / 3600) * 3600 + 3600 <= $until)
               AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), floor(started_at / 3600) * 3600))
),
runs AS (
    SELECT *, started_at >= $split AS recent
    FROM raw
),
-- A rollup row covers an hour (or a block of whole hours) that holds no cut: all of it lies on
-- one side of $split.
rolled AS (
    SELECT *, hour >= $split AS recent
    FROM rollups
    WHERE runs > 0
      AND status <> 'running'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($since IS NULL OR hour >= $since)
      AND ($until IS NULL OR hour + 3600 <= $until)
      AND NOT list_contains(coalesce($cut_hours, []::DOUBLE[]), hour::DOUBLE)
),
-- Per agent and model: runs and failures on each side, and the cost of completed, priced runs
-- (a rollup's cost sums its priced runs; runs - unpriced_runs counts them).
tallies AS (
    SELECT
        agent_name,
        model,
        hash(agent_name, model) AS pair,
        sum(recent_runs) AS recent_runs,
        sum(baseline_runs) AS baseline_runs,
        sum(recent_failed) AS recent_failed,
        sum(baseline_failed) AS baseline_failed,
        sum(recent_cost) AS recent_cost,
        sum(recent_priced) AS recent_priced,
        sum(baseline_cost) AS baseline_cost,
        sum(baseline_priced) AS baseline_priced
    FROM (
        SELECT
            agent_name,
            model,
            count(*) FILTER (WHERE recent) AS recent_runs,
            count(*) FILTER (WHERE NOT recent) AS baseline_runs,
            count(*) FILTER (WHERE recent AND status = 'failed') AS recent_failed,
            count(*) FILTER (WHERE NOT recent AND status = 'failed') AS baseline_failed,
            sum(total_cost) FILTER (WHERE recent AND status = 'completed') AS recent_cost,
            count(total_cost) FILTER (WHERE recent AND status = 'completed') AS recent_priced,
            sum(total_cost) FILTER (WHERE NOT recent AND status = 'completed') AS baseline_cost,
            count(total_cost) FILTER (WHERE NOT recent AND status = 'completed') AS baseline_priced
        FROM runs
        GROUP BY agent_name, model
        UNION ALL
        SELECT
            agent_name,
            model,
            coalesce(sum(runs) FILTER (WHERE recent), 0),
            coalesce(sum(runs) FILTER (WHERE NOT recent), 0),
            coalesce(sum(failed) FILTER (WHERE recent), 0),
            coalesce(sum(failed) FILTER (WHERE NOT recent), 0),
            sum(cost) FILTER (WHERE recent AND status = 'completed'),
            coalesce(sum(runs - unpriced_runs) FILTER (WHERE recent AND status = 'completed'), 0),
            sum(cost) FILTER (WHERE NOT recent AND status = 'completed'),
            coalesce(sum(runs - unpriced_runs) FILTER (WHERE NOT recent AND status = 'completed'), 0)
        FROM rolled
        GROUP BY agent_name, model
    )
    GROUP BY agent_name, model
),
-- Completed runs per bucket on each side (metric 0: duration, 1: cost), raw rows bucketed as
-- compaction buckets them (rollups.bucket_of: ceil(ln(value) / ln(1.02)), zero and below in
-- bucket -32768), rolled-up ones as stored. Ranks and percentiles are read from these counts.
histogram AS (
    SELECT pair, metric, step, sum(r) AS r, sum(b) AS b
    FROM (
        SELECT
            pair,
            metric,
            step,
            count(*) FILTER (WHERE recent) AS r,
            count(*) FILTER (WHERE NOT recent) AS b
        FROM (
            SELECT hash(agent_name, model) AS pair, recent, 0 AS metric,
                   CASE WHEN duration > 0 THEN ceil(ln(duration) / ln(1.02))::INTEGER ELSE -32768 END AS step
            FROM runs
            WHERE status = 'completed' AND duration IS NOT NULL
            UNION ALL
            SELECT hash(agent_name, model), recent, 1,
                   CASE WHEN total_cost > 0 THEN ceil(ln(total_cost) / ln(1.02))::INTEGER ELSE -32768 END
            FROM runs
            WHERE status = 'completed' AND total_cost IS NOT NULL
        )
        GROUP BY pair, metric, step
        UNION ALL
        SELECT pair, metric, step, coalesce(sum(n) FILTER (WHERE recent), 0),
               coalesce(sum(n) FILTER (WHERE NOT recent), 0)
        FROM (
            SELECT hash(agent_name, model) AS pair, recent, 0 AS metric,
                   unnest(duration_buckets)::INTEGER AS step, unnest(duration_counts) AS n
            FROM rolled
            WHERE status = 'completed'
            UNION ALL
            SELECT hash(agent_name, model), recent, 1,
                   unnest(cost_buckets)::INTEGER, unnest(cost_counts)
            FROM rolled
            WHERE status = 'completed'
        )
        GROUP BY pair, metric, step
    )
    GROUP BY pair, metric, step
),
-- Comparison groups, numbered: each agent, and each (agent, model) of agents that ran several models.
groups AS (
    SELECT row_number() OVER (ORDER BY scope, agent_name, model NULLS FIRST) AS gid, *
    FROM (
        SELECT DISTINCT 'agent' AS scope, agent_name, NULL::VARCHAR AS model FROM tallies
        UNION ALL
        SELECT 'agent_model', agent_name, model FROM tallies
        WHERE agent_name IN (
            SELECT agent_name FROM tallies GROUP BY agent_name HAVING count(DISTINCT model) > 1
        )
    )
),
counts AS (
    SELECT
        g.gid,
        sum(t.recent_runs)::BIGINT AS recent_runs,
        sum(t.baseline_runs)::BIGINT AS baseline_runs,
        sum(t.recent_failed)::BIGINT AS recent_failed,
        sum(t.baseline_failed)::BIGINT AS baseline_failed,
        sum(t.recent_cost) / nullif(sum(t.recent_priced), 0) AS recent_cost_per_run,
        sum(t.baseline_cost) / nullif(sum(t.baseline_priced), 0) AS baseline_cost_per_run
    FROM groups g
    JOIN tallies t
      ON t.agent_name = g.agent_name AND (g.scope = 'agent' OR t.model IS NOT DISTINCT FROM g.model)
    GROUP BY g.gid
),
cumulative AS (
    SELECT
        *,
        -- the first bucket holding 95% of the baseline: the tail test counts runs above it
        min(step) FILTER (WHERE b_upto >= 0.95 * n2 AND n2 > 0) OVER whole AS baseline_p95_step
    FROM (
        SELECT
            *,
            (sum(r) OVER upto)::BIGINT AS r_upto,
            (sum(b) OVER upto)::BIGINT AS b_upto,
            (sum(r) OVER whole)::BIGINT AS n1,
            (sum(b) OVER whole)::BIGINT AS n2,
            CASE WHEN step = -32768 THEN 0.0 ELSE 2 * pow(1.02, step) / 2.02 END AS value
        FROM (
            SELECT g.gid, h.metric, h.step, sum(h.r)::BIGINT AS r, sum(h.b)::BIGINT AS b
            FROM groups g
            JOIN tallies t
              ON t.agent_name = g.agent_name AND (g.scope = 'agent' OR t.model IS NOT DISTINCT FROM g.model)
            JOIN histogram h ON h.pair = t.pair
            GROUP BY g.gid, h.metric, h.step
        )
        WINDOW upto AS (PARTITION BY gid, metric ORDER BY step ROWS UNBOUNDED PRECEDING),
               whole AS (PARTITION BY gid, metric)
    )
    WINDOW whole AS (PARTITION BY gid, metric)
),
-- Per group and metric: sizes, percentiles (the first bucket holding the share), the rank sum of
-- the recent runs with mid-ranks within a bucket, and completed runs in buckets above the
-- baseline p95's on each side (used for latency).
ranked AS (
    SELECT
        gid,
        metric,
        max(n1) AS n1,
        max(n2) AS n2,
        arg_min(value, step) FILTER (WHERE r_upto >= 0.5 * n1 AND n1 > 0) AS recent_median,
        arg_min(value, step) FILTER (WHERE b_upto >= 0.5 * n2 AND n2 > 0) AS baseline_median,
        arg_min(value, step) FILTER (WHERE r_upto >= 0.95 * n1 AND n1 > 0) AS recent_p95,
        arg_min(value, step) FILTER (WHERE b_upto >= 0.95 * n2 AND n2 > 0) AS baseline_p95,
        sum(r * (r_upto + b_upto - r - b + (r + b + 1) / 2.0)) AS rank_sum,
        coalesce(sum(r) FILTER (WHERE step > baseline_p95_step), 0)::BIGINT AS recent_slow,
        coalesce(sum(b) FILTER (WHERE step > baseline_p95_step), 0)::BIGINT AS baseline_slow
    FROM cumulative
    GROUP BY gid, metric
),
-- Mann-Whitney U of the recent window, its z score and rank-biserial effect size, and the
-- one-sided p = P(Z >= z) = erfc(z / sqrt 2) / 2, erfc by Numerical Recipes' Chebyshev fit
-- (fractional error below 1.2e-7)
rank_p AS (
    SELECT
        *,
        CASE WHEN z IS NOT NULL THEN
            CASE WHEN z >= 0 THEN erfc_abs / 2.0 ELSE 1.0 - erfc_abs / 2.0 END
        END AS p
    FROM (
        SELECT
            *,
            t * exp(-x * x - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418
                + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
                + t * (-0.82215223 + t * 0.17087277))))))))) AS erfc_abs
        FROM (
            SELECT *, abs(z) / sqrt(2.0) AS x, 1.0 / (1.0 + 0.5 * abs(z) / sqrt(2.0)) AS t
            FROM (
                SELECT
                    *,
                    CASE WHEN n1 > 0 AND n2 > 0
                         THEN (u - n1 * n2 / 2.0) / sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0) END AS z,
                    CASE WHEN n1 > 0 AND n2 > 0 THEN 2.0 * u / (n1 * n2) - 1.0 END AS rank_biserial
                FROM (SELECT *, rank_sum - n1 * (n1 + 1) / 2.0 AS u FROM ranked)
            )
        )
    )
),
-- One row per group: latency (metric 0) and cost (metric 1) side by side.
measures AS (
    SELECT
        gid,
        any_value(n1) FILTER (WHERE metric = 0) AS latency_n1,
        any_value(n2) FILTER (WHERE metric = 0) AS latency_n2,
        any_value(recent_median) FILTER (WHERE metric = 0) AS recent_median,
        any_value(baseline_median) FILTER (WHERE metric = 0) AS baseline_median,
        any_value(recent_p95) FILTER (WHERE metric = 0) AS recent_p95,
        any_value(baseline_p95) FILTER (WHERE metric = 0) AS baseline_p95,
        any_value(rank_biserial) FILTER (WHERE metric = 0) AS latency_effect,
        any_value(p) FILTER (WHERE metric = 0) AS latency_p,
        any_value(recent_slow) FILTER (WHERE metric = 0) AS recent_slow,
        any_value(baseline_slow) FILTER (WHERE metric = 0) AS baseline_slow,
        any_value(n1) FILTER (WHERE metric = 1) AS cost_n1,
        any_value(n2) FILTER (WHERE metric = 1) AS cost_n2,
        any_value(rank_biserial) FILTER (WHERE metric = 1) AS cost_effect,
        any_value(p) FILTER (WHERE metric = 1) AS cost_p
    FROM rank_p
    GROUP BY gid
),
-- Fisher's exact test, one-sided: P(X >= a) for X hypergeometric (N runs, K marked, n1 drawn)
fisher_tables AS (
    SELECT gid, 'failures' AS test,
           recent_failed AS a, recent_runs AS n1, recent_failed + baseline_failed AS k,
           recent_runs + baseline_runs AS n
    FROM counts
    UNION ALL
    SELECT gid, 'tail', recent_slow, latency_n1, recent_slow + baseline_slow, latency_n1 + latency_n2
    FROM measures
    WHERE latency_n1 IS NOT NULL
),
-- The sum of sql/regressions.sql over fewer terms: those within t = sqrt(20 min(n1, k)) of the
-- mean n1 k / n (of a, when a lies above it). Drawing without replacement, Hoeffding's bound puts
-- less than exp(-2 t^2 / min(n1, k)) = exp(-40), 4e-18, on the terms left out, so p is the scan's
-- to within 4e-18 (at 10M runs: a few hundred terms a test instead of up to ten thousand).
fisher_bounds AS (
    SELECT
        gid,
        test,
        k,
        n1,
        n,
        lgamma(k + 1) + lgamma(n - k + 1) - lgamma(n + 1) + lgamma(n1 + 1) + lgamma(n - n1 + 1) AS whole,
        greatest(a, floor(n1 * k / n)::BIGINT - t) AS lo,
        least(n1, k, greatest(a, ceil(n1 * k / n)::BIGINT) + t) AS hi
    FROM (SELECT *, ceil(sqrt(20.0 * least(n1, k)))::BIGINT AS t FROM fisher_tables)
    WHERE n1 > 0 AND n > n1
),
fisher AS (
    SELECT
        gid,
        any_value(p) FILTER (WHERE test = 'failures') AS failure_p,
        any_value(p) FILTER (WHERE test = 'tail') AS tail_p
    FROM (
        SELECT
            gid,
            test,
            least(1.0, sum(exp(
                whole - lgamma(x + 1) - lgamma(k - x + 1) - lgamma(n1 - x + 1) - lgamma(n - k - n1 + x + 1)
            ))) AS p
        FROM (
            SELECT b.*, b.lo + i AS x
            FROM fisher_bounds b
            JOIN range((SELECT coalesce(max(hi - lo), -1) + 1 FROM fisher_bounds)) AS terms(i)
              ON i <= b.hi - b.lo
        )
        GROUP BY gid, test
    )
    GROUP BY gid
),
joined AS (
    SELECT
        g.scope,
        g.agent_name,
        g.model,
        c.baseline_runs,
        c.recent_runs,
        m.baseline_median,
        m.recent_median,
        m.recent_median / nullif(m.baseline_median, 0) AS median_ratio,
        m.baseline_p95,
        m.recent_p95,
        m.recent_p95 / nullif(m.baseline_p95, 0) AS p95_ratio,
        m.latency_effect,
        m.latency_p,
        m.recent_slow / nullif(m.latency_n1, 0) AS recent_share_over_baseline_p95,
        f.tail_p,
        c.baseline_failed / nullif(c.baseline_runs, 0) AS baseline_failure_rate,
        c.recent_failed / nullif(c.recent_runs, 0) AS recent_failure_rate,
        f.failure_p,
        c.baseline_cost_per_run,
        c.recent_cost_per_run,
        c.recent_cost_per_run / nullif(c.baseline_cost_per_run, 0) AS cost_ratio,
        m.cost_effect,
        m.cost_p,
        coalesce(m.latency_n1, 0) >= s.min_runs AND coalesce(m.latency_n2, 0) >= s.min_runs AS latency_testable,
        c.recent_runs >= s.min_runs AND c.baseline_runs >= s.min_runs AS failures_testable,
        coalesce(m.cost_n1, 0) >= s.min_runs AND coalesce(m.cost_n2, 0) >= s.min_runs AS cost_testable,
        s.*
    FROM groups g
    JOIN counts c USING (gid)
    CROSS JOIN settings s
    LEFT JOIN measures m USING (gid)
    LEFT JOIN fisher f USING (gid)
),
-- Bonferroni: alpha is the chance of any false flag in the whole report, shared by its tests.
corrected AS (
    SELECT
        *,
        alpha / greatest(1, sum(2 * latency_testable::INT + failures_testable::INT + cost_testable::INT) OVER ())
            AS alpha_per_test
    FROM joined
),
flagged AS (
    SELECT
        *,
        list_filter([
            CASE WHEN latency_testable AND latency_p < alpha_per_test
                  AND median_ratio >= 1 + min_change THEN 'latency' END,
            CASE WHEN latency_testable AND tail_p < alpha_per_test
                  AND p95_ratio >= 1 + min_change THEN 'tail' END,
            CASE WHEN failures_testable AND failure_p < alpha_per_test
                  AND recent_failure_rate - baseline_failure_rate >= min_failure_change THEN 'failures' END,
            CASE WHEN cost_testable AND cost_p < alpha_per_test
                  AND cost_ratio >= 1 + min_change THEN 'cost' END
        ], lambda f: f IS NOT NULL) AS flags
    FROM corrected
)
SELECT
    scope,
    agent_name,
    model,
    len(flags) > 0 AS flagged,
    flags,
    latency_testable OR failures_testable AS enough_data,
    baseline_runs,
    recent_runs,
    baseline_median,
    recent_median,
    median_ratio,
    baseline_p95,
    recent_p95,
    p95_ratio,
    latency_effect,
    latency_p,
    recent_share_over_baseline_p95,
    tail_p,
    baseline_failure_rate,
    recent_failure_rate,
    recent_failure_rate - baseline_failure_rate AS failure_rate_change,
    failure_p,
    baseline_cost_per_run,
    recent_cost_per_run,
    cost_ratio,
    cost_effect,
    cost_p,
    alpha_per_test,
    true AS approx
FROM flagged
ORDER BY flagged DESC, scope, agent_name, model NULLS FIRST
