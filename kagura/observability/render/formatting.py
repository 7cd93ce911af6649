"""How numbers, times, ids and statuses read: one rule for every front end.

Money, durations, tokens, percents, local times, short ids and status labels.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime
from typing import Any

from rich.text import Text

STATUS_LOOK = {
    "completed": ("✓ COMPLETED", "green"),
    "failed": ("✗ FAILED", "red"),
    "running": ("● RUNNING", "yellow"),
    "cancelled": ("⊘ CANCELLED", "magenta"),
    "abandoned": ("✗ ABANDONED", "red dim"),
}

# The status labels of a narrow table.
SHORT_STATUS = {
    "completed": "✓ OK",
    "failed": "✗ FAIL",
    "running": "● RUN",
    "cancelled": "⊘ CANC",
    "abandoned": "✗ ABAN",
}


# --- formatting -------------------------------------------------------------------


def fmt_money(value: float | None, unknown: str = "n/a") -> str:
    """Dollars with enough digits to show a tiny cost (never $0.00 for a nonzero cost)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return unknown
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    # Four decimals, or two significant digits when that shows more of a tiny cost
    # (down to 1e-14 dollars: below 12 decimals, 2.2e-12 would read as 2e-12).
    decimals = min(15, max(4, 1 - math.floor(math.log10(abs(value)))))
    text = f"{value:.{decimals}f}"
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(4, "0")
    return f"${whole}.{frac}"


def fmt_cost(value: float | None, unpriced_calls: int | None = 0) -> str:
    """A cost for a table cell: '?' when unknown, a trailing '+' when some calls had no price."""
    if value is None or (unpriced_calls and not value):
        return "?"  # nothing known: every LLM call of it had no price
    return fmt_money(value) + ("+" if unpriced_calls else "")


def fmt_duration(seconds: float | None) -> str:
    """A duration: 0.52s, 2m 05s, 1h 02m; '-' when unknown."""
    if seconds is None or (isinstance(seconds, float) and not math.isfinite(seconds)):
        return "-"
    if seconds < 60:
        return f"{seconds:.2f}s"
    if seconds < 3600:
        minutes, secs = divmod(int(round(seconds)), 60)
        return f"{minutes}m {secs:02d}s"
    hours, rest = divmod(int(round(seconds)), 3600)
    return f"{hours}h {rest // 60:02d}m"


def fmt_tokens(count: int | float | None) -> str:
    """A token count with thousands separators; '-' when unknown."""
    if count is None:
        return "-"
    return f"{int(count):,}"


def fmt_percent(value: float | None) -> str:
    """A percentage with one decimal; '-' when unknown."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.1f}%"


def fmt_time(epoch: float | None, now: float | None = None) -> str:
    """Local time of day for today's times, else the date and minute."""
    if epoch is None:
        return "-"
    moment = datetime.fromtimestamp(epoch)
    today = datetime.fromtimestamp(time.time() if now is None else now).date()
    if moment.date() == today:
        return moment.strftime("%H:%M:%S")
    if moment.year == today.year:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%Y-%m-%d")


def fmt_datetime(epoch: float | None) -> str:
    """Local date and time to the second."""
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M:%S")


def status_text(status: str | None, *, short: bool = False) -> Text:
    """The coloured status label (✓ COMPLETED green, ✗ FAILED red, ● RUNNING yellow); `short`: ✓ OK, ✗ FAIL."""
    label, style = STATUS_LOOK.get(status or "", ((status or "?").upper(), ""))
    if short:
        label = SHORT_STATUS.get(status or "", label[:6])
    return Text(label, style=style)


def metric(execution: dict[str, Any], key: str) -> Any:
    return (execution.get("metrics") or {}).get(key, execution.get(key))


def shorten(text: Any, width: int = 100) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


# Generated ids are `exec_` + 12 hex digits of start milliseconds + 16 random hex digits.
_GENERATED_ID = re.compile(r"^exec_[0-9a-f]{28}$")
SHORT_ID_LENGTH = 21


def short_id(execution_id: str) -> str:
    """A generated id cut after its time part and 4 random hex digits (a unique prefix in practice); others whole."""
    if _GENERATED_ID.match(execution_id):
        return execution_id[:SHORT_ID_LENGTH]
    return execution_id
