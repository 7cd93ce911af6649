"""Kagura's module path for the decorator API: `Telemetry`, `get_global_telemetry`, `set_global_telemetry`.

Scripts written for Kagura import these names from
`kagura.observability.instrumentation`; they are the same objects as
`kagura.observability.Telemetry` and friends (the recording code owns them).
"""

from __future__ import annotations

from kagura.observability import (
    Telemetry,
    TelemetryCollector,
    get_global_telemetry,
    set_global_telemetry,
)

__all__ = ["Telemetry", "TelemetryCollector", "get_global_telemetry", "set_global_telemetry"]
