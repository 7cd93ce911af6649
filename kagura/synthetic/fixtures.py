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

from kagura.synthetic.arrow import (
    generate_arrow,
)
from kagura.synthetic.rows import (
    fill,
    generate,
    models_from_prices,
)
from kagura.synthetic.sample import (
    SAMPLE_DIR,
    SAMPLE_END,
    SAMPLE_N,
    SAMPLE_SEED,
    arrow_schemas,
    load_sample,
    pairs_to_arrow,
    sample_dir,
    write_sample,
)
from kagura.synthetic.world import (
    AGENTS,
    AGENTS_BY_NAME,
    BUSY_HOUR,
    BUSY_SHARE,
    DAY,
    ERROR_TYPES,
    ERROR_WEIGHTS,
    HOSTS,
    LANGS,
    MEMORY_OPERATIONS,
    MODEL_CANDIDATES,
    TOOL_TIMING,
    TOOLS,
    UNPRICED_MODEL,
    UNPRICED_SHARE,
    WEEKEND_WEIGHT,
    WORDS,
    AgentProfile,
    check_common,
    check_slowdown,
    day_weights,
    draw_kwargs,
    error_message,
    hex_bits,
    litellm_price_map,
    lognormal,
    model_prices,
    parse_end,
    resolve_models,
    start_times,
)

__all__ = [
    "AGENTS",
    "AGENTS_BY_NAME",
    "AgentProfile",
    "BUSY_HOUR",
    "BUSY_SHARE",
    "DAY",
    "ERROR_TYPES",
    "ERROR_WEIGHTS",
    "HOSTS",
    "LANGS",
    "MEMORY_OPERATIONS",
    "MODEL_CANDIDATES",
    "SAMPLE_DIR",
    "SAMPLE_END",
    "SAMPLE_N",
    "SAMPLE_SEED",
    "TOOLS",
    "TOOL_TIMING",
    "UNPRICED_MODEL",
    "UNPRICED_SHARE",
    "WEEKEND_WEIGHT",
    "WORDS",
    "arrow_schemas",
    "check_common",
    "check_slowdown",
    "day_weights",
    "draw_kwargs",
    "error_message",
    "fill",
    "generate",
    "generate_arrow",
    "hex_bits",
    "litellm_price_map",
    "load_sample",
    "lognormal",
    "main",
    "model_prices",
    "models_from_prices",
    "pairs_to_arrow",
    "parse_end",
    "resolve_models",
    "sample_dir",
    "start_times",
    "write_sample",
]


def main(argv: list[str] | None = None) -> int:
    """Command line: `sample` writes the checked-in sample, `fill` fills a store; returns the exit code."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m kagura.synthetic.fixtures", description="Generate realistic telemetry."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sample = sub.add_parser("sample", help="write executions.parquet, events.parquet, sample.json")
    sample.add_argument("--out", default=str(SAMPLE_DIR))
    sample.add_argument("--n", type=int, default=SAMPLE_N)
    sample.add_argument("--seed", type=int, default=SAMPLE_SEED)
    sample.add_argument("--end", default=SAMPLE_END)
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
            meta = write_sample(args.out, n=args.n, seed=args.seed, end=args.end)
            print(
                f"wrote {meta['executions']} executions and {meta['events']} events to {args.out}"
            )
            return 0
        from kagura.observability.eventstore import EventStore

        end = float(args.end) if args.end and args.end.replace(".", "", 1).isdigit() else args.end
        with EventStore(args.db) as store:
            n = fill(store, args.n, seed=args.seed, days=args.days, end=end)
            store.compact()
            print(f"appended {n} executions to {store.path or ':memory:'}")
        return 0
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
