"""sql/regressions.sql: the rank test, Fisher's test, the windows and the flags, checked independently.

The statistics are recomputed here in plain Python (values at 1% resolution,
mid-ranks, U, the normal tail, hypergeometric sums with math.comb) on small random
inputs; the fixture telemetry shows the rule flags nothing on noise and exactly the
planted slowdown. Runs in the lake are compared from rollups (sql/rollups/regressions.sql):
the same statistics over log buckets of gamma 1.02 instead of 1% steps, recomputed
here the same way.
"""

from __future__ import annotations

import math
import random
import statistics

import pytest
from analytics_rows import DAY, PLANTED, run

NOW = 1_749_729_600.0  # 2025-06-12 12:00 UTC


def step(value):
    """The 1% step of a value: round(ln(value) * 100), half away from zero; zero apart."""
    if value <= 0:
        return -1_000_000_000
    x = math.log(value) * 100
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def step_value(key):
    return 0.0 if key == -1_000_000_000 else math.exp(key / 100)


def bucket(value):
    """The rollups' log bucket of a value: k with 1.02^(k-1) < value <= 1.02^k; zero apart."""
    return -32768 if value <= 0 else math.ceil(math.log(value) / math.log(1.02))


def bucket_value(key):
    return 0.0 if key == -32768 else 2 * 1.02**key / 2.02


# How values are grouped and read back: 1% steps when scanned, log buckets from rollups.
SCAN = (step, step_value)
ROLLUPS = (bucket, bucket_value)


def mann_whitney(recent, baseline, step=step):
    """(U, one-sided p, rank-biserial) of `recent` being larger, values tied within a step."""
    pooled = sorted([(step(v), True) for v in recent] + [(step(v), False) for v in baseline])
    rank_sum, i = 0.0, 0
    while i < len(pooled):
        j = i
        while j + 1 < len(pooled) and pooled[j + 1][0] == pooled[i][0]:
            j += 1
        mid = (i + j) / 2 + 1
        rank_sum += mid * sum(1 for k in range(i, j + 1) if pooled[k][1])
        i = j + 1
    n1, n2 = len(recent), len(baseline)
    u = rank_sum - n1 * (n1 + 1) / 2
    z = (u - n1 * n2 / 2) / math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    return u, 0.5 * math.erfc(z / math.sqrt(2)), 2 * u / (n1 * n2) - 1


def fisher_greater(a, n1, b, n2):
    """P(X >= a) when n1 of n1 + n2 runs are drawn and a + b of them are marked."""
    n, k = n1 + n2, a + b
    hits = sum(math.comb(k, x) * math.comb(n - k, n1 - x) for x in range(a, min(n1, k) + 1))
    return hits / math.comb(n, n1)


def quantile(values, q, grouping=SCAN):
    """The value of the first step holding a share q of the values."""
    key, value = grouping
    steps = sorted(key(v) for v in values)
    first = next(s for i, s in enumerate(steps) if i + 1 >= q * len(steps))
    return value(first)


def spread(count, start, end):
    """`count` start times spread evenly over [start, end)."""
    return [start + (end - start) * (i + 0.5) / count for i in range(count)]


def scenario(seed=3):
    """Agent 'a': 60 baseline and 30 recent completed runs (recent ~40% slower), 3 and 12 failures."""
    rng = random.Random(seed)
    base_t = spread(60, NOW - 16 * DAY, NOW - 2 * DAY)
    recent_t = spread(30, NOW - 2 * DAY, NOW)
    base = [(t, rng.lognormvariate(0.0, 0.3), rng.uniform(0.01, 0.02)) for t in base_t]
    recent = [(t, rng.lognormvariate(0.34, 0.3), rng.uniform(0.01, 0.02)) for t in recent_t]
    rows = [run("a", t, duration=d, cost=c) for t, d, c in base + recent]
    failed_base = [
        run("a", t, duration=1.0, status="failed", error="x", cost=0.01)
        for t in spread(3, NOW - 15 * DAY, NOW - 3 * DAY)
    ]
    failed_recent = [
        run("a", t, duration=1.0, status="failed", error="x", cost=0.01)
        for t in spread(12, NOW - DAY, NOW - 1)
    ]
    # Outside both windows: too old, and in the future.
    outside = [run("a", NOW - 30 * DAY, duration=99.0), run("a", NOW + 60, duration=99.0)]
    # A second agent with too few runs to test.
    few = [run("b", t, duration=1.0) for t in spread(5, NOW - 10 * DAY, NOW)]
    return rows + failed_base + failed_recent + outside + few, base, recent


def test_no_runs_no_rows(make_store):
    assert make_store().regressions(now=NOW) == []


@pytest.mark.parametrize("exact", [False, True])
def test_statistics_match_an_independent_computation(make_store, where, exact):
    rows, base, recent = scenario()
    store = make_store(rows)
    result = {r["agent_name"]: r for r in store.regressions(now=NOW, exact=exact)}
    a = result["a"]
    # In the lake (not exact) whole hours come from rollups: log buckets instead of 1% steps.
    from_rollups = where == "lake" and not exact
    assert a["approx"] is from_rollups
    grouping = ROLLUPS if from_rollups else SCAN
    key = grouping[0]
    # Completed runs: 60 vs 30; settled runs (with failures): 63 vs 42.
    assert (a["baseline_runs"], a["recent_runs"]) == (63, 42)
    base_d, recent_d = [d for _, d, _ in base], [d for _, d, _ in recent]
    u, p, effect = mann_whitney(recent_d, base_d, key)
    assert a["latency_p"] == pytest.approx(p, rel=1e-5)
    assert a["latency_effect"] == pytest.approx(effect, abs=1e-12)
    assert a["baseline_median"] == pytest.approx(quantile(base_d, 0.5, grouping))
    assert a["recent_median"] == pytest.approx(quantile(recent_d, 0.5, grouping))
    # Within the resolution (1% scanned, 2% from rollups) of the exact medians.
    assert a["baseline_median"] == pytest.approx(statistics.median(base_d), rel=0.021)
    assert a["median_ratio"] == pytest.approx(
        quantile(recent_d, 0.5, grouping) / quantile(base_d, 0.5, grouping)
    )
    assert a["baseline_p95"] == pytest.approx(quantile(base_d, 0.95, grouping))
    assert a["p95_ratio"] == pytest.approx(
        quantile(recent_d, 0.95, grouping) / quantile(base_d, 0.95, grouping)
    )
    # Tail: completed runs in steps above the baseline p95's, recent against baseline.
    p95 = key(quantile(base_d, 0.95, grouping))
    slow_recent = sum(key(d) > p95 for d in recent_d)
    slow_base = sum(key(d) > p95 for d in base_d)
    assert a["recent_share_over_baseline_p95"] == pytest.approx(slow_recent / 30)
    assert a["tail_p"] == pytest.approx(fisher_greater(slow_recent, 30, slow_base, 60), rel=1e-9)
    # Failures: 12 of 42 recent against 3 of 63.
    assert a["baseline_failure_rate"] == pytest.approx(3 / 63)
    assert a["recent_failure_rate"] == pytest.approx(12 / 42)
    assert a["failure_p"] == pytest.approx(fisher_greater(12, 42, 3, 63), rel=1e-9)
    # Cost per completed run.
    base_c, recent_c = [c for _, _, c in base], [c for _, _, c in recent]
    assert a["cost_p"] == pytest.approx(mann_whitney(recent_c, base_c, key)[1], rel=1e-5)
    assert a["cost_ratio"] == pytest.approx(statistics.mean(recent_c) / statistics.mean(base_c))
    # Bonferroni over the 4 tests of agent a (b has too few runs): 0.01 / 4.
    assert a["alpha_per_test"] == pytest.approx(0.0025)
    expected = []
    if p < 0.0025 and a["median_ratio"] >= 1.2:
        expected.append("latency")
    if a["tail_p"] < 0.0025 and a["p95_ratio"] >= 1.2:
        expected.append("tail")
    if a["failure_p"] < 0.0025 and 12 / 42 - 3 / 63 >= 0.05:
        expected.append("failures")
    assert a["flags"] == expected and "latency" in expected and "failures" in expected
    assert a["flagged"] is True
    b = result["b"]
    assert (b["flagged"], b["enough_data"], b["flags"]) == (False, False, [])


def test_ties_use_mid_ranks(make_store, where):
    base_t = spread(40, NOW - 16 * DAY, NOW - 2 * DAY)
    recent_t = spread(25, NOW - 2 * DAY, NOW)
    rng = random.Random(11)
    base = [round(rng.uniform(1, 3), 1) for _ in base_t]
    recent = [round(rng.uniform(1.2, 3.2), 1) for _ in recent_t]
    rows = [
        run("t", t, duration=d, cost=None)
        for t, d in zip(base_t + recent_t, base + recent, strict=True)
    ]
    (row,) = make_store(rows).regressions(now=NOW)
    _, p, effect = mann_whitney(recent, base, bucket if where == "lake" else step)
    assert row["latency_p"] == pytest.approx(p, rel=1e-5)
    assert row["latency_effect"] == pytest.approx(effect, abs=1e-12)
    # Costs are all unknown: nothing to compare.
    assert row["cost_p"] is None and row["cost_ratio"] is None and "cost" not in row["flags"]


def test_thresholds_are_adjustable(make_store):
    rows, _, _ = scenario()
    store = make_store(rows)
    (a,) = [r for r in store.regressions(now=NOW, min_runs=100) if r["agent_name"] == "a"]
    assert a["flags"] == [] and a["enough_data"] is False
    (a,) = [
        r
        for r in store.regressions(now=NOW, min_change=5.0, min_failure_change=0.9)
        if r["agent_name"] == "a"
    ]
    assert a["flags"] == []
    (a,) = [r for r in store.regressions(now=NOW, alpha=1e-30) if r["agent_name"] == "a"]
    assert a["flags"] == []
    # A longer recent window moves runs from the baseline to the recent side.
    (a,) = [
        r
        for r in store.regressions(now=NOW, recent=4 * DAY, baseline=12 * DAY)
        if r["agent_name"] == "a"
    ]
    assert a["baseline_runs"] + a["recent_runs"] == 63 + 42
    assert a["recent_runs"] > 42


def test_compare_by_count(make_store):
    rng = random.Random(8)
    times = spread(50, NOW - 40 * DAY, NOW)
    durations = [rng.uniform(1, 2) for _ in range(35)] + [rng.uniform(1.5, 3) for _ in range(15)]
    store = make_store([run("c", t, duration=d) for t, d in zip(times, durations, strict=True)])
    (row,) = store.regressions(now=NOW, recent_runs=10, baseline_runs=25)
    recent, base = durations[-10:], durations[-35:-10]
    assert (row["recent_runs"], row["baseline_runs"]) == (10, 25)
    assert row["recent_median"] == pytest.approx(quantile(recent, 0.5))
    assert row["baseline_median"] == pytest.approx(quantile(base, 0.5))
    assert row["latency_p"] == pytest.approx(mann_whitney(recent, base)[1], rel=1e-5)
    # Without baseline_runs the baseline is the 5 x recent_runs runs before the recent ones.
    (row,) = store.regressions(now=NOW, recent_runs=5)
    assert (row["recent_runs"], row["baseline_runs"]) == (5, 25)


def test_an_agent_with_two_models_gets_a_row_per_model(make_store):
    times = spread(60, NOW - 16 * DAY, NOW)
    rows = [
        run("m", t, duration=1.0 + i % 3, model_name="x" if i % 2 else "y")
        for i, t in enumerate(times)
    ]
    rows += [run("single", t, duration=1.0) for t in times]
    result = make_store(rows).regressions(now=NOW)
    keys = sorted((r["scope"], r["agent_name"], r["model"] or "") for r in result)
    assert keys == [
        ("agent", "m", ""),
        ("agent", "single", ""),
        ("agent_model", "m", "x"),
        ("agent_model", "m", "y"),
    ]
    by_key = {(r["scope"], r["model"]): r for r in result if r["agent_name"] == "m"}
    assert (
        by_key[("agent_model", "x")]["baseline_runs"]
        + by_key[("agent_model", "y")]["baseline_runs"]
        == by_key[("agent", None)]["baseline_runs"]
    )


def test_all_failed_runs_compare_failure_rates_only(make_store):
    rows = [
        run("f", t, status="failed", error="x")
        for t in spread(30, NOW - 16 * DAY, NOW - 2 * DAY) + spread(30, NOW - 2 * DAY, NOW)
    ]
    (row,) = make_store(rows).regressions(now=NOW)
    assert (row["baseline_failure_rate"], row["recent_failure_rate"]) == (1.0, 1.0)
    assert row["failure_p"] == pytest.approx(1.0)
    assert row["latency_p"] is None and row["recent_median"] is None
    assert row["enough_data"] is True and row["flagged"] is False


def test_bad_options_are_refused(make_store):
    store = make_store()
    with pytest.raises(ValueError, match="recent"):
        store.regressions(recent=-1)
    with pytest.raises(ValueError, match="baseline_runs needs recent_runs"):
        store.regressions(baseline_runs=10)
    with pytest.raises(ValueError, match="alpha"):
        store.regressions(alpha=2)


def test_fixture_telemetry_flags_nothing(fixture_store, fixture_end):
    result = fixture_store.regressions(now=fixture_end)
    assert len(result) == 21 and sum(r["enough_data"] for r in result) >= 10
    assert [r["agent_name"] for r in result if r["flagged"]] == []
    by_count = fixture_store.regressions(now=fixture_end, recent_runs=40, baseline_runs=300)
    assert [r["agent_name"] for r in by_count if r["flagged"]] == []


def test_fixture_telemetry_flags_exactly_the_planted_slowdown(slowed_store, fixture_end):
    result = slowed_store.regressions(now=fixture_end)
    flagged = [r for r in result if r["flagged"]]
    assert [r["agent_name"] for r in flagged] == [PLANTED]
    (hit,) = flagged
    assert "latency" in hit["flags"] and "failures" not in hit["flags"]
    assert hit["median_ratio"] > 1.2 and hit["latency_effect"] > 0.2
    frame = slowed_store.regressions_frame(now=fixture_end)
    assert frame.filter(frame["flagged"])["agent_name"].to_list() == [PLANTED]
    # The store is compacted: that answer came from rollups; a scan flags the same agent.
    assert result.name == "sql/rollups/regressions.sql"
    scanned = slowed_store.regressions(now=fixture_end, exact=True)
    assert [r["agent_name"] for r in scanned if r["flagged"]] == [PLANTED]
