"""Run every benchmark, print the tables, and write them to bench/out/benchmarks.md.

python bench/run.py            full run: ingest 100k, compaction 1M, queries at 1M and 10M,
                               then every other bench/bench_*.py at its default size
python bench/run.py --quick    the same at about 100k executions, in a few minutes
python bench/run.py --only others --quick   only the other benchmarks, small

Raw figures go to bench/out/results.json. Big stores are cached under
bench/out/data/ (delete it to rebuild). The other benchmarks (recording,
durability, CLI, analytics, sandbox, prune, OpenTelemetry, compaction with the
ADBC reader, rollups, the synthetic generator, the fleet on a local S3 server)
run afterwards, each in its own process; their printed tables go to
bench/out/<name>.txt. docs/benchmarks.md is written by hand from these outputs
(each of its sections names the script and the load it was measured at), so this
script never overwrites it: `--doc PATH` writes the generated report elsewhere.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import common

DOC = common.OUT / "benchmarks.md"
RESULTS = common.OUT / "results.json"

FULL = {
    "ingest": 100_000,
    "naive_ingest": 4_000,
    "compaction": 1_000_000,
    "sizes": [1_000_000, 10_000_000],
    "naive_max": 1_000_000,
}
QUICK = {
    "ingest": 10_000,
    "naive_ingest": 500,
    "compaction": 50_000,
    "sizes": [100_000],
    "naive_max": 100_000,
}


def log(message: str) -> None:
    print(message, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="100k executions instead of 1M and 10M"
    )
    parser.add_argument(
        "--only", default="ingest,compaction,queries,others", help="comma-separated parts to run"
    )
    parser.add_argument("--no-doc", action="store_true", help="do not write the report")
    parser.add_argument(
        "--doc", type=Path, default=DOC, help="where to write the report (bench/out/benchmarks.md)"
    )
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite the report from bench/out/results.json",
    )
    args = parser.parse_args()
    if args.render:
        args.doc.write_text(render(json.loads(RESULTS.read_text())))
        log(f"wrote {args.doc}")
        return 0
    plan = QUICK if args.quick else FULL
    parts = set(args.only.split(","))
    common.OUT.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    if parts != {"ingest", "compaction", "queries", "others"} and RESULTS.is_file():
        # A partial run replaces only its parts of the last results.
        results = json.loads(RESULTS.read_text())
        if results.get("mode") != ("quick" if args.quick else "full"):
            results = {}
    results.update(
        mode="quick" if args.quick else "full",
        plan=plan,
        machine=common.machine(),
        load_before=os.getloadavg(),
    )
    results.setdefault("loads", {})
    started = time.time()
    if "ingest" in parts:
        import bench_ingest

        log("ingest ...")
        results["ingest"] = bench_ingest.run(plan["ingest"], plan["naive_ingest"], log=log)
        results["loads"]["ingest"] = os.getloadavg()
        save(results)
    if "compaction" in parts:
        import bench_compaction

        log("compaction ...")
        results["compaction"] = bench_compaction.run(plan["compaction"], log=log)
        results["loads"]["compaction"] = os.getloadavg()
        save(results)
    if "queries" in parts:
        import bench_queries

        results.setdefault("queries", {})
        for n in plan["sizes"]:
            log(f"queries at {common.size_label(n)} ...")
            results["queries"][str(n)] = bench_queries.run_size(n, plan["naive_max"], log=log)
            results["loads"][f"queries {common.size_label(n)}"] = os.getloadavg()
            save(results)
    results["load_after"] = os.getloadavg()
    results["seconds"] = time.time() - started
    save(results)
    if "others" in parts:
        run_others(args.quick)
    text = render(results)
    print(text)
    if not args.no_doc:
        args.doc.write_text(text)
        log(f"wrote {args.doc} and {RESULTS.relative_to(common.ROOT)}")
    return 0


def save(results: dict[str, Any]) -> None:
    """Write the results so far (a crash later keeps what was measured)."""
    results.setdefault("load_after", os.getloadavg())
    results.setdefault("seconds", 0.0)
    RESULTS.write_text(json.dumps(results, indent=2, default=str))


# The other benchmarks: script, arguments for a full run, arguments for --quick.
OTHERS: list[tuple[str, list[str], list[str]]] = [
    ("bench_recording.py", [], ["--quick"]),
    ("bench_durability.py", [], ["--quick"]),
    ("bench_cli.py", [], ["--quick"]),
    ("bench_analytics.py", [], ["--sizes", "100000"]),
    ("bench_sandbox.py", [], ["--sizes", "100000"]),
    ("bench_prune.py", [], ["--sizes", "100000"]),
    ("bench_otel.py", [], ["--runs", "2000", "--naive-runs", "500", "--export-runs", "10000"]),
    ("bench_compaction.py", ["--n", "250000"], ["--n", "50000"]),
    ("bench_rollups.py", ["--runs", "10000000"], ["--runs", "100000", "--repeat", "3"]),
    ("bench_synthetic.py", [], ["--runs", "200000", "--days", "7"]),
    ("bench_fleet.py", [], ["--runs", "20000"]),
]


def run_others(quick: bool) -> None:
    """Each other benchmark in a process of its own; its printed tables go to bench/out/NAME.txt."""
    for name, full, small in OTHERS:
        script = common.ROOT / "bench" / name
        if not script.is_file():
            continue
        args = small if quick else full
        if args == ["--quick"] and not _takes_quick(script):
            args = []
        log(f"{name} {' '.join(args)} ...")
        try:
            done = subprocess.run(
                [sys.executable, str(script), *args],
                cwd=common.ROOT,
                capture_output=True,
                text=True,
                timeout=3600,
            )
            (common.OUT / f"{script.stem}.txt").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                log(f"  {name} failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        except subprocess.TimeoutExpired:
            log(f"  {name} took over an hour; left out")


def _takes_quick(script: Path) -> bool:
    return "--quick" in script.read_text(encoding="utf-8")


# --- the report ----------------------------------------------------------------------


def _rate(x: float | None) -> str:
    return "—" if x is None else f"{x:,.0f}/s"


def _ms(x: float | None) -> str:
    if x is None:
        return "—"
    if x >= 10_000:
        return f"{x / 1000:,.1f} s"
    if x >= 100:
        return f"{x:,.0f} ms"
    if x >= 10:
        return f"{x:.1f} ms"
    return f"{x:.2f} ms"


def _x(a: float | None, b: float | None) -> str:
    """How many times faster a is than b (both durations), or slower."""
    if not a or not b:
        return "—"
    ratio = b / a
    if ratio >= 1:
        return f"{ratio:,.0f}x faster" if ratio >= 10 else f"{ratio:.1f}x faster"
    return f"{1 / ratio:,.0f}x slower" if ratio <= 0.1 else f"{1 / ratio:.1f}x slower"


def _mark(ok: bool | None) -> str:
    return "n/a" if ok is None else ("met" if ok else "**not met**")


def render(r: dict[str, Any]) -> str:
    """docs/benchmarks.md from the results."""
    m = r["machine"]
    lines = [
        "# Benchmarks",
        "",
        "Made by `python bench/run.py"
        + (" --quick" if r["mode"] == "quick" else "")
        + "` (raw figures in",
        "`bench/out/results.json`). Every figure of the store stands beside the same work done by",
        "a naive store built the way Kagura's original one was (`bench/naive.py`: a new sqlite3",
        "connection per call, the default rollback journal, one commit per insert, events and",
        "metrics as JSON blobs, indexes on agent_name and started_at, questions answered by a",
        "SELECT then `json.loads` and Python loops) and by the limit: raw SQLite for writes, raw",
        "DuckDB over the very Parquet files the store lists for reads.",
        "",
        "## Machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; RAM {m['ram_gb']} GB; {m['os']}",
        f"- Python {m['python']}, duckdb {m['duckdb']}, polars {m['polars']}, pyarrow {m['pyarrow']}, SQLite {m['sqlite']}",
        f"- Date: {m['date']}, commit {m['commit']}; run took {r['seconds'] / 60:.0f} min",
        "- Load average (1 min) when each part ended: "
        + ", ".join(f"{k} {v[0]:.1f}" for k, v in r.get("loads", {}).items()),
    ]
    if (
        max([r["load_before"][0], r["load_after"][0]] + [v[0] for v in r.get("loads", {}).values()])
        > (m["cores"] or 1) * 0.75
    ):
        lines.append(
            "  (other programs were busy on this machine during the run: treat absolute figures as pessimistic)"
        )
    lines.append("")
    verdicts: list[tuple[str, str, str]] = []
    if "ingest" in r:
        lines += _ingest(r["ingest"], verdicts)
    if "compaction" in r:
        lines += _compaction(r["compaction"], r.get("queries", {}), verdicts)
    if "queries" in r:
        lines += _sizes(r, verdicts)
        for n, q in r["queries"].items():
            lines += _queries(int(n), q, verdicts, r["mode"])
    lines += ["## Targets (issue 2)", "", "| target | measured | verdict |", "| --- | --- | --- |"]
    lines += [f"| {t} | {v} | {ok} |" for t, v, ok in verdicts]
    lines.append("")
    notes = common.ROOT / "bench" / "notes.md"
    if notes.is_file():
        lines += [notes.read_text(encoding="utf-8").rstrip(), ""]
    for name, title in (
        ("recording.md", "Recording overhead"),
        ("durability.md", "Durable on return"),
        ("cli.md", "CLI"),
    ):
        path = common.OUT / name
        if path.is_file():
            lines += [
                f"## {title} (bench/out/{name})",
                "",
                _demote(path.read_text(encoding="utf-8")),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


def _demote(text: str) -> str:
    """Markdown from another tool, its headings two levels down, under one of ours."""
    out = []
    for line in text.strip().splitlines():
        out.append("##" + line if line.startswith("#") else line)
    return "\n".join(out)


def _ingest(i: dict[str, Any], verdicts: list) -> list[str]:
    s1, r1, n1 = i["store_1p"], i["raw_1p"], i["naive_1p"]
    s4, r4, n4 = i["store_4p"], i["raw_4p"], i["naive_4p"]

    def faults(x):
        return f"{x['errors']} errors, {x['lost']} lost"

    lines = [
        "## Ingest",
        "",
        "Executions per second, each with 3 events; each append is its own transaction (as the recorder",
        "writes a finished run) and is committed when the call returns. Store and raw SQLite: WAL,",
        "`synchronous=NORMAL` (a commit survives a crash of the process; the last commits can be lost",
        f"on power failure). Naive: rollback journal, `synchronous=FULL`. Store {s1['n']:,} executions,",
        f"naive {n1['n']:,}.",
        "",
        "| | store | naive store | raw SQLite (limit) | store vs naive |",
        "| --- | --- | --- | --- | --- |",
        f"| 1 process | {_rate(s1['per_second'])} (p50 {s1['p50_us']:,.0f} µs, p99 {s1['p99_us']:,.0f} µs) | "
        f"{_rate(n1['per_second'])} (p50 {n1['p50_us']:,.0f} µs) | {_rate(r1['per_second'])} (p50 {r1['p50_us']:,.0f} µs) | "
        f"{s1['per_second'] / n1['per_second']:.0f}x |",
        f"| 4 processes at once | {_rate(s4['per_second'])}; {faults(s4)} | {_rate(n4['per_second'])}; {faults(n4)} | "
        f"{_rate(r4['per_second'])}; {faults(r4)} | {s4['per_second'] / n4['per_second']:.0f}x |",
        f"| `append_many`, 1,000 per transaction | {_rate(i['tail']['append_many_1000_per_second'])} | | | |",
        f"| 1 process, at the median call time (1 / p50) | {_rate(1e6 / s1['p50_us'])} | {_rate(1e6 / n1['p50_us'])} | "
        f"{_rate(1e6 / r1['p50_us'])} | {n1['p50_us'] / s1['p50_us']:.0f}x |",
        "",
        "The last row is what every call would give if none waited for the CPU or the disk: on a",
        "busy machine the mean is set by the slow tail (p99) that other programs cause.",
        "",
    ]
    verdicts.append(
        (
            ">= 25,000 executions/s from 1 process, >= 25x naive",
            f"{_rate(s1['per_second'])}, {s1['per_second'] / n1['per_second']:.0f}x naive (raw SQLite: {_rate(r1['per_second'])})",
            _mark(s1["per_second"] >= 25_000 and s1["per_second"] >= 25 * n1["per_second"]),
        )
    )
    verdicts.append(
        (
            "4 processes at once: 0 errors, 0 rows lost",
            f"{faults(s4)} ({s4['n']:,} executions, {s4['lost_events']} events lost)",
            _mark(s4["errors"] == 0 and s4["lost"] == 0 and s4["lost_events"] == 0),
        )
    )
    return lines


def _compaction(c: dict[str, Any], queries: dict[str, Any], verdicts: list) -> list[str]:
    b, s, raw = c["bulk"], c["steady"], c["raw"]
    lines = [
        "## Compaction",
        "",
        "Executions per second moved from the SQLite tail into the Parquet lake, with their 3 events each.",
        "",
        "| | store | raw (limit) |",
        "| --- | --- | --- |",
        f"| bulk: {b['n']:,} settled executions from the last day, one `compact()` | {_rate(b['per_second'])} "
        f"({b['segments']} segments, {b['left_in_tail']} left in the tail, {b['counted_back']:,} counted back) | "
        f"{_rate(raw['per_second'])} (read {raw['read_seconds']:.1f} s, write {raw['write_seconds']:.1f} s, delete {raw['delete_seconds']:.1f} s) |",
        f"| steady: tail of {s['batch']:,} moved, median of {s['rounds']} | {_rate(s['per_second'])} | |",
    ]
    for n, q in queries.items():
        build = q["build"]
        if build.get("compact_seconds"):
            lines.append(
                f"| while building the {common.size_label(int(n))} store (90 days, batches of 250k) | "
                f"{_rate(build['compacted'] / build['compact_seconds'])} | |"
            )
    lines.append("")
    verdicts.append(
        (
            ">= 300,000 executions/s compaction, with their events",
            f"{_rate(b['per_second'])} (raw limit {_rate(raw['per_second'])})",
            _mark(b["per_second"] >= 300_000),
        )
    )
    return lines


def _sizes(r: dict[str, Any], verdicts: list) -> list[str]:
    lines = [
        "## Bytes on disk per execution (with its events)",
        "",
        "| | bytes per execution | executions |",
        "| --- | --- | --- |",
    ]
    lake = None
    for n, q in r["queries"].items():
        per = q["lake_bytes"] / int(n)
        lake = per
        lines.append(
            f"| Parquet lake (90 days, {q['lake_files']} files) | {per:,.0f} | {int(n):,} |"
        )
        if q.get("naive_bytes"):
            lines.append(
                f"| naive store (SQLite, JSON blobs) | {q['naive_bytes'] / int(n):,.0f} | {int(n):,} |"
            )
    if "compaction" in r:
        b, raw = r["compaction"]["bulk"], r["compaction"]["raw"]
        lines.append(
            f"| Parquet lake, one day compacted at once | {b['lake_bytes'] / b['n']:,.0f} | {b['n']:,} |"
        )
        lines.append(
            f"| raw: one zstd Parquet file per table | {raw['bytes'] / raw['n']:,.0f} | {raw['n']:,} |"
        )
    if "ingest" in r:
        t = r["ingest"]["tail"]
        lines.append(
            f"| SQLite tail (after a checkpoint) | {t['bytes'] / t['n']:,.0f} | {t['n']:,} |"
        )
    lines.append("")
    if lake is not None:
        verdicts.append(
            (
                "the lake holds an execution with 3 events in <= 150 bytes",
                f"{lake:,.0f} bytes",
                _mark(lake <= 150),
            )
        )
    return lines


WARM_TARGETS_10M = {
    "summary": 150,
    "cost_by_agent": 150,
    "cost_by_date": 150,
    "newest_100_agent": 15,
    "by_id": 10,
}
NAIVE_50X = ("summary", "cost_by_agent", "cost_by_date", "p50_p95_by_agent")


def _queries(n: int, q: dict[str, Any], verdicts: list, mode: str) -> list[str]:
    has_naive = any("naive" in row for row in q["queries"].values())
    label = common.size_label(n)
    lines = [
        f"## Queries at {label} executions",
        "",
        f"90 days of runs, {q['lake_files']} Parquet files. Warm: median of repeated calls on an open",
        "store. First: a new process opens the store and asks once (imports not counted). Raw DuckDB",
        "runs the same SQL over the same files and only fetches tuples (no snapshot, no tail, no dicts).",
        "Same answer: the store's and the naive store's results were compared (ids, counts, sums,",
        "percentiles) once, outside the timings.",
        "",
    ]
    head = "| query | store warm | store first | raw DuckDB warm | raw first | store / raw |"
    rule = "| --- | --- | --- | --- | --- | --- |"
    if has_naive:
        head += " naive | store vs naive | same answer |"
        rule += " --- | --- | --- |"
    lines += [head, rule]
    for row in q["queries"].values():
        store, raw = row["store"]["warm_ms"], row["raw"]["warm_ms"]
        fresh = row["store_fresh"]["open_ms"] + row["store_fresh"]["first_ms"]
        cells = [
            f"`{row['label']}`",
            _ms(store),
            _ms(fresh),
            _ms(raw),
            _ms(row["raw"]["fresh_ms"]),
            f"{store / raw:.2f}",
        ]
        if has_naive:
            naive = row.get("naive", {}).get("warm_ms")
            agree = row.get("agree")
            cells += [
                _ms(naive),
                _x(store, naive),
                "—" if agree is None else ("yes" if agree else "**no**"),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    composite = q["queries"].get("newest_100_agent", {}).get("naive_composite")
    if composite:
        lines += [
            "",
            "The naive store answers the newest 100 of one agent from its agent_name index and then",
            "sorts every run of that agent; with an `(agent_name, started_at)` index added it takes",
            f"{_ms(composite['warm_ms'])} (Kagura's store had no such index).",
        ]
    lines.append("")
    rows = q["queries"]
    if mode == "full" and n >= 10_000_000:
        for name, limit in WARM_TARGETS_10M.items():
            if name not in rows:
                continue
            warm, raw = rows[name]["store"]["warm_ms"], rows[name]["raw"]["warm_ms"]
            if name in ("summary", "cost_by_agent", "cost_by_date"):
                verdicts.append(
                    (
                        f"10M warm `{name}` <= {limit} ms and within 1.5x raw DuckDB",
                        f"{_ms(warm)}, {warm / raw:.2f}x raw ({_ms(raw)})",
                        _mark(warm <= limit and warm <= 1.5 * raw),
                    )
                )
            else:
                verdicts.append(
                    (f"10M warm `{name}` <= {limit} ms", _ms(warm), _mark(warm <= limit))
                )
    if has_naive and (mode == "quick" or n == 1_000_000):
        scope = "" if n == 1_000_000 else f" (quick run: measured at {label})"
        for name in NAIVE_50X:
            if name in rows and "naive" in rows[name]:
                warm, naive = rows[name]["store"]["warm_ms"], rows[name]["naive"]["warm_ms"]
                verdicts.append(
                    (
                        f"1M `{name}` >= 50x faster than naive{scope}",
                        f"{_ms(warm)} vs {_ms(naive)}: {naive / warm:,.0f}x",
                        _mark(naive / warm >= 50),
                    )
                )
        if "newest_100_agent" in rows:
            row = rows["newest_100_agent"]
            warm, naive = row["store"]["warm_ms"], row["naive"]["warm_ms"]
            composite = row.get("naive_composite", {}).get("warm_ms")
            # The ~1.4 ms of the target is a lookup on an (agent_name, started_at) index; Kagura's
            # separate indexes make SQLite sort every run of the agent. Judged on the faster one.
            best = min(x for x in (naive, composite) if x is not None)
            verdicts.append(
                (
                    f"1M newest 100 of one agent no slower than naive's indexed lookup (about 1.4 ms){scope}",
                    f"{_ms(warm)} vs naive {_ms(naive)} (Kagura's indexes), {_ms(composite)} (with an (agent_name, started_at) index)",
                    _mark(warm <= best),
                )
            )
    return lines


if __name__ == "__main__":
    sys.exit(main())
