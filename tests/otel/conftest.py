"""Fixtures of the OpenTelemetry tests (skipped without the `otel` extra)."""

from __future__ import annotations

import pytest

pytest.importorskip("opentelemetry.proto")

from otel_parts import Recorder, Served  # noqa: E402


@pytest.fixture
def served(tmp_path):
    """A `kagura serve --otlp` process on a free port."""
    server = Served(tmp_path / "served.db")
    yield server
    server.stop()


@pytest.fixture
def recorder():
    """A local OTLP/HTTP endpoint that records what it is sent."""
    endpoint = Recorder()
    yield endpoint
    endpoint.close()
