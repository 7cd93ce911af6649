"""Kagura's own API, drop-in: a script written for Kagura's module runs unchanged."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import patch

import pytest

from kagura.observability import EventStore, Telemetry, TelemetryCollector

SCRIPT = Path(__file__).with_name("kagura_script.py")


def test_a_script_written_for_kagura_runs_unchanged(kagura_home, tmp_path):
    result = subprocess.run(
        [sys.executable, str(SCRIPT)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=dict(os.environ, KAGURA_HOME=str(kagura_home)),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_patching_get_data_dir_moves_the_default_store_of_agents(tmp_path):
    from kagura.observability.recording import collector

    target = tmp_path / "elsewhere"
    with patch("kagura.config.paths.get_data_dir", return_value=target):
        store = collector.default_store()
        assert store.db_path == target / "telemetry.db"
        with Telemetry().get_collector().recording("moved"):
            pass
        collector.flush(store)
    # Read back through plain sqlite3: the run is in the file under the patched folder.
    import sqlite3

    con = sqlite3.connect(target / "telemetry.db")
    assert con.execute("SELECT agent_name FROM executions").fetchall() == [("moved",)]
    con.close()


@pytest.mark.parametrize(
    ("variable", "function", "default"),
    [
        ("KAGURA_DATA_DIR", "get_data_dir", ""),
        ("KAGURA_CACHE_DIR", "get_cache_dir", "cache"),
        ("KAGURA_CONFIG_DIR", "get_config_dir", ""),
    ],
)
def test_each_folder_follows_kagura_home_or_its_own_variable(
    kagura_home, tmp_path, monkeypatch, variable, function, default
):
    from kagura.config import paths

    assert getattr(paths, function)() == (kagura_home / default if default else kagura_home)
    monkeypatch.setenv(variable, str(tmp_path / "own"))
    assert getattr(paths, function)() == tmp_path / "own"


def test_repr_names_the_collector_and_its_store(tmp_path):
    store = EventStore(tmp_path / "t.db")
    telemetry = Telemetry(TelemetryCollector(store))
    assert (
        repr(telemetry)
        == f"Telemetry(collector=TelemetryCollector(store=EventStore('{tmp_path / 't.db'}')))"
    )
    assert "default store" in repr(Telemetry())
    store.close()
