"""Every table reads at 60, 80 and 120 columns: nothing overflows, no number or date is cut,
ids stay prefixes `trace` accepts, and the useful columns stay (COLUMNS in a real subprocess)."""

from __future__ import annotations

import json
import re

import pytest

from tests.cli.conftest import run_cli

WIDTHS = (60, 80, 120)
# A number (a word of digits, maybe with $ , .) ending in an ellipsis: a number that was cut.
CUT_NUMBER = re.compile(r"(?<![\w\-/.])\$?[0-9][0-9.,%]*…")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def at(width: int, *args: str):
    result = run_cli("monitor", *args, env={"COLUMNS": str(width)})
    assert result.returncode in (0, 1), result.stderr
    assert "Traceback" not in result.stderr
    return result


def check_lines(out: str, width: int) -> list[str]:
    lines = out.splitlines()
    assert lines, "no output"
    for line in lines:
        assert len(line) <= width, f"{len(line)} > {width}: {line!r}"
        assert not CUT_NUMBER.search(line), f"a number was cut: {line!r}"
    return lines


@pytest.mark.parametrize("width", WIDTHS)
def test_list_keeps_agent_and_usable_ids(sample_db, width):
    rows = json.loads(run_cli("monitor", "list", "--db", str(sample_db), "--json").stdout)
    ids = [r["id"] for r in rows]
    agents = {r["agent_name"] for r in rows}
    lines = check_lines(at(width, "list", "--db", str(sample_db)).stdout, width)
    assert "Agent" in lines[1] and "ID" in lines[1] and "Time" in lines[1]
    shown = re.findall(r"exec_[0-9a-f]+", "\n".join(lines))
    assert len(shown) == len(ids)
    for prefix, full in zip(shown, ids, strict=True):
        assert len(prefix) >= 21 and full.startswith(prefix)
    # Agent names are whole or cut with a mark, never silently.
    body = "\n".join(lines[2:])
    assert any(name in body for name in agents) or "…" in body
    if width >= 80:
        assert "$" in body  # the cost column stays from 80 columns on
    if width == 60:
        traced = run_cli("monitor", "trace", shown[0], "--db", str(sample_db))
        assert traced.returncode == 0, traced.stderr


@pytest.mark.parametrize("width", WIDTHS)
def test_cost_by_agent_keeps_numbers_whole(sample_db, width):
    lines = check_lines(at(width, "cost", "--db", str(sample_db)).stdout, width)
    total = next(line for line in lines if "Total" in line)
    assert re.search(r"\$\d+\.\d\d", total)


@pytest.mark.parametrize("width", WIDTHS)
def test_cost_by_date_shows_whole_dates_and_a_shorter_bar(sample_db, width):
    rows = json.loads(
        run_cli("monitor", "cost", "--group-by", "date", "--db", str(sample_db), "--json").stdout
    )["rows"]
    lines = check_lines(
        at(width, "cost", "--group-by", "date", "--db", str(sample_db)).stdout, width
    )
    dates = [m.group(0) for line in lines for m in [DATE.search(line)] if m]
    assert dates == [str(r["date"]) for r in rows]
    bars = [line.count("█") for line in lines]
    assert max(bars) <= 24 and max(bars) > 0


@pytest.mark.parametrize("width", WIDTHS)
def test_latency_keeps_the_percentiles_whole(sample_db, width):
    lines = check_lines(at(width, "latency", "--db", str(sample_db)).stdout, width)
    header = next(line for line in lines if "Agent" in line)
    for column in ("p50", "p95"):
        assert column in header
    assert re.search(r"\d+\.\d\ds", lines[3])


@pytest.mark.parametrize("width", WIDTHS)
def test_errors_keep_the_message(sample_db, width):
    lines = check_lines(at(width, "errors", "--db", str(sample_db)).stdout, width)
    header = next(line for line in lines if "Count" in line)
    assert "Message" in header and "Type" in header and "Sample" in header
    assert "timed out" in " ".join(lines)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize(
    "args",
    [
        ("trend", "--since", "30d"),
        ("trend", "--by-model"),
        ("health",),
        ("regressions", "--min-runs", "2"),
        ("latency", "--by", "model"),
        ("stats",),
    ],
)
def test_other_tables_fit(sample_db, width, args):
    lines = check_lines(at(width, *args, "--db", str(sample_db)).stdout, width)
    if args[0] == "trend":
        assert all(DATE.search(line) for line in lines if "█" in line)


def test_live_view_fits(sample_db):
    for width in WIDTHS:
        check_lines(at(width, "--db", str(sample_db), "--once").stdout, width)


@pytest.mark.parametrize("width", WIDTHS)
def test_sql_shows_local_times_and_records_when_a_row_does_not_fit(sample_db, width):
    query = "SELECT id, agent_name, started_at, total_cost FROM executions ORDER BY started_at DESC LIMIT 3"
    expected = json.loads(run_cli("monitor", "sql", query, "--db", str(sample_db), "--json").stdout)
    from datetime import datetime

    moments = [
        datetime.fromtimestamp(r["started_at"]).isoformat(sep=" ", timespec="seconds")
        for r in expected
    ]
    out = at(width, "sql", query, "--db", str(sample_db)).stdout
    lines = check_lines(out, width)
    assert "e+09" not in out
    for moment, row in zip(moments, expected, strict=True):
        assert moment in out and row["id"] in out
    if width >= 80:
        assert re.match(r"id\s+agent_name\s+started_at\s+total_cost", lines[0])
    wide = "SELECT * FROM executions ORDER BY started_at DESC LIMIT 2"
    records = check_lines(at(width, "sql", wide, "--db", str(sample_db)).stdout, width)
    if width <= 120:
        assert records[0].startswith("-[ row 1 ]")
        assert any(
            re.match(r"started_at\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d$", r.rstrip()) for r in records
        )
