"""Telemetry for agents: record every run, then ask questions of it.

The public names load lazily, so `import kagura.observability` stays light and
`EventStore` does not pull in rich.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

_PUBLIC = {
    "EventStore": "kagura.observability.store",
    "Result": "kagura.observability.query",
    "StoreError": "kagura.observability.errors",
    "AmbiguousIdError": "kagura.observability.errors",
    "Dashboard": "kagura.observability.dashboard",
    "TelemetryCollector": "kagura.observability.collector",
    "Telemetry": "kagura.observability.collector",
    "get_global_telemetry": "kagura.observability.collector",
    "set_global_telemetry": "kagura.observability.collector",
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
    from kagura.observability.collector import (
        Telemetry,
        TelemetryCollector,
        get_global_telemetry,
        set_global_telemetry,
    )
    from kagura.observability.dashboard import Dashboard
    from kagura.observability.errors import AmbiguousIdError, StoreError
    from kagura.observability.query import Result
    from kagura.observability.store import EventStore


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'kagura.observability' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
