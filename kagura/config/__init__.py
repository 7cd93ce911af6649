"""Where telemetry lives and whether it is recorded.

`KAGURA_HOME` (default `~/.kagura`) holds `telemetry.db` and its Parquet lake
`telemetry/`. `KAGURA_TELEMETRY=0` turns recording off. `KAGURA_DURABILITY=buffered`
(or `set_durability("buffered")`) lets a call return before its run is committed.
The home is created readable by its owner only: telemetry holds prompts and arguments.
`kagura.config.paths` names the folders as Kagura does (`get_data_dir()`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path

DB_NAME = "telemetry.db"
PRICES_NAME = "prices.json"

# Compaction moves the settled tail to Parquet once it holds this many
# executions, or once its oldest settled execution is this many seconds old.
COMPACT_TAIL_ROWS = 20_000
COMPACT_TAIL_AGE = 3600.0


def kagura_home() -> Path:
    """The folder that holds telemetry (`KAGURA_HOME`, default `~/.kagura`)."""
    value = os.environ.get("KAGURA_HOME")
    return Path(value).expanduser() if value else Path.home() / ".kagura"


def default_db_path() -> Path:
    """The default telemetry database: `telemetry.db` in `paths.get_data_dir()` (`$KAGURA_HOME`)."""
    # Looked up on the module at each call, so a test that patches
    # `kagura.config.paths.get_data_dir` moves the store (as Kagura's tests do).
    from kagura.config import paths

    return paths.get_data_dir() / DB_NAME


def telemetry_enabled() -> bool:
    """False when `KAGURA_TELEMETRY` is 0, false, off or no."""
    value = os.environ.get("KAGURA_TELEMETRY", "1").strip().lower()
    return value not in {"0", "false", "off", "no"}


# "durable": a recorded call returns once its run is committed to the SQLite tail.
# "buffered": it returns at once; a background writer commits the run a little later,
# and a process killed meanwhile loses the runs still queued.
DURABILITY_MODES = ("durable", "buffered")
_durability: str | None = None  # set_durability(); None follows KAGURA_DURABILITY


def durability() -> str:
    """The recording mode: "durable" (the default) or "buffered"."""
    if _durability is not None:
        return _durability
    value = os.environ.get("KAGURA_DURABILITY", "").strip().lower()
    return "buffered" if value == "buffered" else "durable"


def set_durability(mode: str | None) -> None:
    """Set the recording mode for this process ("durable" or "buffered"; None: follow the environment)."""
    global _durability
    if mode is not None and mode not in DURABILITY_MODES:
        raise ValueError(f"unknown durability {mode!r}; use one of: {', '.join(DURABILITY_MODES)}")
    _durability = mode


def ensure_private_dir(path: Path) -> Path:
    """Create `path` and each of its missing parents owner-only (0700); return it.

    Each folder is made on its own and then chmod-ed: mkdir's mode meets the umask,
    and `mkdir(parents=True)` would leave the parents at the umask's mode.
    """
    missing = []
    folder = path
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)
        except FileExistsError:  # another process made it first
            continue
        os.chmod(folder, 0o700)
    return path
