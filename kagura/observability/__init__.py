"""Telemetry for agents: record every run, then ask questions of it.

The public names load lazily, so `import kagura.observability` stays light and
`EventStore` does not pull in rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "EventStore": "kagura.observability.eventstore",
    "Result": "kagura.observability.store.engine",
    "StoreError": "kagura.observability.errors",
    "AmbiguousIdError": "kagura.observability.errors",
    "Dashboard": "kagura.observability.render.dashboard",
    "TelemetryCollector": "kagura.observability.recording.collector",
    "Telemetry": "kagura.observability.recording.collector",
    "get_global_telemetry": "kagura.observability.recording.collector",
    "set_global_telemetry": "kagura.observability.recording.collector",
}

__all__ = [
    "AmbiguousIdError",
    "Dashboard",
    "EventStore",
    "Result",
    "StoreError",
    "Telemetry",
    "TelemetryCollector",
    "get_global_telemetry",
    "set_global_telemetry",
]

if TYPE_CHECKING:  # pragma: no cover
    from kagura.observability.errors import AmbiguousIdError, StoreError
    from kagura.observability.eventstore import EventStore
    from kagura.observability.recording.collector import (
        Telemetry,
        TelemetryCollector,
        get_global_telemetry,
        set_global_telemetry,
    )
    from kagura.observability.render.dashboard import Dashboard
    from kagura.observability.store.engine import Result


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'kagura.observability' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
