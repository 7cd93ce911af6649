-- regressions: per agent (and per agent and model), a recent window against a baseline window: latency, tail latency, failure rate and cost per run
-- grain: one row per agent, plus one per (agent, model) for agents that ran more than one model
-- params: $since (baseline start, epoch seconds), $split (recent start), $until (recent end, optional),
--         $recent_runs, $baseline_runs (compare by count instead: the newest runs of each agent, optional),
--         $agent (exact name or glob, optional), $min_runs (default 20), $min_change (default 0.2),
--         $min_failure_change (default 0.05), $alpha (chance of any false flag in the report, default 0.01)
-- reads: executions
--
-- Tests (all one-sided, looking for things getting worse):
--   latency:  Mann-Whitney rank test on the durations of completed runs (normal approximation,
--             mid-ranks for ties, no tie correction: conservative); flagged when significant and
--             the median grew by at least min_change (0.2 = 20%).
--   tail:     Fisher's exact test on the share of completed runs slower than the baseline p95;
--             flagged when significant and the p95 grew by at least min_change.
--   failures: Fisher's exact test on failed / settled runs; flagged when significant and the
--             failure rate rose by at least min_failure_change (absolute: 0.05 = 5 points).
--   cost:     Mann-Whitney rank test on the cost of completed, priced runs; flagged when
--             significant and the mean cost per run grew by at least min_change.
-- Significant means p < alpha_per_test = alpha / the number of tests in the report (Bonferroni),
-- so alpha bounds the chance that noise flags anything at all. A test runs only when both
-- windows hold at least min_runs runs (completed runs for latency, tail and cost).
-- latency_effect and cost_effect are rank-biserial effect sizes in [-1, 1]: 0 no shift, 1 every
-- recent run above every baseline run.
WITH settings AS (
    SELECT
        coalesce($min_runs, 20) AS min_runs,
        coalesce($min_change, 0.2) AS min_change,
        coalesce($min_failure_change, 0.05) AS min_failure_change,
        coalesce($alpha, 0.01) AS alpha
),
scoped AS (
    SELECT agent_name, model, started_at, duration, status, total_cost
    FROM executions
    WHERE status <> 'running'
      AND ($agent IS NULL OR agent_name = $agent OR agent_name GLOB $agent)
      AND ($until IS NULL OR started_at < $until)
),
by_time AS (
    SELECT *, started_at >= $split AS recent
    FROM scoped
    WHERE $recent_runs IS NULL AND started_at >= $since
),
-- by count: the newest recent_runs + baseline_runs runs of each agent, newest first
newest AS (
    SELECT
        agent_name,
        max_by(
            {'model': model, 'started_at': started_at, 'duration': duration, 'status': status, 'total_cost': total_cost},
            started_at,
            coalesce($recent_runs, 0) + coalesce($baseline_runs, 5 * $recent_runs)
        ) AS runs
    FROM scoped
    WHERE $recent_runs IS NOT NULL
    GROUP BY agent_name
),
by_count AS (
    SELECT
        agent_name,
        run.model,
        run.started_at,
        run.duration,
        run.status,
        run.total_cost,
        nth <= $recent_runs AS recent
    FROM (SELECT agent_name, unnest(runs) AS run, generate_subscripts(runs, 1) AS nth FROM newest)
),
runs AS (
    SELECT * FROM by_time
    UNION ALL
    SELECT * FROM by_count
),
split_by_model AS (
    SELECT agent_name FROM runs GROUP BY agent_name HAVING count(DISTINCT model) > 1
),
grouped AS (
    SELECT 'agent' AS scope, agent_name, NULL::VARCHAR AS model, recent, duration, status, total_cost
    FROM runs
    UNION ALL
    SELECT 'agent_model', agent_name, model, recent, duration, status, total_cost
    FROM runs
    WHERE agent_name IN (SELECT agent_name FROM split_by_model)
),
counts AS (
    SELECT
        scope, agent_name, model,
        count(*) FILTER (WHERE recent) AS recent_runs,
        count(*) FILTER (WHERE NOT recent) AS baseline_runs,
        count(*) FILTER (WHERE recent AND status = 'failed') AS recent_failed,
        count(*) FILTER (WHERE NOT recent AND status = 'failed') AS baseline_failed
    FROM grouped
    GROUP BY ALL
),
-- durations of completed runs with mid-ranks: (rank + rows at or below) / 2
latency_ranked AS (
    SELECT
        scope, agent_name, model, recent, duration,
        rank() OVER w AS low_rank,
        cume_dist() OVER w AS at_or_below
    FROM grouped
    WHERE status = 'completed' AND duration IS NOT NULL
    WINDOW w AS (PARTITION BY scope, agent_name, model ORDER BY duration)
),
latency AS (
    SELECT
        scope, agent_name, model,
        count(*) FILTER (WHERE recent) AS n1,
        count(*) FILTER (WHERE NOT recent) AS n2,
        quantile_cont(duration, 0.5) FILTER (WHERE recent) AS recent_median,
        quantile_cont(duration, 0.5) FILTER (WHERE NOT recent) AS baseline_median,
        quantile_cont(duration, 0.95) FILTER (WHERE recent) AS recent_p95,
        quantile_cont(duration, 0.95) FILTER (WHERE NOT recent) AS baseline_p95,
        0.5 * (coalesce(sum(low_rank) FILTER (WHERE recent), 0)
               + count(*) * coalesce(sum(at_or_below) FILTER (WHERE recent), 0)) AS rank_sum
    FROM latency_ranked
    GROUP BY ALL
),
tail AS (
    SELECT
        r.scope, r.agent_name, r.model,
        count(*) FILTER (WHERE r.recent AND r.duration > l.baseline_p95) AS recent_slow,
        count(*) FILTER (WHERE NOT r.recent AND r.duration > l.baseline_p95) AS baseline_slow
    FROM latency_ranked r
    JOIN latency l
      ON l.scope = r.scope AND l.agent_name = r.agent_name AND l.model IS NOT DISTINCT FROM r.model
    GROUP BY ALL
),
cost_ranked AS (
    SELECT
        scope, agent_name, model, recent, total_cost,
        rank() OVER w AS low_rank,
        cume_dist() OVER w AS at_or_below
    FROM grouped
    WHERE status = 'completed' AND total_cost IS NOT NULL
    WINDOW w AS (PARTITION BY scope, agent_name, model ORDER BY total_cost)
),
cost AS (
    SELECT
        scope, agent_name, model,
        count(*) FILTER (WHERE recent) AS n1,
        count(*) FILTER (WHERE NOT recent) AS n2,
        avg(total_cost) FILTER (WHERE recent) AS recent_mean,
        avg(total_cost) FILTER (WHERE NOT recent) AS baseline_mean,
        0.5 * (coalesce(sum(low_rank) FILTER (WHERE recent), 0)
               + count(*) * coalesce(sum(at_or_below) FILTER (WHERE recent), 0)) AS rank_sum
    FROM cost_ranked
    GROUP BY ALL
),
-- Mann-Whitney U of the recent window, its z score and rank-biserial effect size
rank_tests AS (
    SELECT
        scope, agent_name, model, 'latency' AS test,
        rank_sum - n1 * (n1 + 1) / 2.0 AS u, n1, n2
    FROM latency
    UNION ALL
    SELECT scope, agent_name, model, 'cost', rank_sum - n1 * (n1 + 1) / 2.0, n1, n2
    FROM cost
),
rank_z AS (
    SELECT
        *,
        CASE WHEN n1 > 0 AND n2 > 0
             THEN (u - n1 * n2 / 2.0) / sqrt(n1 * n2 * (n1 + n2 + 1) / 12.0) END AS z,
        CASE WHEN n1 > 0 AND n2 > 0 THEN 2.0 * u / (n1 * n2) - 1.0 END AS rank_biserial
    FROM rank_tests
),
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
        FROM (SELECT *, abs(z) / sqrt(2.0) AS x, 1.0 / (1.0 + 0.5 * abs(z) / sqrt(2.0)) AS t FROM rank_z)
    )
),
-- Fisher's exact test, one-sided: P(X >= a) for X hypergeometric (N runs, K marked, n1 drawn)
fisher_tables AS (
    SELECT scope, agent_name, model, 'failures' AS test,
           recent_failed AS a, recent_runs AS n1, recent_failed + baseline_failed AS k,
           recent_runs + baseline_runs AS n
    FROM counts
    UNION ALL
    SELECT t.scope, t.agent_name, t.model, 'tail', t.recent_slow, l.n1, t.recent_slow + t.baseline_slow, l.n1 + l.n2
    FROM tail t
    JOIN latency l
      ON l.scope = t.scope AND l.agent_name = t.agent_name AND l.model IS NOT DISTINCT FROM t.model
),
fisher AS (
    SELECT
        scope, agent_name, model, test,
        least(1.0, sum(exp(
            lgamma(k + 1) - lgamma(x + 1) - lgamma(k - x + 1)
            + lgamma(n - k + 1) - lgamma(n1 - x + 1) - lgamma(n - k - n1 + x + 1)
            - (lgamma(n + 1) - lgamma(n1 + 1) - lgamma(n - n1 + 1))
        ))) AS p
    FROM fisher_tables, range(a, least(n1, k) + 1) AS terms(x)
    WHERE n1 > 0 AND n > n1
    GROUP BY ALL
),
joined AS (
    SELECT
        c.scope,
        c.agent_name,
        c.model,
        c.baseline_runs,
        c.recent_runs,
        l.baseline_median,
        l.recent_median,
        l.recent_median / nullif(l.baseline_median, 0) AS median_ratio,
        l.baseline_p95,
        l.recent_p95,
        l.recent_p95 / nullif(l.baseline_p95, 0) AS p95_ratio,
        lp.rank_biserial AS latency_effect,
        lp.p AS latency_p,
        t.recent_slow / nullif(l.n1, 0) AS recent_share_over_baseline_p95,
        tp.p AS tail_p,
        c.baseline_failed / nullif(c.baseline_runs, 0) AS baseline_failure_rate,
        c.recent_failed / nullif(c.recent_runs, 0) AS recent_failure_rate,
        fp.p AS failure_p,
        k.baseline_mean AS baseline_cost_per_run,
        k.recent_mean AS recent_cost_per_run,
        k.recent_mean / nullif(k.baseline_mean, 0) AS cost_ratio,
        kp.rank_biserial AS cost_effect,
        kp.p AS cost_p,
        coalesce(l.n1, 0) >= s.min_runs AND coalesce(l.n2, 0) >= s.min_runs AS latency_testable,
        c.recent_runs >= s.min_runs AND c.baseline_runs >= s.min_runs AS failures_testable,
        coalesce(k.n1, 0) >= s.min_runs AND coalesce(k.n2, 0) >= s.min_runs AS cost_testable,
        s.*
    FROM counts c
    CROSS JOIN settings s
    LEFT JOIN latency l ON l.scope = c.scope AND l.agent_name = c.agent_name AND l.model IS NOT DISTINCT FROM c.model
    LEFT JOIN tail t ON t.scope = c.scope AND t.agent_name = c.agent_name AND t.model IS NOT DISTINCT FROM c.model
    LEFT JOIN cost k ON k.scope = c.scope AND k.agent_name = c.agent_name AND k.model IS NOT DISTINCT FROM c.model
    LEFT JOIN rank_p lp ON lp.test = 'latency' AND lp.scope = c.scope AND lp.agent_name = c.agent_name AND lp.model IS NOT DISTINCT FROM c.model
    LEFT JOIN rank_p kp ON kp.test = 'cost' AND kp.scope = c.scope AND kp.agent_name = c.agent_name AND kp.model IS NOT DISTINCT FROM c.model
    LEFT JOIN fisher fp ON fp.test = 'failures' AND fp.scope = c.scope AND fp.agent_name = c.agent_name AND fp.model IS NOT DISTINCT FROM c.model
    LEFT JOIN fisher tp ON tp.test = 'tail' AND tp.scope = c.scope AND tp.agent_name = c.agent_name AND tp.model IS NOT DISTINCT FROM c.model
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
    alpha_per_test
FROM flagged
ORDER BY flagged DESC, scope, agent_name, model NULLS FIRST
