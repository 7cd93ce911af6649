"""Every time and span option of the CLI goes through one parser: the same units everywhere."""

from __future__ import annotations

import json

import pytest


def _one_line_usage_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_since_and_recent_take_the_same_units(cli, small):
    # t1 began 10 s ago and the running run 5 s ago: 150sec holds those two only.
    listed = cli("monitor", "list", "--since", "150sec", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 2
    recent = cli("monitor", "regressions", "--recent", "10sec", "--baseline", "30min", "--json")
    assert recent.returncode in (0, 1), recent.stderr
    assert isinstance(json.loads(recent.stdout), list)
    months = cli("monitor", "list", "--all", "--since", "1mo", "--json")
    assert months.returncode == 0, months.stderr
    assert len(json.loads(months.stdout)) == len(small.rows)


@pytest.mark.parametrize(
    "args",
    [
        ("list", "--since", "6m"),
        ("stats", "--until", "6m"),
        ("regressions", "--recent", "6m"),
        ("health", "--lookback", "6m"),
        ("health", "--silent-after", "6m"),
    ],
)
def test_a_bare_m_is_refused_everywhere(cli, small, args):
    result = cli("monitor", *args)
    _one_line_usage_error(result, args[1], "6min", "6mo")


def test_param_times_use_the_same_parser(cli, small):
    result = cli("monitor", "sql", "error_groups", "--param", "since=6m")
    _one_line_usage_error(result, "since", "ambiguous")
