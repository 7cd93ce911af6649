"""Realistic, deterministic telemetry for tests, notebooks, benchmarks and the demo.

`generate()` yields (execution row, event rows) pairs exactly as the recorder
writes them: about 20 agents, 5 models priced from litellm's bundled price map,
tools, memory operations, nested runs, ~5% failures, 90 days of history.
`generate_arrow()` makes millions of rows as Arrow tables (needs numpy).

The generators live beside this module: world.py (agents, models, prices, hours),
rows.py (`generate`, `fill`), arrow.py (`generate_arrow`), sample.py (the checked-in
sample). This module gathers their public names and is the command line:
`python -m kagura.synthetic.fixtures sample|fill`.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any

from kagura.synthetic import arrow, rows, sample, world

_PARTS: tuple[ModuleType, ...] = (world, rows, sample, arrow)


def __getattr__(name: str) -> Any:
    """The public names of world, rows, sample and arrow, as `fixtures.NAME`."""
    if not name.startswith("_"):
        for part in _PARTS:
            if hasattr(part, name):
                return getattr(part, name)
    raise AttributeError(f"module 'kagura.synthetic.fixtures' has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """Command line: `sample` writes the checked-in sample, `fill` fills a store; returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m kagura.synthetic.fixtures", description="Generate realistic telemetry."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sampling = sub.add_parser(
        "sample", help="write executions.parquet, events.parquet, sample.json"
    )
    sampling.add_argument("--out", default=str(sample.SAMPLE_DIR))
    sampling.add_argument("--n", type=int, default=sample.SAMPLE_N)
    sampling.add_argument("--seed", type=int, default=sample.SAMPLE_SEED)
    sampling.add_argument("--end", default=sample.SAMPLE_END)
    filling = sub.add_parser("fill", help="append generated runs to a telemetry store")
    filling.add_argument(
        "--db", default=None, help="store path (default: $KAGURA_HOME/telemetry.db)"
    )
    filling.add_argument("--n", type=int, default=10_000)
    filling.add_argument("--seed", type=int, default=0)
    filling.add_argument("--days", type=float, default=90)
    filling.add_argument("--end", default=None, help="epoch seconds or ISO date (default: now)")
    args = parser.parse_args(argv)
    try:
        if args.command == "sample":
            meta = sample.write_sample(args.out, n=args.n, seed=args.seed, end=args.end)
            print(
                f"wrote {meta['executions']} executions and {meta['events']} events to {args.out}"
            )
            return 0
        from kagura.observability.eventstore import EventStore

        end = float(args.end) if args.end and args.end.replace(".", "", 1).isdigit() else args.end
        with EventStore(args.db) as store:
            n = rows.fill(store, args.n, seed=args.seed, days=args.days, end=end)
            store.compact()
            print(f"appended {n} executions to {store.path or ':memory:'}")
        return 0
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
