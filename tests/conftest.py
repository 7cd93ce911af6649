"""Shared test setup: every test gets its own KAGURA_HOME, so none touches a real home."""

from __future__ import annotations

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
