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
    return home
