"""The one parser for times and spans of time, shared by the CLI and the Python API.

A span is an amount and a unit: 90s (or 90sec), 30min, 36h, 7d, 2w, 3mo (30 days).
A bare `m` is refused, since 6m could mean minutes or months. A moment is unix
seconds, an ISO date or date-time (naive ones are local time), a datetime or date,
or a span meaning that long ago. Errors are `TimeSpecError` (a ValueError) naming
the option, the value and the forms that work.
"""

from __future__ import annotations

import math
import re
import time
from datetime import date, datetime, timedelta
from typing import Any

MINUTE = 60.0
HOUR = 3600.0
DAY = 86400.0
# Months are 30 days: a span, not a calendar month.
UNITS: dict[str, float] = {
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "min": MINUTE,
    "mins": MINUTE,
    "minute": MINUTE,
    "minutes": MINUTE,
    "h": HOUR,
    "hr": HOUR,
    "hrs": HOUR,
    "hour": HOUR,
    "hours": HOUR,
    "d": DAY,
    "day": DAY,
    "days": DAY,
    "w": 7 * DAY,
    "week": 7 * DAY,
    "weeks": 7 * DAY,
    "mo": 30 * DAY,
    "month": 30 * DAY,
    "months": 30 * DAY,
}
SPAN_FORMS = "90s, 30min, 36h, 7d, 2w or 3mo"
TIME_FORMS = (
    "unix seconds, a date (2024-05-01), a date and time (2024-05-01T14:00) "
    "or an age (30min, 24h, 7d, 3mo)"
)

_SPAN = re.compile(r"^(\d+(?:\.\d+)?|\.\d+)\s*([a-z]+)$", re.IGNORECASE)
_NUMBER = re.compile(r"^-?(\d+(?:\.\d+)?|\.\d+)$")
# Unix seconds above this are milliseconds (they would land after the year 5000).
_MILLISECONDS = 1e11
# Times a run may have: years 1 to 9999, which every date function can show.
MIN_TIME, MAX_TIME = -62_135_596_800.0, 253_402_300_799.0
_MIN_TIME, _MAX_TIME = MIN_TIME, MAX_TIME


class TimeSpecError(ValueError):
    """A time or span that cannot be read; the message names the option and the forms that work."""


def _label(name: str, value: Any) -> str:
    return f"{name} {value!r}" if name else repr(value)


def span_of(text: str) -> float | None:
    """Seconds in a span written as text (`7d`); None when `text` has no unit; TimeSpecError for a bad unit."""
    match = _SPAN.match(text.strip())
    if not match:
        return None
    amount, unit = float(match.group(1)), match.group(2).lower()
    if unit == "m":
        raise TimeSpecError(
            f"{amount:g}m is ambiguous: write {amount:g}min for minutes or {amount:g}mo for months"
        )
    if unit not in UNITS:
        raise TimeSpecError(f"unknown unit {unit!r}: use s, min, h, d, w or mo (e.g. {SPAN_FORMS})")
    return amount * UNITS[unit]


def parse_span(value: Any, name: str = "span", *, allow_zero: bool = False) -> float:
    """Seconds in a span: text such as 90min, 36h, 7d or 3mo, a timedelta, or a number of seconds."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, str):
        text = value.strip()
        try:
            found = span_of(text)
        except TimeSpecError as error:
            raise TimeSpecError(f"{_label(name, value)}: {error}") from None
        if found is None:
            if not _NUMBER.match(text):
                raise TimeSpecError(
                    f"{_label(name, value)} is not a span of time; use e.g. {SPAN_FORMS}"
                )
            found = float(text)
        seconds = found
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        raise TimeSpecError(
            f"{_label(name, value)} is not a span of time; give seconds, a timedelta or e.g. {SPAN_FORMS}"
        )
    if not math.isfinite(seconds) or seconds > _MAX_TIME - _MIN_TIME:
        raise TimeSpecError(f"{_label(name, value)} is too long a span of time")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise TimeSpecError(
            f"{_label(name, value)} must be a positive span of time, e.g. {SPAN_FORMS}"
        )
    return seconds


def parse_moment(
    value: Any,
    name: str = "time",
    *,
    end_of_day: bool = False,
    now: float | None = None,
) -> float | None:
    """Epoch seconds for a moment; None stays None.

    Accepts epoch seconds (number or text), a datetime, a date, an ISO date or
    date-time (naive ones are local time), or a span meaning that long before
    `now` (7d). A bare date is the start of that day, or the start of the next
    one when `end_of_day` (so an `until` of 2024-05-01 includes that day).
    """
    if value is None:
        return None
    try:
        return _moment(value, name, end_of_day, now)
    except TimeSpecError:
        raise
    except (ValueError, OverflowError, OSError):
        # datetime.timestamp() of a moment near the years 1 or 9999 in local time.
        raise TimeSpecError(
            f"{_label(name, value)} is not a time between the years 1 and 9999"
        ) from None


def _moment(value: Any, name: str, end_of_day: bool, now: float | None) -> float:
    if isinstance(value, datetime):
        return _checked(value.timestamp(), name, value)
    if isinstance(value, date):
        start = datetime(value.year, value.month, value.day)
        if end_of_day:
            start += timedelta(days=1)
        return _checked(start.timestamp(), name, value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _epoch_seconds(float(value), name, value)
    if not isinstance(value, str):
        raise TimeSpecError(f"{_label(name, value)} is not a time; use {TIME_FORMS}")
    text = value.strip()
    try:
        ago = span_of(text)
    except TimeSpecError as error:
        raise TimeSpecError(f"{_label(name, value)}: {error}") from None
    if ago is not None:
        if ago > _MAX_TIME - _MIN_TIME:
            raise TimeSpecError(f"{_label(name, value)} is too long ago")
        at = time.time() if now is None else now
        return _checked(at - ago, name, value)
    if _NUMBER.match(text):
        return _epoch_seconds(float(text), name, value)
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            start = datetime(day.year, day.month, day.day)
            if end_of_day:
                start += timedelta(days=1)
            return _checked(start.timestamp(), name, value)
        moment = datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise TimeSpecError(f"{_label(name, value)} is not a time; use {TIME_FORMS}") from None
    return _checked(moment.timestamp(), name, value)


def parse_cutoff(value: Any, name: str = "older_than", *, now: float | None = None) -> float:
    """The cut-off (epoch seconds) for an age such as 30d or an absolute time: never now or later.

    A zero age (0d) or a time not in the past would select every run, so both are refused.
    """
    if value is None:
        raise TimeSpecError(f"{name} is required: an age such as 30d or a date")
    at = time.time() if now is None else now
    if isinstance(value, timedelta):
        return at - parse_span(value, name)
    if isinstance(value, str):
        try:
            ago = span_of(value)
        except TimeSpecError as error:
            raise TimeSpecError(f"{_label(name, value)}: {error}") from None
        if ago is not None:
            return at - parse_span(value, name)
    cutoff = parse_moment(value, name, now=at)
    assert cutoff is not None
    if cutoff >= at:
        raise TimeSpecError(
            f"{_label(name, value)} is not in the past: it would select every run; "
            "give an age such as 30d or an earlier date"
        )
    return cutoff


def _epoch_seconds(seconds: float, name: str, value: Any) -> float:
    if seconds > _MILLISECONDS:
        raise TimeSpecError(f"{_label(name, value)} looks like milliseconds; give unix seconds")
    return _checked(seconds, name, value)


def _checked(seconds: float, name: str, value: Any) -> float:
    if not math.isfinite(seconds) or not _MIN_TIME <= seconds <= _MAX_TIME:
        raise TimeSpecError(f"{_label(name, value)} is not a time between the years 1 and 9999")
    return seconds


def epoch(value: Any, name: str) -> float | None:
    """`value` as epoch seconds (see parse_moment); None stays None.

    Takes what the command line takes: epoch seconds, a datetime or date, an ISO
    date or date-time, or an age such as "7d". A bare date given as `until`
    means the end of that day, as `--until` does.
    """
    return parse_moment(value, name, end_of_day=name == "until")
