-- regressions, Spark twin of sql/regressions.sql (same params, same rows; see that file for the tests)
-- Transpiled from the DuckDB file, then changed where Spark differs: the newest runs of each agent
-- are numbered with row_number() (Spark's max_by takes no count); the (agent, model) key is
-- xxhash64; Spark has no lgamma, so the log-gamma of Fisher's test comes from commons-math3's
-- Gamma.logGamma (shipped with Spark) through reflect(); a list's length is size().
WITH settings AS (
  SELECT
    COALESCE(:min_runs, 20) AS min_runs,
    COALESCE(:min_change, 0.2D) AS min_change,
    COALESCE(:min_failure_change, 0.05D) AS min_failure_change,
    COALESCE(:alpha, 0.01D) AS alpha
), scoped AS (
  SELECT
    agent_name,
    model,
    started_at,
    duration,
    status,
    total_cost
  FROM executions
  WHERE
    status <> 'running'
    AND (
      :agent IS NULL OR agent_name = :agent OR agent_name RLIKE :agent__glob
    )
    AND (
      :since IS NULL OR started_at >= :since
    )
    AND (
      :until IS NULL OR started_at < :until
    )
), by_time AS (
  SELECT
    *,
    started_at >= :split AS recent
  FROM scoped
  WHERE
    :recent_runs IS NULL
), by_count AS (
  /* by count: the newest recent_runs + baseline_runs runs of each agent, numbered newest first */
  SELECT
    agent_name,
    model,
    started_at,
    duration,
    status,
    total_cost,
    nth <= :recent_runs AS recent
  FROM (
    SELECT
      *,
      ROW_NUMBER() OVER (PARTITION BY agent_name ORDER BY started_at DESC) AS nth
    FROM scoped
    WHERE
      NOT :recent_runs IS NULL
  )
  WHERE
    nth <= COALESCE(:recent_runs, 0) + COALESCE(:baseline_runs, 5 * :recent_runs)
), runs AS (
  SELECT
    *
  FROM by_time
  UNION ALL
  SELECT
    *
  FROM by_count
), tallies /* Per agent and model: runs and failures on each side, and the cost of completed runs. */ AS (
  SELECT
    agent_name,
    model,
    XXHASH64(agent_name, model) AS pair,
    COUNT(*) FILTER(WHERE
      recent) AS recent_runs,
    COUNT(*) FILTER(WHERE
      NOT recent) AS baseline_runs,
    COUNT(*) FILTER(WHERE
      recent AND status = 'failed') AS recent_failed,
    COUNT(*) FILTER(WHERE
      NOT recent AND status = 'failed') AS baseline_failed,
    SUM(total_cost) FILTER(WHERE
      recent AND status = 'completed') AS recent_cost,
    COUNT(total_cost) FILTER(WHERE
      recent AND status = 'completed') AS recent_priced,
    SUM(total_cost) FILTER(WHERE
      NOT recent AND status = 'completed') AS baseline_cost,
    COUNT(total_cost) FILTER(WHERE
      NOT recent AND status = 'completed') AS baseline_priced
  FROM runs
  GROUP BY
    agent_name,
    model
), histogram /* Completed runs per value step on each side (metric 0: duration, 1: cost). A step holds the */ /* values within 1% of each other: step = round(ln(value) * 100); zero is its own step. */ /* Ranks and percentiles are read from these counts, so no run-by-run sort is needed. */ AS (
  SELECT
    pair,
    metric,
    step,
    COUNT(*) FILTER(WHERE
      recent) AS r,
    COUNT(*) FILTER(WHERE
      NOT recent) AS b
  FROM (
    /* (agent, model) as a 64-bit hash: grouping by numbers is much faster than by text. */
    SELECT
      XXHASH64(agent_name, model) AS pair,
      recent,
      0 AS metric,
      CASE
        WHEN duration > 0
        THEN CAST(ROUND(LN(duration) * 100) AS INT)
        ELSE -1000000000
      END AS step
    FROM runs
    WHERE
      status = 'completed' AND NOT duration IS NULL
    UNION ALL
    SELECT
      XXHASH64(agent_name, model),
      recent,
      1,
      CASE
        WHEN total_cost > 0
        THEN CAST(ROUND(LN(total_cost) * 100) AS INT)
        ELSE -1000000000
      END
    FROM runs
    WHERE
      status = 'completed' AND NOT total_cost IS NULL
  )
  GROUP BY
    pair,
    metric,
    step
), groups /* Comparison groups, numbered: each agent, and each (agent, model) of agents that ran several models. */ AS (
  SELECT
    ROW_NUMBER() OVER (ORDER BY scope NULLS LAST, agent_name NULLS LAST, model) AS gid,
    *
  FROM (
    SELECT DISTINCT
      'agent' AS scope,
      agent_name,
      CAST(NULL AS STRING) AS model
    FROM tallies
    UNION ALL
    SELECT
      'agent_model',
      agent_name,
      model
    FROM tallies
    WHERE
      agent_name IN (
        SELECT
          agent_name
        FROM tallies
        GROUP BY
          agent_name
        HAVING
          COUNT(DISTINCT model) > 1
      )
  )
), counts AS (
  SELECT
    g.gid,
    CAST(SUM(t.recent_runs) AS BIGINT) AS recent_runs,
    CAST(SUM(t.baseline_runs) AS BIGINT) AS baseline_runs,
    CAST(SUM(t.recent_failed) AS BIGINT) AS recent_failed,
    CAST(SUM(t.baseline_failed) AS BIGINT) AS baseline_failed,
    SUM(t.recent_cost) / NULLIF(SUM(t.recent_priced), 0) AS recent_cost_per_run,
    SUM(t.baseline_cost) / NULLIF(SUM(t.baseline_priced), 0) AS baseline_cost_per_run
  FROM groups AS g
  JOIN tallies AS t
    ON t.agent_name = g.agent_name
    AND (
      g.scope = 'agent' OR t.model IS NOT DISTINCT FROM g.model
    )
  GROUP BY
    g.gid
), cumulative AS (
  SELECT
    *,
    CAST((
      SUM(r) OVER upto
    ) AS BIGINT) AS r_upto,
    CAST((
      SUM(b) OVER upto
    ) AS BIGINT) AS b_upto,
    CAST((
      SUM(r) OVER whole
    ) AS BIGINT) AS n1,
    CAST((
      SUM(b) OVER whole
    ) AS BIGINT) AS n2,
    CASE WHEN step = -1000000000 THEN 0.0D ELSE EXP(step / 100.0D) END AS value
  FROM (
    SELECT
      g.gid,
      h.metric,
      h.step,
      CAST(SUM(h.r) AS BIGINT) AS r,
      CAST(SUM(h.b) AS BIGINT) AS b
    FROM groups AS g
    JOIN tallies AS t
      ON t.agent_name = g.agent_name
      AND (
        g.scope = 'agent' OR t.model IS NOT DISTINCT FROM g.model
      )
    JOIN histogram AS h
      ON h.pair = t.pair
    GROUP BY
      g.gid,
      h.metric,
      h.step
  )
  WINDOW upto AS (
    PARTITION BY gid, metric
    ORDER BY step NULLS LAST
    ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW
  ), whole AS (PARTITION BY gid, metric)
), ranked /* Per group and metric: sizes, percentiles (the first step holding the share), and the rank */ /* sum of the recent runs with mid-ranks within a step. */ AS (
  SELECT
    gid,
    metric,
    MAX(n1) AS n1,
    MAX(n2) AS n2,
    MIN_BY(value, step) FILTER(WHERE
      r_upto >= 0.5D * n1 AND n1 > 0) AS recent_median,
    MIN_BY(value, step) FILTER(WHERE
      b_upto >= 0.5D * n2 AND n2 > 0) AS baseline_median,
    MIN_BY(value, step) FILTER(WHERE
      r_upto >= 0.95D * n1 AND n1 > 0) AS recent_p95,
    MIN_BY(value, step) FILTER(WHERE
      b_upto >= 0.95D * n2 AND n2 > 0) AS baseline_p95,
    MIN(step) FILTER(WHERE
      b_upto >= 0.95D * n2 AND n2 > 0) AS baseline_p95_step,
    SUM(r * (
      r_upto + b_upto - r - b + (
        r + b + 1
      ) / 2.0D
    )) AS rank_sum
  FROM cumulative
  GROUP BY
    gid,
    metric
), latency AS (
  SELECT
    *
  FROM ranked
  WHERE
    metric = 0
), cost AS (
  SELECT
    *
  FROM ranked
  WHERE
    metric = 1
), tail /* Completed runs in steps above the baseline p95's step, on each side. */ AS (
  SELECT
    c.gid,
    CAST(COALESCE(SUM(c.r) FILTER(WHERE
      c.step > l.baseline_p95_step), 0) AS BIGINT) AS recent_slow,
    CAST(COALESCE(SUM(c.b) FILTER(WHERE
      c.step > l.baseline_p95_step), 0) AS BIGINT) AS baseline_slow
  FROM cumulative AS c
  JOIN latency AS l
    USING (gid)
  WHERE
    c.metric = 0
  GROUP BY
    c.gid
), rank_tests /* Mann-Whitney U of the recent window, its z score and rank-biserial effect size */ AS (
  SELECT
    gid,
    CASE metric WHEN 0 THEN 'latency' ELSE 'cost' END AS test,
    rank_sum - n1 * (
      n1 + 1
    ) / 2.0D AS u,
    n1,
    n2
  FROM ranked
), rank_z AS (
  SELECT
    *,
    CASE
      WHEN n1 > 0 AND n2 > 0
      THEN (
        u - n1 * n2 / 2.0D
      ) / SQRT(n1 * n2 * (
        n1 + n2 + 1
      ) / 12.0D)
    END AS z,
    CASE WHEN n1 > 0 AND n2 > 0 THEN 2.0D * u / (
      n1 * n2
    ) - 1.0D END AS rank_biserial
  FROM rank_tests
), rank_p /* one-sided p = P(Z >= z) = erfc(z / sqrt 2) / 2, erfc by Numerical Recipes' Chebyshev fit */ /* (fractional error below 1.2e-7) */ AS (
  SELECT
    *,
    CASE
      WHEN NOT z IS NULL
      THEN CASE WHEN z >= 0 THEN erfc_abs / 2.0D ELSE 1.0D - erfc_abs / 2.0D END
    END AS p
  FROM (
    SELECT
      *,
      t * EXP(
        -x * x - 1.26551223D + t * (
          1.00002368D + t * (
            0.37409196D + t * (
              0.09678418D + t * (
                -0.18628806D + t * (
                  0.27886807D + t * (
                    -1.13520398D + t * (
                      1.48851587D + t * (
                        -0.82215223D + t * 0.17087277D
                      )
                    )
                  )
                )
              )
            )
          )
        )
      ) AS erfc_abs
    FROM (
      SELECT
        *,
        ABS(z) / SQRT(2.0D) AS x,
        1.0D / (
          1.0D + 0.5D * ABS(z) / SQRT(2.0D)
        ) AS t
      FROM rank_z
    )
  )
), fisher_tables /* Fisher's exact test, one-sided: P(X >= a) for X hypergeometric (N runs, K marked, n1 drawn) */ AS (
  SELECT
    gid,
    'failures' AS test,
    recent_failed AS a,
    recent_runs AS n1,
    recent_failed + baseline_failed AS k,
    recent_runs + baseline_runs AS n
  FROM counts
  UNION ALL
  SELECT
    t.gid,
    'tail',
    t.recent_slow,
    l.n1,
    t.recent_slow + t.baseline_slow,
    l.n1 + l.n2
  FROM tail AS t
  JOIN latency AS l
    USING (gid)
), fisher_terms AS (
  /* reflect() is non-deterministic to Spark, which keeps it out of aggregates: terms first */
  SELECT
    gid,
    test,
    EXP(
          CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(k + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(x + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(k - x + 1 AS DOUBLE)) AS DOUBLE) + CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n - k + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n1 - x + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n - k - n1 + x + 1 AS DOUBLE)) AS DOUBLE) - (
            CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n1 + 1 AS DOUBLE)) AS DOUBLE) - CAST(REFLECT('org.apache.commons.math3.special.Gamma', 'logGamma', CAST(n - n1 + 1 AS DOUBLE)) AS DOUBLE)
          )
        ) AS term
  FROM fisher_tables
  LATERAL VIEW EXPLODE(IF(a > LEAST(n1, k), ARRAY(), SEQUENCE(a, LEAST(n1, k)))) terms AS x
  WHERE
    n1 > 0 AND n > n1
), fisher AS (
  SELECT
    gid,
    test,
    LEAST(1.0D, SUM(term)) AS p
  FROM fisher_terms
  GROUP BY
    gid,
    test
), joined AS (
  SELECT
    g.scope,
    g.agent_name,
    g.model,
    c.baseline_runs,
    c.recent_runs,
    l.baseline_median,
    l.recent_median,
    l.recent_median / NULLIF(l.baseline_median, 0) AS median_ratio,
    l.baseline_p95,
    l.recent_p95,
    l.recent_p95 / NULLIF(l.baseline_p95, 0) AS p95_ratio,
    lp.rank_biserial AS latency_effect,
    lp.p AS latency_p,
    t.recent_slow / NULLIF(l.n1, 0) AS recent_share_over_baseline_p95,
    tp.p AS tail_p,
    c.baseline_failed / NULLIF(c.baseline_runs, 0) AS baseline_failure_rate,
    c.recent_failed / NULLIF(c.recent_runs, 0) AS recent_failure_rate,
    fp.p AS failure_p,
    c.baseline_cost_per_run,
    c.recent_cost_per_run,
    c.recent_cost_per_run / NULLIF(c.baseline_cost_per_run, 0) AS cost_ratio,
    kp.rank_biserial AS cost_effect,
    kp.p AS cost_p,
    COALESCE(l.n1, 0) >= s.min_runs AND COALESCE(l.n2, 0) >= s.min_runs AS latency_testable,
    c.recent_runs >= s.min_runs AND c.baseline_runs >= s.min_runs AS failures_testable,
    COALESCE(k.n1, 0) >= s.min_runs AND COALESCE(k.n2, 0) >= s.min_runs AS cost_testable,
    s.*
  FROM groups AS g
  JOIN counts AS c
    USING (gid)
  CROSS JOIN settings AS s
  LEFT JOIN latency AS l
    USING (gid)
  LEFT JOIN tail AS t
    USING (gid)
  LEFT JOIN cost AS k
    USING (gid)
  LEFT JOIN rank_p AS lp
    ON lp.gid = g.gid AND lp.test = 'latency'
  LEFT JOIN rank_p AS kp
    ON kp.gid = g.gid AND kp.test = 'cost'
  LEFT JOIN fisher AS fp
    ON fp.gid = g.gid AND fp.test = 'failures'
  LEFT JOIN fisher AS tp
    ON tp.gid = g.gid AND tp.test = 'tail'
), corrected /* Bonferroni: alpha is the chance of any false flag in the whole report, shared by its tests. */ AS (
  SELECT
    *,
    alpha / GREATEST(
      1,
      SUM(
        2 * CAST(latency_testable AS INT) + CAST(failures_testable AS INT) + CAST(cost_testable AS INT)
      ) OVER ()
    ) AS alpha_per_test
  FROM joined
), flagged AS (
  SELECT
    *,
    FILTER(
      ARRAY(
        CASE
          WHEN latency_testable AND latency_p < alpha_per_test AND median_ratio >= 1 + min_change
          THEN 'latency'
        END,
        CASE
          WHEN latency_testable AND tail_p < alpha_per_test AND p95_ratio >= 1 + min_change
          THEN 'tail'
        END,
        CASE
          WHEN failures_testable
          AND failure_p < alpha_per_test
          AND recent_failure_rate - baseline_failure_rate >= min_failure_change
          THEN 'failures'
        END,
        CASE
          WHEN cost_testable AND cost_p < alpha_per_test AND cost_ratio >= 1 + min_change
          THEN 'cost'
        END
      ),
      f -> NOT f IS NULL
    ) AS flags
  FROM corrected
)
SELECT
  scope,
  agent_name,
  model,
  SIZE(flags) > 0 AS flagged,
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
  FALSE AS approx
FROM flagged
ORDER BY
  flagged DESC,
  scope NULLS LAST,
  agent_name NULLS LAST,
  model
