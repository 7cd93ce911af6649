"""Shared test setup: every test gets its own KAGURA_HOME, so none touches a real home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def kagura_home(tmp_path, monkeypatch):
    """A fresh, empty KAGURA_HOME for each test."""
    home = tmp_path / "kagura-home"
    monkeypatch.setenv("KAGURA_HOME", str(home))
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    monkeypatch.delenv("KAGURA_TELEMETRY", raising=False)
    # A shared lake is opted into by a test, never inherited from the shell.
    for name in ("KAGURA_LAKE", "KAGURA_HOST_ID", "KAGURA_LAKE_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    return home


# The tests that take seconds to minutes each: `pytest -m "not slow"` is the quick loop
# (CONTRIBUTING.md). A path marks a whole file, "path::name" one test (and its params).
SLOW = (
    "agent/test_tutorial_example.py",  # the tutorial's example agents end to end
    "analytics/test_notebooks.py",  # runs both notebooks in a kernel, builds the wheel
    "analytics/test_docs.py::test_tutorial_python_blocks_run_in_order",
    "analytics/test_docs.py::test_tutorial_commands_run",
    "cli/test_demo.py::test_demo_records_real_runs_and_prints_commands_that_work",
    "cli/test_live_tmux.py",  # the live view in a real terminal
    "reliability/test_crash.py",  # kills writer processes at random
    "reliability/test_crash_points.py",  # kills at every named step
    "reliability/test_crash_recording.py",
    "reliability/test_concurrency.py",  # writers and readers in many processes
    "spark/",  # a JVM per session
)

_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        where = Path(str(item.fspath)).resolve().relative_to(_TESTS).as_posix()
        name = f"{where}::{item.originalname}"
        if any(where.startswith(s) if "::" not in s else name == s for s in SLOW):
            item.add_marker(pytest.mark.slow)
