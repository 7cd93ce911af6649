"""The checked-in sample under data/fixtures/: written by `python -m kagura.synthetic.fixtures sample`."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kagura.observability.store.rows import EXECUTION_NAMES
from kagura.synthetic.rows import generate
from kagura.synthetic.world import (
    UNPRICED_MODEL,
    litellm_price_map,
    model_prices,
    parse_end,
)

# --- the checked-in sample ---------------------------------------------------------


def sample_dir() -> Path:
    """The fixture sample: the copy packaged in the wheel (kagura/data/fixtures) first, then the repository's data/fixtures."""
    packaged = Path(__file__).resolve().parents[1] / "data" / "fixtures"
    if (packaged / "sample.json").is_file():
        return packaged
    return Path(__file__).resolve().parents[2] / "data" / "fixtures"


SAMPLE_DIR = sample_dir()
SAMPLE_N = 2_000
SAMPLE_SEED = 0
SAMPLE_END = "2025-06-30T00:00:00+00:00"


def arrow_schemas() -> tuple[Any, Any]:
    """The Arrow schemas of execution and event rows (the store's, store/tail.py)."""
    from kagura.observability.store.tail import EVENTS_SCHEMA, EXECUTIONS_SCHEMA

    return EXECUTIONS_SCHEMA, EVENTS_SCHEMA


def pairs_to_arrow(pairs: Iterable[tuple[dict, list[dict]]]) -> tuple[Any, Any]:
    """(executions, events) Arrow tables holding these row pairs."""
    import pyarrow as pa

    exec_schema, event_schema = arrow_schemas()
    executions, events = [], []
    for row, rows in pairs:
        executions.append(row)
        events.extend(rows)
    return (
        pa.Table.from_pylist(executions, schema=exec_schema),
        pa.Table.from_pylist(events, schema=event_schema),
    )


def write_sample(
    folder: str | Path = SAMPLE_DIR,
    n: int = SAMPLE_N,
    seed: int = SAMPLE_SEED,
    end: float | str = SAMPLE_END,
) -> dict[str, Any]:
    """Write `generate(n, seed, end=end)` as executions.parquet, events.parquet and sample.json; return the metadata."""
    import json

    import pyarrow.parquet as pq

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    price_map = litellm_price_map()
    prices = model_prices(price_map)
    executions, events = pairs_to_arrow(generate(n, seed=seed, end=end, prices=prices))
    for name, table in (("executions", executions), ("events", events)):
        pq.write_table(table, folder / f"{name}.parquet", compression="zstd")
    meta = {
        "n": n,
        "seed": seed,
        "days": 90,
        "end": parse_end(end),
        "end_iso": end if isinstance(end, str) else None,
        "executions": executions.num_rows,
        "events": events.num_rows,
        "prices": {
            name: {"input_cost_per_token": p[0], "output_cost_per_token": p[1]}
            for name, p in prices.items()
        },
        "unpriced_model": UNPRICED_MODEL,
        "command": (
            "python -m kagura.synthetic.fixtures sample"
            + ("" if folder.resolve() == SAMPLE_DIR else f" --out {folder}")
            + f" --n {n} --seed {seed} --end {end}"
        ),
    }
    (folder / "sample.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return meta


def load_sample(
    folder: str | Path = SAMPLE_DIR, end: float | str | None = None
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """The sample's (execution row, event rows) pairs, times moved so the sample ends at `end` (default now).

    Ids keep the time they were made with: prefix lookups still work, but an
    id's time part then differs from its row's `started_at`.
    """
    import json

    import pyarrow.parquet as pq

    folder = Path(folder)
    meta_path = folder / "sample.json"
    if not meta_path.is_file():
        raise FileNotFoundError(
            f"no telemetry sample in {folder}; make one with `python -m kagura.synthetic.fixtures sample --out {folder}`"
        )
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    shift = parse_end(end) - meta["end"]
    executions = pq.read_table(folder / "executions.parquet").to_pylist()
    events: dict[str, list[dict]] = {}
    for event in pq.read_table(folder / "events.parquet").to_pylist():
        event["started_at"] += shift
        events.setdefault(event["execution_id"], []).append(event)
    pairs = []
    for row in executions:
        for name in EXECUTION_NAMES:  # columns added since the sample was written
            row.setdefault(name, None)
        row["started_at"] += shift
        if row["ended_at"] is not None:
            row["ended_at"] += shift
        pairs.append((row, sorted(events.get(row["id"], []), key=lambda e: e["seq"])))
    return pairs
