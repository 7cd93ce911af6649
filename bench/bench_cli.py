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
import statistics
import subprocess
import sys
import time
from pathlib import Path

import common

KAGURA = [sys.executable, "-m", "kagura.cli"]
TARGETS = {"help": 250.0, "stats": 400.0, "refresh": 50.0}


def cold(args: list[str], repeat: int = 7) -> dict[str, float]:
    """Wall milliseconds of `args` in fresh processes: median and best of `repeat`."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, cwd=common.ROOT)
        times.append((time.perf_counter() - start) * 1000)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} failed: {done.stderr.strip()[-400:]}")
    return {"median_ms": statistics.median(times), "best_ms": min(times)}


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

    from kagura.observability.dashboard import Dashboard
    from kagura.observability.store import EventStore

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
    }


# Appends one running execution to the store for each line read, and says "ok".
_WRITER = """
import sys, time
from kagura.observability import model
from kagura.observability.store import EventStore
store = EventStore(sys.argv[1], auto_compact=False)
for _ in sys.stdin:
    store.append(model.execution_row(id=model.new_execution_id(), agent_name="bench_probe", started_at=time.time(), status="running"))
    print("ok", flush=True)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats-size", type=int, default=1_000_000)
    parser.add_argument("--live-sizes", default="1000000,10000000")
    options = parser.parse_args()
    live_sizes = [int(s) for s in options.live_sizes.split(",") if s]

    stats_db, _ = common.build_store(options.stats_size)
    rows: list[tuple[str, str, str, str]] = []
    baseline = cold([sys.executable, "-c", "pass"])
    rows.append(
        (
            "python -c pass (baseline)",
            f"{baseline['median_ms']:.0f}",
            f"{baseline['best_ms']:.0f}",
            "",
        )
    )
    help_ = cold([*KAGURA, "--help"])
    rows.append(
        (
            "kagura --help",
            f"{help_['median_ms']:.0f}",
            f"{help_['best_ms']:.0f}",
            f"<= {TARGETS['help']:.0f}",
        )
    )
    label = common.size_label(options.stats_size)
    for name, extra in (("stats", []), ("list", []), ("--once", [])):
        args = [
            *KAGURA,
            "monitor",
            *([] if name == "--once" else [name]),
            *(["--once"] if name == "--once" else []),
            "--db",
            str(stats_db),
            *extra,
        ]
        figure = cold(args, repeat=5)
        target = f"<= {TARGETS['stats']:.0f}" if name == "stats" else ""
        rows.append(
            (
                f"kagura monitor {name} ({label} executions)",
                f"{figure['median_ms']:.0f}",
                f"{figure['best_ms']:.0f}",
                target,
            )
        )
    refresh_rows = []
    for n in live_sizes:
        db, _ = common.build_store(n)
        figure = live_refresh(db)
        refresh_rows.append((common.size_label(n), figure))

    lines = ["# CLI timings", ""]
    info = common.machine()
    lines.append(
        f"{info['cpu']}, {info['cores']} cores, {info['ram_gb']} GB, Python {info['python']}, duckdb {info['duckdb']}, pyarrow {info['pyarrow']}; {info['date']}, commit {info['commit']}."
    )
    load = Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else []
    if load:
        lines.append(
            f"Load average while measuring: {' '.join(load)} (other work on the machine slows every figure)."
        )
    lines += [
        "",
        "## Cold processes (wall ms)",
        "",
        "| command | median | best | target |",
        "| --- | ---: | ---: | --- |",
    ]
    lines += [f"| `{a}` | {b} | {c} | {d} |" for a, b, c, d in rows]
    lines += [
        "",
        "## One live-view refresh (ms, one process: data + rendering)",
        "",
        "| executions | first frame | warm | after another process wrote a run | target |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    lines += [
        f"| {size} | {f['first_ms']:.1f} | {f['warm_ms']:.1f} | {f['after_write_ms']:.1f} | <= {TARGETS['refresh']:.0f} |"
        for size, f in refresh_rows
    ]
    lines += ["", "## Where cold time goes (cumulative import ms, one run)", ""]
    for title, args in (
        ("kagura --help", [*KAGURA, "--help"]),
        (f"kagura monitor stats ({label})", [*KAGURA, "monitor", "stats", "--db", str(stats_db)]),
    ):
        parts = ", ".join(f"{name} {ms:.0f}" for name, ms in top_imports(args))
        lines.append(f"- `{title}`: {parts}")
    text = "\n".join(lines) + "\n"
    print(text)
    common.OUT.mkdir(parents=True, exist_ok=True)
    (common.OUT / "cli.md").write_text(text)


if __name__ == "__main__":
    main()
