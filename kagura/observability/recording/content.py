"""Content capture, opt-in: what was asked and answered, kept with a run's events.

Off by default: prompts, replies, return values and tool results hold whatever
your users and documents hold (personal data, customer text, secrets that no
pattern recognises), and telemetry files get copied, shared and kept for a
long time. `@agent(capture_content=True)` or `KAGURA_CAPTURE_CONTENT=1` turns it
on. Each captured item is redacted like arguments (secret-shaped values and
secret-named fields become [REDACTED]) and then cut to `KAGURA_CAPTURE_MAX_BYTES`
(default 32 KB of UTF-8), with a note saying how much was cut.
"""

from __future__ import annotations

import json
import os
from typing import Any

DEFAULT_MAX_BYTES = 32 * 1024
_ON = {"1", "true", "on", "yes"}


def enabled(flag: bool | None = None) -> bool:
    """Whether to capture: `flag` when given (an agent's `capture_content=`), else KAGURA_CAPTURE_CONTENT."""
    if flag is not None:
        return bool(flag)
    return os.environ.get("KAGURA_CAPTURE_CONTENT", "").strip().lower() in _ON


def max_bytes() -> int:
    """The cap of one captured item in bytes: KAGURA_CAPTURE_MAX_BYTES (default 32 KB, at least 256)."""
    value = os.environ.get("KAGURA_CAPTURE_MAX_BYTES", "").strip()
    try:
        return max(256, int(value)) if value else DEFAULT_MAX_BYTES
    except ValueError:
        return DEFAULT_MAX_BYTES


def capture(value: Any, redactor: Any, limit: int | None = None) -> str:
    """`value` as redacted text (strings as they are, anything else as JSON), cut to `limit` bytes."""
    cleaned = redactor.clean(value)
    text = (
        cleaned
        if isinstance(cleaned, str)
        else json.dumps(cleaned, ensure_ascii=False, default=str)
    )
    return cap(text, max_bytes() if limit is None else limit)


def cap(text: str, limit: int) -> str:
    """`text` if it fits in `limit` UTF-8 bytes, else its head and a note of the size cut."""
    data = text.encode("utf-8", "backslashreplace")
    if len(data) <= limit:
        return text
    head = data[:limit].decode("utf-8", "ignore")
    return f"{head}…[content cut: {len(data):,} bytes, first {limit:,} kept]"
