"""Kagura's folder names: `get_data_dir()`, `get_cache_dir()`, `get_config_dir()`.

Scripts and tests written for Kagura import these from `kagura.config.paths`
and patch `get_data_dir` to move the telemetry store; `EventStore()` and the
agents' default store follow the patched function. Each folder can be moved by
its own variable (`KAGURA_DATA_DIR`, `KAGURA_CACHE_DIR`, `KAGURA_CONFIG_DIR`);
otherwise all three are under `KAGURA_HOME` (default `~/.kagura`).
"""

from __future__ import annotations

import os
from pathlib import Path


def _override(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value).expanduser() if value else None


def _home() -> Path:
    from kagura.config import kagura_home

    return kagura_home()


def get_data_dir() -> Path:
    """The folder of persistent data (`telemetry.db`, its lake): `KAGURA_DATA_DIR`, else `KAGURA_HOME`."""
    return _override("KAGURA_DATA_DIR") or _home()


def get_cache_dir() -> Path:
    """The folder of disposable files: `KAGURA_CACHE_DIR`, else `$KAGURA_HOME/cache`."""
    return _override("KAGURA_CACHE_DIR") or _home() / "cache"


def get_config_dir() -> Path:
    """The folder of settings: `KAGURA_CONFIG_DIR`, else `KAGURA_HOME`."""
    return _override("KAGURA_CONFIG_DIR") or _home()
