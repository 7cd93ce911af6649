"""Writes the notebooks of this folder from the cells below (run it after editing them).

Run: `python notebooks/make_notebooks.py`. The notebooks are saved without outputs;
CI executes them (tests/analytics/test_notebooks.py).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

SETUP = """\
import json
import os
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import polars as pl

from kagura.observability import EventStore
from kagura.synthetic import fixtures

# Fixture telemetry: runs of about 20 agents over the 90 days before END.
# Analytics take `now=END`, so the figures do not depend on the day you run this.
END = fixtures.parse_end("2025-06-12T18:00:00+00:00")
sample = json.loads((fixtures.SAMPLE_DIR / "sample.json").read_text())
prices = {name: (p["input_cost_per_token"], p["output_cost_per_token"]) for name, p in sample["prices"].items()}

# A new store in a scratch folder of its own (made inside KAGURA_NOTEBOOK_DIR when that is set):
# this notebook fills it with fixture runs, and never writes to or deletes a store it did not make.
folder = Path(tempfile.mkdtemp(prefix="kagura-notebook-", dir=os.environ.get("KAGURA_NOTEBOOK_DIR")))
store = EventStore(folder / "telemetry.db")
"""


def cost_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Cost analysis\n\n"
            "Where the money goes: spend by agent, by model and by day, the trend and the "
            "month-end projection, and budgets. Everything here uses kagura's public API: "
            "`EventStore` methods that return Polars frames (or dicts), and read-only SQL "
            "over the `executions` and `events` views."
        ),
        new_code_cell(
            SETUP
            + """
store.append_many(fixtures.generate(6_000, seed=1, end=END, prices=prices))
store.get_summary_stats(until=END + 1)
"""
        ),
        new_markdown_cell(
            "## Spend by agent\n\n`cost_by_agent()` sums each run's `total_cost`. LLM calls of "
            "models with no known price are counted in `unpriced_calls` and left out of `cost` "
            "(never counted as free)."
        ),
        new_code_cell(
            """by_agent = store.cost_by_agent()
by_agent.head(10)"""
        ),
        new_code_cell(
            """top = by_agent.head(10).sort("cost")
fig, ax = plt.subplots(figsize=(8, 4))
ax.barh(top["agent_name"].to_list(), top["cost"].to_list(), color="tab:blue")
ax.set_xlabel("dollars, 90 days")
ax.set_title("The ten most expensive agents")
fig.tight_layout()
plt.show()"""
        ),
        new_markdown_cell(
            "## Spend by model\n\n`cost_by_model()` counts each LLM call under the model it "
            "called, so an agent that uses two models adds to both."
        ),
        new_code_cell(
            """by_model = store.cost_by_model()
by_model.with_columns((100 * pl.col("cost") / pl.col("cost").sum()).round(1).alias("share_%"))"""
        ),
        new_code_cell(
            """# The same spend seen per run and per call agrees (an independent check of both paths).
assert abs(by_model["cost"].sum() - by_agent["cost"].sum()) < 1e-6
unpriced = by_model.filter(pl.col("unpriced_calls") > 0)
unpriced.select("model", "calls", "unpriced_calls")"""
        ),
        new_markdown_cell(
            "## Spend over time\n\n`cost_trend()` has one row per local day (days without runs "
            "included), the trailing mean of the last `window` days and a running total."
        ),
        new_code_cell(
            """trend = store.cost_trend(window=7)
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.bar(trend["date"].to_list(), trend["cost"].to_list(), color="lightsteelblue", label="daily spend")
ax.plot(trend["date"].to_list(), trend["trailing_mean"].to_list(), color="tab:red", label="7-day mean")
ax.set_ylabel("dollars")
ax.legend()
fig.autofmt_xdate()
plt.show()
trend.tail(7)"""
        ),
        new_code_cell(
            """# Weekends are quieter: mean spend by weekday, straight from the frame.
(
    trend.with_columns(pl.col("date").dt.strftime("%a").alias("weekday"), pl.col("date").dt.weekday().alias("n"))
    .group_by("weekday", "n")
    .agg(pl.col("cost").mean().round(3).alias("mean_cost"))
    .sort("n")
    .drop("n")
)"""
        ),
        new_markdown_cell(
            "## Budgets and the month-end projection\n\n`budget_status()` compares spend today "
            "and this calendar month (local time) with budgets, and projects the month end as "
            "month-to-date spend plus the mean daily spend of the last `days` days times the "
            "days left. `kagura monitor budget --daily 1.00 --monthly 30` prints the same and "
            "exits 1 when a budget is exceeded."
        ),
        new_code_cell(
            """status = store.budget_status(daily=1.00, monthly=30.0, now=END)
{k: status[k] for k in ("today_cost", "daily_exceeded", "month_cost", "monthly_exceeded", "projected_month_end", "method")}"""
        ),
        new_code_cell(
            """# The projection by hand from the trend frame: month so far + mean of the last 7 days x days left.
june = trend.filter(pl.col("date").dt.month() == 6)
by_hand = june["cost"].sum() + status["daily_mean"] * status["days_left"]
assert abs(by_hand - status["projected_month_end"]) < 0.05 * status["projected_month_end"]
store.monthly_projection(days=7, now=END)"""
        ),
        new_markdown_cell(
            "## Ad-hoc SQL\n\n`store.sql()` runs one read-only SELECT over the views; anything "
            "else (DDL, DML, ATTACH, COPY, reading files) is refused."
        ),
        new_code_cell(
            '''store.sql(
    """
    -- Do runs that call tools cost more? Mean cost per run, with and without tool calls.
    WITH tools AS (SELECT DISTINCT execution_id FROM events WHERE type = 'tool_call')
    SELECT
        e.agent_name,
        count(*) FILTER (WHERE t.execution_id IS NOT NULL) AS runs_with_tools,
        round(avg(e.total_cost) FILTER (WHERE t.execution_id IS NOT NULL), 5) AS cost_with_tools,
        round(avg(e.total_cost) FILTER (WHERE t.execution_id IS NULL), 5) AS cost_without
    FROM executions e LEFT JOIN tools t ON t.execution_id = e.id
    GROUP BY 1 HAVING runs_with_tools > 0 ORDER BY runs_with_tools DESC LIMIT 5
    """
).pl()'''
        ),
        new_code_cell(
            """from kagura.observability.errors import QueryError

try:
    store.sql("DELETE FROM executions")
except QueryError as error:
    print(error)
store.close()"""
        ),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def performance_notebook() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell(
            "# Performance and regressions\n\n"
            "Latency percentiles per agent, per model and per day; then regression detection "
            "on telemetry where one agent was made 40% slower over its last two days; then "
            "agent health and the groups of errors. Public API only."
        ),
        new_code_cell(
            SETUP
            + """
PLANTED = "summarizer"
store.append_many(fixtures.generate(
    12_000, seed=1, end=END, prices=prices, slowdown={"agent": PLANTED, "factor": 1.4, "days": 2}
))
"""
        ),
        new_markdown_cell("## Latency percentiles\n\nRun durations per agent (finished runs):"),
        new_code_cell(
            """latency = store.latency_percentiles_frame()
latency.sort("p95", descending=True).head(8)"""
        ),
        new_code_cell(
            """ordered = latency.sort("p50")
fig, ax = plt.subplots(figsize=(8, 5))
ax.barh(ordered["agent_name"].to_list(), ordered["p95"].to_list(), color="lightgray", label="p95")
ax.barh(ordered["agent_name"].to_list(), ordered["p50"].to_list(), color="tab:blue", label="p50")
ax.set_xscale("log")
ax.set_xlabel("seconds")
ax.legend()
fig.tight_layout()
plt.show()"""
        ),
        new_markdown_cell("LLM call durations per model, with output tokens per second:"),
        new_code_cell("store.model_latency_frame()"),
        new_markdown_cell(
            "Per day, one agent: the planted slowdown is visible in its last two days."
        ),
        new_code_cell(
            """daily = store.latency_percentiles_frame(agent_name=PLANTED, per_day=True).tail(21)
fig, ax = plt.subplots(figsize=(9, 3.5))
ax.plot(daily["date"].to_list(), daily["p50"].to_list(), marker="o", label="p50")
ax.plot(daily["date"].to_list(), daily["p95"].to_list(), marker="o", label="p95")
ax.set_ylabel("seconds")
ax.set_title(f"{PLANTED}: daily latency")
ax.legend()
fig.autofmt_xdate()
plt.show()"""
        ),
        new_markdown_cell(
            "## Regressions\n\n`regressions()` compares each agent's recent window (default "
            "the last 2 days) with a baseline (default the 14 days before) on median and p95 "
            "duration, failure rate and cost per run. A flag needs enough runs on both sides, "
            "a significant one-sided test (Mann-Whitney rank test for latency and cost, "
            "Fisher's exact test for the tail and failures, Bonferroni over the report so "
            "that noise flags nothing 99% of the time) and a real shift (20% by default)."
        ),
        new_code_cell(
            """report = store.regressions_frame(now=END)
flagged = report.filter(pl.col("flagged"))
assert flagged["agent_name"].to_list() == [PLANTED]
flagged.select("agent_name", "flags", "baseline_runs", "recent_runs", "baseline_median", "recent_median",
               "median_ratio", "latency_effect", "latency_p")"""
        ),
        new_code_cell(
            """# Every agent's shift in median and its rank effect size: only the planted one stands out.
tested = report.filter(pl.col("enough_data"))
fig, ax = plt.subplots(figsize=(7, 4))
colors = ["tab:red" if f else "tab:gray" for f in tested["flagged"].to_list()]
ax.scatter(tested["latency_effect"].to_list(), tested["median_ratio"].to_list(), c=colors)
for name, x, y in tested.select("agent_name", "latency_effect", "median_ratio").iter_rows():
    ax.annotate(name, (x, y), fontsize=7)
ax.axhline(1.2, linestyle="--", color="tab:red", linewidth=0.8)
ax.set_xlabel("rank-biserial effect (recent vs baseline)")
ax.set_ylabel("median ratio")
plt.show()"""
        ),
        new_code_cell(
            """# The same comparison by count: each agent's newest 40 runs against the 200 before them.
by_count = store.regressions_frame(now=END, recent_runs=40, baseline_runs=200)
by_count.filter(pl.col("flagged")).select("agent_name", "flags", "median_ratio", "latency_p")"""
        ),
        new_markdown_cell(
            "## Health and errors\n\n`agent_health()` rates each agent by the failure rate of its "
            "last 20 finished runs (healthy up to 20%, degraded up to 50%, unhealthy above) and "
            "marks agents gone silent. `error_groups()` groups failures by error type and a "
            "normalised message."
        ),
        new_code_cell(
            """health = store.agent_health_frame(now=END)
health.group_by("status").len().sort("status")"""
        ),
        new_code_cell(
            """errors = store.error_groups_frame(limit=10)
errors.select("count", "error_type", "message", pl.col("agents").list.len().alias("agents"), "sample_id")"""
        ),
        new_code_cell(
            """# Every failed run is in exactly one group.
total = store.sql("SELECT count(*) AS n FROM executions WHERE status = 'failed'").rows()[0]["n"]
assert store.error_groups_frame(limit=10_000)["count"].sum() == total
store.close()"""
        ),
    ]
    return new_notebook(cells=cells, metadata=_metadata())


def _metadata() -> dict:
    return {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }


def main() -> None:
    for name, build in (
        ("cost_analysis.ipynb", cost_notebook),
        ("performance_and_regressions.ipynb", performance_notebook),
    ):
        notebook = build()
        nbformat.validate(notebook)
        nbformat.write(notebook, HERE / name)
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
