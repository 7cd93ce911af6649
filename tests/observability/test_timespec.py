"""The one parser for times and spans: units, the refused bare `m`, ISO dates, and the API using it."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from kagura.observability.eventstore import EventStore
from kagura.observability.timespec import (
    TimeSpecError,
    parse_cutoff,
    parse_moment,
    parse_span,
)
from tests.store_rows import run

NOW = 1_750_000_000.0  # 2025-06-15T15:06:40Z


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90),
        ("10sec", 10),
        ("10 sec", 10),
        ("30min", 1_800),
        ("1.5h", 5_400),
        ("36h", 129_600),
        ("7d", 604_800),
        ("7 days", 604_800),
        ("2w", 1_209_600),
        ("3mo", 7_776_000),
        ("2MIN", 120),
        ("45", 45),
    ],
)
def test_span_units(text, seconds):
    assert parse_span(text, "--recent") == seconds


def test_span_takes_numbers_and_timedeltas():
    assert parse_span(5) == 5.0
    assert parse_span(timedelta(hours=2)) == 7_200.0


@pytest.mark.parametrize("text", ["6m", "6M", "1.5m"])
def test_bare_m_is_refused_with_both_readings(text):
    with pytest.raises(TimeSpecError) as caught:
        parse_span(text, "--older-than")
    message = str(caught.value)
    assert "--older-than" in message and "ambiguous" in message
    amount = text[:-1]
    assert f"{amount}min" in message and f"{amount}mo" in message


@pytest.mark.parametrize("text", ["0d", "0", "-1d", "-5", "soon", "7 fortnights", "d", ""])
def test_bad_or_empty_spans_are_refused(text):
    with pytest.raises(TimeSpecError, match="--lookback"):
        parse_span(text, "--lookback")


def test_zero_span_only_when_allowed():
    assert parse_span("0d", allow_zero=True) == 0.0
    with pytest.raises(TimeSpecError, match="positive"):
        parse_span(timedelta(0), "recent")


def test_span_too_long_is_refused():
    with pytest.raises(TimeSpecError, match="too long"):
        parse_span("99999999999999d", "--lookback")


def test_moment_ages_count_back_from_now():
    assert parse_moment("7d", now=NOW) == NOW - 7 * 86_400
    assert parse_moment("10sec", now=NOW) == NOW - 10
    assert parse_moment("3mo", now=NOW) == NOW - 90 * 86_400


def test_moment_dates_are_local_days():
    assert parse_moment("2024-05-01") == datetime(2024, 5, 1).timestamp()
    assert parse_moment("2024-05-01", end_of_day=True) == datetime(2024, 5, 2).timestamp()
    assert parse_moment(date(2024, 5, 1)) == datetime(2024, 5, 1).timestamp()
    assert parse_moment("2024-05-01T14:00") == datetime(2024, 5, 1, 14).timestamp()


def test_moment_with_offset_and_epoch_seconds():
    assert (
        parse_moment("2024-05-01T14:00+02:00") == datetime(2024, 5, 1, 12, tzinfo=UTC).timestamp()
    )
    assert parse_moment("1717200000") == 1_717_200_000.0
    assert parse_moment(1_717_200_000) == 1_717_200_000.0
    moment = datetime(2024, 5, 1, 12, tzinfo=UTC)
    assert parse_moment(moment) == moment.timestamp()
    assert parse_moment(None) is None


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("1717200000000", "milliseconds"),
        ("6m", "ambiguous"),
        ("yesterday", "is not a time"),
        ("2024-13-01", "is not a time"),
        (float("nan"), "years 1 and 9999"),
        (True, "is not a time"),
        ([1], "is not a time"),
    ],
)
def test_bad_moments_name_the_option(value, fragment):
    with pytest.raises(TimeSpecError) as caught:
        parse_moment(value, "--since")
    assert "--since" in str(caught.value) and fragment in str(caught.value)


def test_cutoff_refuses_zero_and_the_future():
    assert parse_cutoff("30d", now=NOW) == NOW - 30 * 86_400
    assert parse_cutoff("2025-01-01", now=NOW) == datetime(2025, 1, 1).timestamp()
    for value in ("0d", "0min", "2030-01-01", str(NOW + 10)):
        with pytest.raises(TimeSpecError, match="--older-than"):
            parse_cutoff(value, "--older-than", now=NOW)
    with pytest.raises(TimeSpecError, match="ambiguous"):
        parse_cutoff("6m", "--older-than", now=NOW)


# --- the Python API takes what the command line takes --------------------------------


@pytest.fixture
def dated_store(tmp_path):
    """Runs 1, 3, 10 and 40 days old (one each), in a fresh store."""
    import time

    now = time.time()
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    ages = {1: "one", 3: "three", 10: "ten", 40: "forty"}
    for days, name in ages.items():
        execution, events = run(name, now - days * 86_400 - 60)
        store.append(execution, events)
    yield store, now
    store.close()


def test_api_since_accepts_ages_and_iso_dates(dated_store):
    store, now = dated_store
    assert {r["agent_name"] for r in store.get_executions(since="7d")} == {"one", "three"}
    assert {r["agent_name"] for r in store.get_executions(since="2w")} == {"one", "three", "ten"}
    cut = datetime.fromtimestamp(now - 5 * 86_400).date().isoformat()
    assert {r["agent_name"] for r in store.get_executions(since=cut)} == {"one", "three"}
    assert store.get_summary_stats(since="7d")["total_executions"] == 2
    assert len(store.cost_by_date(since="2w")) == 3


def test_api_until_bare_date_includes_that_day(dated_store):
    store, now = dated_store
    day = datetime.fromtimestamp(now - 10 * 86_400 - 60).date()
    names = {r["agent_name"] for r in store.get_executions(until=day.isoformat())}
    assert names == {"ten", "forty"}


def test_api_spans_accept_text(dated_store):
    store, now = dated_store
    by_text = store.regressions(recent="2d", baseline="14d", now=now, min_runs=1)
    by_number = store.regressions(recent=2 * 86_400, baseline=14 * 86_400, now=now, min_runs=1)
    assert by_text == by_number
    health = store.agent_health(lookback="5d", now=now)
    assert {r["agent_name"] for r in health} == {"one", "three"}


def test_api_refuses_a_bare_m(dated_store):
    store, _ = dated_store
    with pytest.raises(ValueError, match="ambiguous"):
        store.get_executions(since="6m")
    with pytest.raises(ValueError, match="ambiguous"):
        store.agent_health(lookback="6m")
