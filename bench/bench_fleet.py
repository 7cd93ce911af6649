"""A fleet: H hosts compact into one shared lake on a local S3 server, then one reader asks.

Compaction: each host has a tail of N settled runs (each with 3 events) and
runs `EventStore.compact()`; the H hosts start at once. Baseline: the same
tails compacted into each host's own lake on local disk. Limit: the same lake
bytes copied to the S3 server with pyarrow (no SQLite, no Parquet encoding).
Fleet summary: `get_summary_stats()` of a reader over every host, warm, on the
S3 lake and on the same files in a local folder; limit: raw DuckDB running
sql/summary_stats.sql over those local files. S3 requests are counted at the
server (moto in server mode, in this process).
Run: python bench/bench_fleet.py [--runs 250000] [--hosts 4]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import common

TMP = common.OUT / "tmp_fleet"
S3_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
BUCKET = "kagura-fleet"


class RequestCounter(logging.Handler):
    """Counts the S3 server's requests by kind from its access log."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        text = re.sub(r"\x1b\[[0-9;]*m", "", record.getMessage())  # the log may be coloured
        start = text.find('"')
        if start < 0:
            return
        method, _, rest = text[start + 1 :].partition(" ")
        target = rest.split(" ", 1)[0]
        if method == "GET" and ("list-type" in target or "delimiter" in target):
            kind = "LIST"
        elif method == "POST" and "uploads" in target:
            kind = "POST (multipart)"
        else:
            kind = method
        self.counts[kind] += 1


def start_server() -> tuple[Any, str, RequestCounter]:
    from moto.server import ThreadedMotoServer

    sys.path.insert(0, str(common.ROOT / "tests"))
    from s3_server import free_port

    counter = RequestCounter()
    log = logging.getLogger("werkzeug")
    log.setLevel(logging.INFO)
    log.propagate = False
    log.addHandler(counter)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}", counter


def build_tails(hosts: int, runs: int) -> list[Path]:
    """One SQLite tail of `runs` settled runs per host (different rows per host), cached."""
    from kagura.observability.eventstore import EventStore

    folder = TMP / f"tails_{runs}"
    paths = [folder / f"host{i}.db" for i in range(hosts)]
    if all(p.is_file() for p in paths):
        return paths
    folder.mkdir(parents=True, exist_ok=True)
    end = time.time() - 120
    for i, path in enumerate(paths):
        if path.is_file():
            continue
        building = path.with_suffix(".building.db")
        for stale in building.parent.glob(building.name + "*"):
            stale.unlink()
        with EventStore(building, auto_compact=False) as store:
            for executions, events in common.arrow_chunks(
                runs, chunk=50_000, seed=500 + i, days=1, end=end
            ):
                store.append_many(common.pairs_of(executions, events))
        os.rename(building, path)
    return paths


def compact_fleet(tails: list[Path], lake: str | None, label: str) -> dict[str, Any]:
    """Copies of the tails compacted by one process per host, started together."""
    folder = TMP / label
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    go = folder / "go"
    procs = []
    for i, tail in enumerate(tails):
        home = folder / f"host{i}"
        home.mkdir()
        shutil.copy(tail, home / "telemetry.db")
        env = dict(os.environ, KAGURA_HOME=str(home), KAGURA_HOST_ID=f"host{i}")
        env.pop("KAGURA_LAKE", None)
        if lake is not None:
            env["KAGURA_LAKE"] = lake
        procs.append(
            subprocess.Popen(
                [sys.executable, __file__, "--worker", str(go), str(home / "ready")],
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    while not all((folder / f"host{i}" / "ready").exists() for i in range(len(tails))):
        if any(p.poll() is not None for p in procs):
            raise SystemExit(f"a host of {label} failed to start")
        time.sleep(0.05)
    start = time.perf_counter()
    go.touch()
    results = [json.loads(p.communicate()[0]) for p in procs]
    wall = time.perf_counter() - start
    rates = [r["executions"] / r["seconds"] for r in results]
    return {
        "hosts": len(tails),
        "runs_per_host": results[0]["executions"],
        "wall_s": wall,
        "per_host_median": statistics.median(rates),
        "per_host_min": min(rates),
        "fleet_per_second": sum(r["executions"] for r in results) / wall,
        "segments": sum(r["segments"] for r in results),
        "lake_bytes": sum(r["lake_bytes"] for r in results),
        "homes": [str(folder / f"host{i}") for i in range(len(tails))],
    }


def worker(go: str, ready: str) -> None:
    """One host: open the store, say ready, wait for go, compact, print what it took."""
    from kagura.observability.eventstore import EventStore

    store = EventStore(auto_compact=False)
    store.tail_size()
    Path(ready).touch()
    while not os.path.exists(go):
        time.sleep(0.01)
    start = time.perf_counter()
    report = store.compact()
    seconds = time.perf_counter() - start
    size = sum(s.bytes for s in store.segments())
    store.close()
    print(
        json.dumps(
            {
                "seconds": seconds,
                "executions": report["executions"],
                "segments": report["segments"],
                "lake_bytes": size,
            }
        )
    )


def copy_limit(local_home: str, s3: Any, runs: int) -> dict[str, Any]:
    """The floor of the S3 upload: one host's lake files copied to the server with pyarrow."""
    import pyarrow.fs as pafs

    lake = Path(local_home) / "telemetry"
    files = [p for p in lake.rglob("*.parquet")]
    size = sum(p.stat().st_size for p in files)
    start = time.perf_counter()
    pafs.copy_files(str(lake), f"{BUCKET}/copy", destination_filesystem=s3)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": size, "runs_per_second": runs / seconds}


# The reads measured on each lake, each by a reader of its own (a first call, then warm ones).
# The windowed summary starts mid-hour (its first hour's runs are scanned, the rest read from
# rollups); `since` is fixed so its warm calls are the same query again.
READS = (
    ("summary", "get_summary_stats()"),
    ("summary_exact", "get_summary_stats(exact=True): a scan of every run"),
    ("summary_12h", "get_summary_stats(since=12.5 h ago)"),
    ("newest", "get_executions(limit=20)"),
)


def read_calls(reader: Any, now: float) -> dict[str, Any]:
    since = now - 12.5 * 3600 - 123.0
    return {
        "summary": reader.get_summary_stats,
        "summary_exact": lambda: reader.get_summary_stats(exact=True),
        "summary_12h": lambda: reader.get_summary_stats(since=since),
        "newest": lambda: reader.get_executions(limit=20),
    }


def summaries(url: str, local: Path, counter: RequestCounter) -> dict[str, Any]:
    """The fleet's reads over the S3 lake and the same files in a folder; raw DuckDB's summary.

    S3 requests are counted per read (the first call and the warm ones together).
    """
    import duckdb

    from kagura.observability.eventstore import EventStore
    from kagura.observability.store.engine import load_sql

    out: dict[str, Any] = {"s3": {}, "folder": {}, "requests": {}}
    now = time.time()
    answers = {}
    for lake, where in ((url, "s3"), (str(local), "folder")):
        for key, _ in READS:
            with EventStore(":memory:", lake=lake) as reader:
                call = read_calls(reader, now)[key]
                counter.counts.clear()
                out[where][key] = common.measure(call, repeat=8 if key != "summary_exact" else 4)
                if where == "s3":
                    out["requests"][key] = dict(counter.counts)
                if key.startswith("summary"):
                    answers[(where, key)] = call()["total_executions"]
    out["total"] = answers[("s3", "summary")]
    assert len(set(answers.values())) <= 2, answers  # the window counts fewer; each the same way
    assert answers[("folder", "summary")] == answers[("s3", "summary_exact")] == out["total"]
    con = duckdb.connect()
    files = [str(p) for p in local.glob("host=*/executions/*/*.parquet")]
    listed = ", ".join(f"'{f}'" for f in files)
    con.execute(f"CREATE VIEW executions AS SELECT * FROM read_parquet([{listed}])")
    text = load_sql("summary_stats")
    params = {"agent": None, "since": None, "until": None}
    out["raw_duckdb"] = common.measure(lambda: con.sql(text, params=params).fetchall(), repeat=8)
    return out


def run(runs: int, hosts: int, log=print) -> dict[str, Any]:
    import pyarrow.fs as pafs

    os.environ.update(S3_ENV)
    log(f"building {hosts} tails of {runs:,} runs ...")
    tails = build_tails(hosts, runs)
    log("compacting into local-disk lakes ...")
    local = compact_fleet(tails, None, "local")
    server, endpoint, counter = start_server()
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        s3 = pafs.S3FileSystem(endpoint_override=endpoint, allow_bucket_creation=True)
        s3.create_dir(BUCKET)
        url = f"s3://{BUCKET}/fleet"
        log("compacting into the shared lake on the S3 server ...")
        counter.counts.clear()
        shared = compact_fleet(tails, url, "s3")
        requests = dict(counter.counts)
        log("copying one host's lake files to S3 (the upload floor) ...")
        limit = copy_limit(local["homes"][0], s3, runs)
        log("fleet summary ...")
        folder = TMP / "folder_lake"
        shutil.rmtree(folder, ignore_errors=True)
        pafs.copy_files(f"{BUCKET}/fleet", str(folder), source_filesystem=s3)
        reads = summaries(url, folder, counter)
        read_requests = reads.pop("requests")
    finally:
        server.stop()
    return {
        "machine": common.machine(),
        "runs_per_host": runs,
        "hosts": hosts,
        "local": local,
        "s3": shared,
        "s3_requests_compaction": requests,
        "upload_floor": limit,
        "summary": reads,
        "s3_requests_summary": read_requests,
        "bytes_per_run": shared["lake_bytes"] / (runs * hosts),
    }


def table(r: dict[str, Any]) -> str:
    n, h = r["runs_per_host"], r["hosts"]
    local, s3 = r["local"], r["s3"]
    lines = [
        f"### Fleet: {h} hosts x {common.size_label(n)} runs (bench/bench_fleet.py --runs {n})",
        "",
        "| compaction, hosts at once | per host (runs/s, median) | slowest host | fleet (runs/s) | wall (s) |",
        "|---|---:|---:|---:|---:|",
        f"| local-disk lake per host (baseline) | {local['per_host_median']:,.0f} | {local['per_host_min']:,.0f} | {local['fleet_per_second']:,.0f} | {local['wall_s']:.1f} |",
        f"| shared lake on the S3 server | {s3['per_host_median']:,.0f} | {s3['per_host_min']:,.0f} | {s3['fleet_per_second']:,.0f} | {s3['wall_s']:.1f} |",
        f"| limit: one host's lake bytes copied to S3 | {r['upload_floor']['runs_per_second']:,.0f} | | | {r['upload_floor']['seconds']:.1f} |",
        "",
        f"S3 / local-disk per host: {local['per_host_median'] / s3['per_host_median']:.2f}x slower "
        f"(target: within 2x). Lake: {r['bytes_per_run']:.0f} bytes per run (with its 3 events), "
        f"{s3['segments']} segments. S3 requests of the {h} compactions: "
        + ", ".join(f"{k} {v}" for k, v in sorted(r["s3_requests_compaction"].items()))
        + ".",
        "",
        f"| fleet reads ({common.size_label(n * h)} runs) | S3 first (ms) | S3 warm (ms) | folder first (ms) | folder warm (ms) | S3 / folder, warm | S3 requests (first + warm calls) |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    s = r["summary"]
    for key, label in READS:
        a, b = s["s3"][key], s["folder"][key]
        asked = ", ".join(f"{k} {v}" for k, v in sorted(r["s3_requests_summary"][key].items()))
        lines.append(
            f"| {label} | {a['first_ms']:,.0f} | {a['warm_ms']:,.0f} | {b['first_ms']:,.0f} | "
            f"{b['warm_ms']:,.0f} | {a['warm_ms'] / b['warm_ms']:.2f}x | {asked} ({a['runs'] + 1} calls) |"
        )
    m = s["raw_duckdb"]
    lines += [
        "",
        f"Limit: raw DuckDB running sql/summary_stats.sql over the local files: "
        f"{m['first_ms']:,.0f} ms first, {m['warm_ms']:,.0f} ms warm. Fleet summary, S3 / folder, "
        f"warm: {s['s3']['summary']['warm_ms'] / s['folder']['summary']['warm_ms']:.2f}x "
        "(target: within 2x).",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=250_000, help="runs per host")
    parser.add_argument("--hosts", type=int, default=4)
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    result = run(args.runs, args.hosts)
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / "fleet.json").write_text(json.dumps(result, indent=2))
    text = table(result)
    (common.OUT / "fleet.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
