"""How fast the terminal answers: cold `kagura --help` and `kagura monitor stats`, and one live-view refresh.

Cold figures are wall times of fresh processes (the median of several, and the
best); the live-view refresh is timed in one process, as the live loop runs it:
fetch the frame's data and render it. Stores come from bench/common.py (cached).
Prints a markdown table and writes bench/out/cli.md.

    python bench/bench_cli.py [--stats-size 1000000] [--live-sizes 1000000,10000000]
"""

from __future__ import annotations

import argparse
import io
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

KAGURA = [sys.executable, "-m", "kagura.cli"]
TARGETS = {"help": 250.0, "stats": 400.0, "refresh": 50.0}


def cold(args: list[str], repeat: int = 7) -> dict[str, float]:
    """Milliseconds of `args` in fresh processes: median and best wall time, and best CPU time.

    CPU time (user + system) is what the wall time would be on an idle machine
    for a process that mostly computes; it is reported because a busy machine
    stretches wall times.
    """
    import resource

    times, cpu = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, cwd=common.ROOT)
        times.append((time.perf_counter() - start) * 1000)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu.append((after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return {"median_ms": statistics.median(times), "best_ms": min(times), "cpu_ms": min(cpu)}


def top_imports(args: list[str], count: int = 6) -> list[tuple[str, float]]:
    """The top-level modules that take longest to import for `args` (cumulative ms)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args[1:]],
        capture_output=True,
        text=True,
        cwd=common.ROOT,
    )
    found = []
    for line in done.stderr.splitlines():
        parts = line.split("|")
        if len(parts) == 3 and parts[2].startswith(" ") and not parts[2].startswith("  "):
            try:
                found.append((parts[2].strip(), int(parts[1]) / 1000))
            except ValueError:
                continue
    return sorted(found, key=lambda item: -item[1])[:count]


def scratch_copy(db: Path, folder: Path) -> Path:
    """A store to write into that shares `db`'s lake: a copy of the SQLite file, the lake linked."""
    import shutil

    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / db.name
    shutil.copyfile(db, copy)
    (folder / db.with_suffix("").name).symlink_to(db.with_suffix(""), target_is_directory=True)
    return copy


def live_refresh(db: Path, repeat: int = 15) -> dict[str, float]:
    """Milliseconds of one live-view frame (data and rendering): the first, warm, and after a new row."""
    import tempfile

    from rich.console import Console

    from kagura.observability.eventstore import EventStore
    from kagura.observability.render.dashboard import Dashboard

    with tempfile.TemporaryDirectory(prefix="kagura-bench-cli-") as scratch:
        copy = scratch_copy(db, Path(scratch) / "store")  # the cached store itself is never written
        store = EventStore(copy, auto_compact=False)
        sink = io.StringIO()
        board = Dashboard(
            store, console=Console(file=sink, width=120, height=40, color_system=None)
        )

        def frame() -> None:
            board.console.print(board.render_live_frame(refresh_rate=1.0))
            sink.seek(0)
            sink.truncate()

        first = common.measure(frame, repeat=repeat)

        def recount_frame() -> None:  # the frame that recounts older runs (once a minute)
            for counter in board._live_counts.values():
                counter.base_at = -math.inf
            frame()

        recount = common.measure(recount_frame, repeat=3)
        # An agent in another process records a run before each frame.
        writer = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(copy)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=common.ROOT,
        )
        changed = []
        try:
            for _ in range(repeat):
                writer.stdin.write("append\n")
                writer.stdin.flush()
                if writer.stdout.readline().strip() != "ok":
                    raise RuntimeError("the writer process stopped")
                start = time.perf_counter()
                frame()
                changed.append((time.perf_counter() - start) * 1000)
        finally:
            writer.stdin.close()
            writer.wait(60)
        store.close()
    return {
        "first_ms": first["first_ms"],
        "warm_ms": first["warm_ms"],
        "after_write_ms": statistics.median(changed),
        "recount_ms": recount["warm_ms"],
    }


# Appends one running execution to the store for each line read, and says "ok".
_WRITER = """
import sys, time
from kagura.observability.store.rows import execution_row, new_execution_id
from kagura.observability.eventstore import EventStore
store = EventStore(sys.argv[1], auto_compact=False)
for _ in sys.stdin:
    store.append(execution_row(id=new_execution_id(), agent_name="bench_probe", started_at=time.time(), status="running"))
    print("ok", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats-size", type=int, default=1_000_000)
    parser.add_argument("--live-sizes", default="1000000,10000000")
    options = parser.parse_args()
    live_sizes = [int(s) for s in options.live_sizes.split(",") if s]

    stats_db, _ = common.build_store(options.stats_size)
    label = common.size_label(options.stats_size)
    commands = [
        ("python -c pass (baseline)", [sys.executable, "-c", "pass"], ""),
        ("kagura --help", [*KAGURA, "--help"], TARGETS["help"]),
        (
            f"kagura monitor stats ({label} executions)",
            [*KAGURA, "monitor", "stats", "--db", str(stats_db)],
            TARGETS["stats"],
        ),
        (
            f"kagura monitor list ({label} executions)",
            [*KAGURA, "monitor", "list", "--db", str(stats_db)],
            "",
        ),
        (
            f"kagura monitor --once ({label} executions)",
            [*KAGURA, "monitor", "--once", "--db", str(stats_db)],
            "",
        ),
    ]
    cold_rows = []
    for title, args, target in commands:
        figure = cold(args, repeat=7 if "--db" not in args else 5)
        cold_rows.append((title, figure, f"<= {target:.0f}" if target else ""))
    refresh_rows = []
    for n in live_sizes:
        db, _ = common.build_store(n)
        refresh_rows.append((common.size_label(n), live_refresh(db)))

    info = common.machine()
    lines = [
        "# CLI timings",
        "",
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB, Python {info['python']}, "
        f"duckdb {info['duckdb']}, pyarrow {info['pyarrow']}; {info['date']}, commit {info['commit']}.",
    ]
    if Path("/proc/loadavg").exists():
        load = " ".join(Path("/proc/loadavg").read_text().split()[:3])
        lines.append(
            f"Load average while measuring: {load} on {info['cores']} cores (a busy machine stretches wall times)."
        )
    lines += [
        "",
        "## Cold processes (ms)",
        "",
        "| command | wall, median | wall, best | CPU, best | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| `{title}` | {f['median_ms']:.0f} | {f['best_ms']:.0f} | {f['cpu_ms']:.0f} | {target} |"
        for title, f, target in cold_rows
    ]
    lines += [
        "",
        "## One live-view refresh (ms, one process: data + rendering)",
        "",
        "| executions | first frame | warm | after another process wrote a run | frame recounting older runs (1/min) | target |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {size} | {f['first_ms']:.1f} | {f['warm_ms']:.1f} | {f['after_write_ms']:.1f} | {f['recount_ms']:.1f} | <= {TARGETS['refresh']:.0f} |"
        for size, f in refresh_rows
    ]
    lines += ["", "## Where cold time goes (cumulative import ms, one run)", ""]
    for title, args, _ in commands[1:3]:
        parts = ", ".join(f"{name} {ms:.0f}" for name, ms in top_imports(args))
        lines.append(f"- `{title}`: {parts}")
    text = "\n".join(lines) + "\n"
    print(text)
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / "cli.md").write_text(text)


if __name__ == "__main__":
    main()
