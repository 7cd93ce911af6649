"""Child processes, ground truth and an independent reader for the reliability tests.

Run as a script it is one of the processes the tests start: `writer` records runs
and logs each batch to a ground-truth file (fsynced before and after `append`
returns), `compactor` compacts in a loop, `op` runs one store operation, `zygote`
forks recorders that record through `@agent` and `TelemetryCollector` and log each
run to a side file once its call returned. Any of them can SIGKILL itself at a named point of the store's protocols (`--kill-at`),
or note the point it is at in a phase file so a random kill can be placed.
Imported, it builds runs, reads ground truth, and reads a store without the store.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import signal
import sqlite3
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve()

AGENTS = ("translator", "chatbot", "researcher", "要約", "a'b;--")

# Named points of the store's protocols; a phase file holds the index of the last one reached.
PHASES = (
    "idle",
    "append:in-txn",
    "append:committed",
    "compact:tmp-written",
    "compact:first-renamed",
    "compact:renamed-uncommitted",
    "compact:in-txn",
    "compact:committed",
    "merge:tmp-written",
    "merge:first-renamed",
    "merge:renamed-uncommitted",
    "merge:in-txn",
    "merge:committed",
    "retention:tmp-written",
    "retention:first-renamed",
    "retention:renamed-uncommitted",
    "retention:in-txn",
    "retention:committed",
    "cleanup:in-txn",
    "cleanup:committed",
    "other:in-txn",
    "other:committed",
    "log:pending",
    "log:committed",
    # Compaction's first step: the live generation of the tail sealed (tail.py, m006).
    "seal:in-txn",
    "seal:committed",
)


# --- runs ---------------------------------------------------------------------


@dataclass
class Run:
    """One execution as the harness means it to be stored (its final state for this write)."""

    id: str
    agent: str
    started_at: float
    status: str
    tokens: int
    cost_units: int  # cost in 1/1024 dollars: sums are exact in any order
    events: int

    @property
    def cost(self) -> float:
        return self.cost_units / 1024

    def key(self) -> tuple:
        """What a store must hold for this run (running and abandoned count as one state)."""
        status = "running" if self.status in ("running", "abandoned") else self.status
        return (status, self.tokens, self.cost_units, self.events)

    def to_list(self) -> list:
        return [
            self.id,
            self.agent,
            self.started_at,
            self.status,
            self.tokens,
            self.cost_units,
            self.events,
        ]

    @classmethod
    def from_list(cls, values: list) -> Run:
        return cls(*values)

    def rows(self) -> tuple[dict, list[dict]]:
        """The execution row and event rows of this run."""
        from kagura.observability.store.rows import event_row, execution_row

        events = []
        if self.status != "running":
            tokens_left, units_left = self.tokens, self.cost_units
            for seq in range(self.events):
                last = seq == self.events - 1
                tokens = tokens_left if last else tokens_left // 2
                units = units_left if last else units_left // 2
                tokens_left -= tokens
                units_left -= units
                events.append(
                    event_row(
                        self.id,
                        seq,
                        "llm_call",
                        self.started_at + seq * 0.01,
                        name="gpt-4o-mini",
                        duration=0.01,
                        prompt_tokens=tokens,
                        completion_tokens=0,
                        cost=units / 1024,
                    )
                )
        row = execution_row(
            id=self.id,
            agent_name=self.agent,
            started_at=self.started_at,
            ended_at=None if self.status == "running" else self.started_at + 0.5,
            status=self.status,
            total_tokens=self.tokens,
            prompt_tokens=self.tokens,
            total_cost=self.cost if self.status != "running" else None,
            llm_calls=len(events),
            kwargs={"q": "x" * 20},
        )
        return row, events


def new_run(rng: random.Random, start: float, end: float, status: str | None = None) -> Run:
    """A random run that started in [start, end)."""
    from kagura.observability.store.rows import new_execution_id

    started = rng.uniform(start, end)
    status = status or rng.choice(("completed",) * 6 + ("failed", "cancelled"))
    if status == "running":
        return Run(new_execution_id(at=started), rng.choice(AGENTS), started, status, 0, 0, 0)
    events = rng.randint(0, 3)
    tokens = rng.randint(events, 2000) if events else rng.randint(0, 50)
    units = rng.randint(events, 400) if events else 0
    return Run(
        new_execution_id(at=started),
        rng.choice(AGENTS),
        started,
        status,
        tokens,
        units,
        events,
    )


def finish(rng: random.Random, run: Run) -> Run:
    """The completed version of a running run (same id and start)."""
    events = rng.randint(1, 3)
    return Run(
        run.id,
        run.agent,
        run.started_at,
        "completed",
        rng.randint(events, 2000),
        rng.randint(events, 400),
        events,
    )


# --- ground truth -------------------------------------------------------------


class TruthLog:
    """Ground truth: a batch is logged (fsynced) before `append`, and marked after it returns."""

    def __init__(self, path: Path):
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def _line(self, value: dict) -> None:
        os.write(self._fd, (json.dumps(value) + "\n").encode())
        os.fsync(self._fd)

    def pending(self, batch: int, runs: list[Run]) -> None:
        self._line({"p": batch, "runs": [r.to_list() for r in runs]})

    def committed(self, batch: int) -> None:
        self._line({"c": batch})


def read_log(path: Path) -> tuple[list[list[Run]], list[list[Run]]]:
    """(committed batches in order, batches written but not marked committed)."""
    pending: dict[int, list[Run]] = {}
    done: list[list[Run]] = []
    if not path.exists():
        return [], []
    for line in path.read_bytes().splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue  # the last line, cut by a kill
        if "p" in item:
            pending[item["p"]] = [Run.from_list(v) for v in item["runs"]]
        elif "c" in item:
            done.append(pending.pop(item["c"]))
    return done, list(pending.values())


class Truth:
    """What the store must hold: the last committed state of every run id."""

    def __init__(self) -> None:
        self.runs: dict[str, Run] = {}

    def apply(self, batch: list[Run]) -> None:
        for run in batch:
            self.runs[run.id] = run

    def expected(self, batch: list[Run] | None = None) -> dict[str, tuple]:
        state = {run_id: run.key() for run_id, run in self.runs.items()}
        for run in batch or ():
            state[run.id] = run.key()
        return state

    def absorb_log(self, path: Path, found: dict[str, tuple]) -> str:
        """Fold one child's log in; settle its uncommitted batch against the store's state.

        Returns "none", "in" (the unmarked batch committed) or "out" (it did not);
        raises AssertionError when the store holds something else.
        """
        done, unmarked = read_log(path)
        for batch in done:
            self.apply(batch)
        assert len(unmarked) <= 1, f"{len(unmarked)} unmarked batches in {path}"
        if not unmarked:
            return "none"
        if found == self.expected(unmarked[0]):
            self.apply(unmarked[0])
            return "in"
        return "out"

    def totals(self) -> dict[str, Any]:
        """Count, tokens, cost (in 1/1024 units) and events of the expected store."""
        keys = self.expected().values()
        return {
            "executions": len(self.runs),
            "tokens": sum(k[1] for k in keys),
            "cost_units": sum(k[2] for k in keys),
            "events": sum(k[3] for k in keys),
        }


# --- reading a store without the store ------------------------------------------


def lake_of(db: Path) -> Path:
    return db.with_suffix("") if db.suffix else db.with_name(db.name + ".lake")


def read_store(db: Path) -> tuple[dict[str, tuple], list[str], dict[str, int]]:
    """Every run of a store, read with sqlite3 and pyarrow only (not through EventStore).

    Returns (state by id, ids seen more than once, events per id). The tail and the
    manifest are read in one SQLite transaction; only listed Parquet files are read.
    """
    import pyarrow.parquet as pq

    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        con.execute("BEGIN")
        tail = con.execute("SELECT id, status, total_tokens, total_cost FROM executions").fetchall()
        tail_events = con.execute("SELECT execution_id, seq FROM events").fetchall()
        listed = con.execute("SELECT executions_path, events_path FROM segments").fetchall()
        con.execute("COMMIT")
    finally:
        con.close()
    lake = lake_of(db)
    rows = list(tail)
    event_keys = list(tail_events)
    for exec_path, event_path in listed:
        table = pq.read_table(
            lake / exec_path, columns=["id", "status", "total_tokens", "total_cost"]
        )
        rows.extend(zip(*(table.column(i).to_pylist() for i in range(4)), strict=True))
        events = pq.read_table(lake / event_path, columns=["execution_id", "seq"])
        event_keys.extend(
            zip(
                events.column(0).to_pylist(),
                events.column(1).to_pylist(),
                strict=True,
            )
        )
    seen: dict[str, int] = {}
    state: dict[str, tuple] = {}
    for run_id, status, tokens, cost in rows:
        seen[run_id] = seen.get(run_id, 0) + 1
        status = "running" if status in ("running", "abandoned") else status
        units = round((cost or 0.0) * 1024)
        state[run_id] = (status, tokens, units, 0)
    per_run: dict[str, int] = {}
    duplicate_events = 0
    seen_events: set[tuple] = set()
    for key in event_keys:
        if key in seen_events:
            duplicate_events += 1
        seen_events.add(key)
        per_run[key[0]] = per_run.get(key[0], 0) + 1
    for run_id, (status, tokens, units, _) in list(state.items()):
        state[run_id] = (status, tokens, units, per_run.get(run_id, 0))
    dupes = [run_id for run_id, n in seen.items() if n > 1]
    counts = {"orphan_events": len(set(per_run) - set(state)), "duplicate_events": duplicate_events}
    return state, dupes, counts


def lake_files(db: Path) -> set[str]:
    """Every file under the lake's executions/, events/ and rollups/ folders, relative to the lake."""
    lake = lake_of(db)
    found = set()
    for kind in ("executions", "events", "rollups"):
        root = lake / kind
        if root.is_dir():
            found.update(p.relative_to(lake).as_posix() for p in root.rglob("*") if p.is_file())
    return found


def listed_files(db: Path) -> tuple[set[str], set[str]]:
    """(files listed in the manifest, files retired and not yet deleted)."""
    con = sqlite3.connect(db, timeout=30)
    try:
        listed = set()
        for row in con.execute("SELECT executions_path, events_path, rollup_path FROM segments"):
            listed.update(rel for rel in row if rel)
        retired = {r[0] for r in con.execute("SELECT path FROM retired_files")}
    finally:
        con.close()
    return listed, retired


def assert_rollups_agree(db: Path) -> None:
    """Every listed segment has its rollup, counting exactly its runs, failures and tokens."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    con = sqlite3.connect(db, timeout=30)
    try:
        rows = con.execute("SELECT executions_path, rollup_path FROM segments").fetchall()
    finally:
        con.close()
    lake = lake_of(db)
    for exec_path, rollup_path in rows:
        assert rollup_path, f"segment {exec_path} has no rollup"
        runs = pq.read_table(lake / exec_path, columns=["status", "total_tokens"])
        rollup = pq.read_table(lake / rollup_path, columns=["runs", "failed", "total_tokens"])
        assert pc.sum(rollup.column("runs")).as_py() == runs.num_rows, rollup_path
        failed = pc.sum(pc.equal(runs.column("status"), "failed")).as_py()
        assert pc.sum(rollup.column("failed")).as_py() == failed, rollup_path
        tokens = pc.sum(runs.column("total_tokens")).as_py()
        assert pc.sum(rollup.column("total_tokens")).as_py() == tokens, rollup_path


def describe_difference(found: dict[str, tuple], expected: dict[str, tuple]) -> str:
    """A short account of how a store's runs differ from the expected ones."""
    missing = sorted(set(expected) - set(found))
    extra = sorted(set(found) - set(expected))
    changed = sorted(k for k in set(found) & set(expected) if found[k] != expected[k])
    parts = [f"{len(found)} runs found, {len(expected)} expected"]
    if missing:
        parts.append(f"missing {len(missing)}: {missing[:3]}")
    if extra:
        parts.append(f"unexpected {len(extra)}: {extra[:3]}")
    for run_id in changed[:3]:
        parts.append(f"{run_id}: found {found[run_id]}, expected {expected[run_id]}")
    return "; ".join(parts)


def assert_exact(db: Path, truth: Truth) -> dict[str, tuple]:
    """Read the store independently: every expected run exactly once, in its expected state."""
    found, dupes, counts = read_store(db)
    assert not dupes, f"runs stored twice: {dupes[:5]}"
    assert counts == {"orphan_events": 0, "duplicate_events": 0}, counts
    expected = truth.expected()
    assert found == expected, describe_difference(found, expected)
    return found


def assert_store_totals(store: Any, truth: Truth) -> None:
    """The store's own answers (summary, list, events) agree with the ground truth."""
    want = truth.totals()
    stats = store.get_summary_stats()
    assert stats["total_executions"] == want["executions"], (stats, want)
    assert stats["total_tokens"] == want["tokens"], (stats, want)
    assert stats["total_cost"] * 1024 == want["cost_units"], (stats, want)
    listed = store.get_executions(limit=10_000_000)
    assert sorted(e["id"] for e in listed) == sorted(truth.runs), "get_executions differs"
    events = store.run("execution_events").arrow().num_rows
    assert events == want["events"], (events, want)


# --- probes: where a child is, and where it dies ----------------------------------


class Probes:
    """Notes the protocol point a process reaches; SIGKILLs it at `kill_at` (the nth time)."""

    def __init__(self, phase_file: Path | None, kill_at: str | None, nth: int, widen: float):
        self.fd = os.open(phase_file, os.O_RDWR | os.O_CREAT, 0o600) if phase_file else None
        self.kill_at = kill_at
        self.nth = nth
        self.widen = widen
        self._local = threading.local()  # the recorder's writer and compaction run in threads
        self.lake_byte = False  # also note lake operations in the second byte (see lake_idle)
        self.hits: dict[str, int] = {}
        self.renames = 0
        self.rng = random.Random()

    @property
    def context(self) -> str:
        return getattr(self._local, "context", "other")

    @context.setter
    def context(self, value: str) -> None:
        self._local.context = value

    def point(self, name: str) -> None:
        if self.fd is not None:
            os.pwrite(self.fd, bytes([PHASES.index(name)]), 0)
            if self.lake_byte and name.split(":")[0] in (
                "seal",
                "compact",
                "merge",
                "retention",
                "cleanup",
            ):
                os.pwrite(self.fd, bytes([PHASES.index(name)]), 1)
        if name == self.kill_at:
            self.hits[name] = self.hits.get(name, 0) + 1
            if self.hits[name] == self.nth:
                os.kill(os.getpid(), signal.SIGKILL)
        if self.widen and name.endswith(("renamed-uncommitted", "first-renamed", "in-txn")):
            # Stretch the narrow windows so that random kills land in them often.
            time.sleep(self.rng.uniform(0, self.widen))

    def lake_idle(self) -> None:
        """Note (in the phase file's second byte) that no lake operation is under way."""
        self.lake_byte = True
        if self.fd is not None:
            os.pwrite(self.fd, bytes([PHASES.index("idle")]), 1)

    def install(self) -> None:
        """Wrap the store's protocol steps (only observing them, never changing what they do)."""
        from kagura.observability.store import compaction, tail

        probes = self

        def in_context(owner: Any, name: str, context: str) -> None:
            original = getattr(owner, name, None)
            if original is None:
                return

            def wrapped(*args: Any, **kwargs: Any) -> Any:
                outer = probes.context
                probes.context = context
                try:
                    return original(*args, **kwargs)
                finally:
                    probes.context = outer

            setattr(owner, name, wrapped)

        in_context(compaction.Compactor, "_seal", "seal")
        in_context(compaction.Compactor, "_compact_batch", "compact")
        in_context(compaction.Compactor, "_merge", "merge")
        in_context(compaction.Compactor, "_delete_before", "retention")
        in_context(compaction.Compactor, "cleanup", "cleanup")
        in_context(tail.Tail, "append_many", "append")

        run_all = compaction.run_all

        def all_in_context(tasks: Any, *args: Any, **kwargs: Any) -> Any:
            # Files written in worker threads count in the caller's context.
            context = probes.context

            def carried(task: Any) -> Any:
                def run() -> Any:
                    probes.context = context
                    return task()

                return run

            return run_all([carried(t) for t in tasks], *args, **kwargs)

        compaction.run_all = all_in_context

        write_segment = compaction.write_segment

        def segment(*args: Any, **kwargs: Any) -> Any:
            probes.renames = 0
            result = write_segment(*args, **kwargs)
            probes.point(f"{probes.context}:renamed-uncommitted")
            return result

        compaction.write_segment = segment

        rename = os.rename

        def renaming(src: Any, dst: Any, *args: Any, **kwargs: Any) -> Any:
            if str(src).endswith(".tmp") and probes.context in ("compact", "merge", "retention"):
                probes.renames += 1
                probes.point(
                    f"{probes.context}:{'tmp-written' if probes.renames == 1 else 'first-renamed'}"
                )
            return rename(src, dst, *args, **kwargs)

        os.rename = renaming

        txn = getattr(tail, "_WriteTxn", None)
        if txn is not None:
            leave = txn.__exit__

            def exit_(self: Any, exc_type: Any, exc: Any, tb: Any) -> Any:
                if exc_type is None:
                    probes.point(f"{probes.context}:in-txn")
                result = leave(self, exc_type, exc, tb)
                if exc_type is None:
                    probes.point(f"{probes.context}:committed")
                return result

            txn.__exit__ = exit_


def read_phase(phase_file: Path, byte: int = 0) -> str:
    """The last protocol point the child noted (byte 1: the last point of a lake operation)."""
    try:
        data = phase_file.read_bytes()
    except FileNotFoundError:
        return "idle"
    return PHASES[data[byte]] if len(data) > byte else "idle"


# --- child roles -----------------------------------------------------------------


def role_writer(args: argparse.Namespace, probes: Probes) -> None:
    """Record batches of runs (some first as running, completed later) and log each one."""
    from kagura.observability import EventStore

    rng = random.Random(args.seed)
    store = EventStore(args.db, auto_compact=not args.no_auto_compact)
    log = TruthLog(args.log)
    now = time.time()
    start, end = now - args.days * 86400, now - 60
    open_runs: list[Run] = []
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    batch = 0
    while time.monotonic() < deadline and (args.batches == 0 or batch < args.batches):
        batch += 1
        runs = []
        while open_runs and rng.random() < 0.5:
            runs.append(finish(rng, open_runs.pop(rng.randrange(len(open_runs)))))
        for _ in range(rng.randint(1, args.max_batch)):
            run = new_run(rng, start, end, "running" if rng.random() < 0.2 else None)
            if run.status == "running":
                open_runs.append(run)
            runs.append(run)
        probes.point("log:pending")
        log.pending(batch, runs)
        pairs = [run.rows() for run in runs]
        if len(pairs) == 1 and rng.random() < 0.5:
            store.append(*pairs[0])
        else:
            store.append_many(pairs)
        log.committed(batch)
        probes.point("log:committed")
        if args.compact_every and batch % args.compact_every == 0:
            store.compact()
        if args.pause:
            time.sleep(args.pause)
    store.close()
    print(f"done {batch}", flush=True)


def role_compactor(args: argparse.Namespace, probes: Probes) -> None:
    """Compact in a loop for a while; print how much was moved and merged."""
    from kagura.observability import EventStore

    store = EventStore(args.db, auto_compact=False)
    print("ready", flush=True)
    deadline = time.monotonic() + args.seconds
    moved = merged = rounds = 0
    while time.monotonic() < deadline:
        report = store.compact()
        moved += report.get("executions", 0)
        merged += report.get("merged", 0)
        rounds += 1
        time.sleep(args.pause)
    store.close()
    print(json.dumps({"rounds": rounds, "moved": moved, "merged": merged}), flush=True)


def role_op(args: argparse.Namespace, probes: Probes) -> None:
    """Run one store operation: compact, prune (--cutoff) or append (--seed runs)."""
    from kagura.observability import EventStore

    if args.arrow_reader:  # read the tail through the ADBC reader processes, however small
        from kagura.observability.store import compaction

        compaction.ARROW_READER_FROM = 0
    store = EventStore(args.db, auto_compact=False)
    if args.op == "compact":
        result: Any = store.compact()
    elif args.op == "prune":
        result = store.delete_old_executions(args.cutoff)
    elif args.op == "append":
        rng = random.Random(args.seed)
        now = time.time()
        runs = [new_run(rng, now - 86400, now - 60) for _ in range(args.max_batch)]
        log = TruthLog(args.log)
        log.pending(1, runs)
        store.append_many([r.rows() for r in runs])
        log.committed(1)
        result = len(runs)
    else:
        raise SystemExit(f"unknown op {args.op}")
    store.close()
    print(json.dumps({"result": result}), flush=True)


# --- recording through @agent and TelemetryCollector, killed at random ----------------

AGENT_NAMES = {"echo": 1, "recorder": 3, "recorder-sync": 0}  # agent name -> events per run


def record_loop(cfg: dict[str, Any]) -> None:
    """Record runs in a tight loop until killed; log each key to the side file after its call returned.

    Workers on an event loop in a thread alternate between an `@agent` (litellm
    mock_response, one llm_call event) and `TelemetryCollector.track_execution`
    (3 events); the main thread records sync runs; another thread compacts (and
    merges) every few milliseconds.
    """
    import asyncio

    from kagura import agent, config
    from kagura.observability import EventStore, TelemetryCollector, set_global_telemetry

    probes = Probes(Path(cfg["phase"]), None, 1, cfg["widen"])
    probes.install()
    config.set_durability(cfg["durability"])
    store = EventStore(cfg["db"], auto_compact=False)
    collector = TelemetryCollector(store)
    set_global_telemetry(collector)
    side = os.open(cfg["side"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    returned = [0]
    kill_after = cfg["kill_after_return"]

    def note(key: str) -> None:
        os.write(side, f"{key}\n".encode())
        returned[0] += 1
        if returned[0] == kill_after:
            probes.point("log:committed")
            os.kill(os.getpid(), signal.SIGKILL)  # right after a call returned

    @agent(model="gpt-4o-mini", mock_response="ok")
    async def echo(key: str) -> str:
        """{{ key }}"""

    async def worker(w: int) -> None:
        for i in itertools.count():
            key = f"{cfg['cycle']}-{w}-{i}"
            if w % 2 == 0:
                await echo(key)
            else:
                async with collector.track_execution("recorder", key=key):
                    collector.record_llm_call("gpt-4o-mini", 10, 5, 0.01, cost=5 / 1024)
                    collector.record_tool_call("search", 0.001)
                    collector.record_memory_operation("load", 0.0001)
            note(key)

    def sync_worker() -> None:
        for i in itertools.count():
            key = f"{cfg['cycle']}-s-{i}"
            with collector.recording("recorder-sync", {"key": key}):
                pass
            note(key)

    def compactor() -> None:
        while True:
            store.compact()
            probes.lake_idle()
            time.sleep(cfg["compact_pause"])

    probes.lake_idle()

    async def main() -> None:
        await asyncio.gather(*(worker(w) for w in range(cfg["workers"])))

    # Ready before any thread records: a recorder may kill itself after its first return.
    os.write(1, f"ready {os.getpid()}\n".encode())
    # The event loop runs in a thread, and the sync runs on the main thread, where a
    # sync caller commits its own run when the writer is idle.
    threading.Thread(target=asyncio.run, args=(main(),), daemon=True).start()
    if cfg["compact_pause"] > 0:
        threading.Thread(target=compactor, daemon=True).start()
    sync_worker()


def role_zygote(args: argparse.Namespace, probes: Probes) -> None:
    """Import litellm and kagura once, then fork one recorder per command line read on stdin.

    Prints `pid N` after each fork and `exit N CODE` once that child is gone (the test
    SIGKILLs it): forking skips the seconds an import of litellm costs per child.
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # noqa: F401

    import kagura.agent  # noqa: F401
    import kagura.observability.eventstore  # noqa: F401

    print("ready", flush=True)
    for line in sys.stdin:
        cfg = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                record_loop(cfg)
            except BaseException:
                import traceback

                traceback.print_exc()
            finally:
                os._exit(1)
        # One write per line: the child writes to the same pipe (print() writes the
        # newline apart, and the child's line could land in between).
        os.write(1, f"pid {pid}\n".encode())
        _, status = os.waitpid(pid, 0)
        os.write(1, f"exit {pid} {os.waitstatus_to_exitcode(status)}\n".encode())


def read_keyed(db: Path) -> list[tuple[str, str, str, str, int]]:
    """(key, id, agent, status, events) of every run of the recorders, read without the store.

    The tail and the manifest are read in one SQLite transaction; only listed Parquet
    files are read. A run appears once per place it is stored (duplicates show).
    """
    import pyarrow.parquet as pq

    con = sqlite3.connect(db, isolation_level=None, timeout=30)
    try:
        con.execute("BEGIN")
        rows = con.execute("SELECT id, agent_name, status, kwargs FROM executions").fetchall()
        events = [r[0] for r in con.execute("SELECT execution_id FROM events")]
        listed = con.execute("SELECT executions_path, events_path FROM segments").fetchall()
        con.execute("COMMIT")
    finally:
        con.close()
    lake = lake_of(db)
    for exec_path, event_path in listed:
        table = pq.read_table(lake / exec_path, columns=["id", "agent_name", "status", "kwargs"])
        rows.extend(zip(*(table.column(i).to_pylist() for i in range(4)), strict=True))
        events.extend(
            pq.read_table(lake / event_path, columns=["execution_id"]).column(0).to_pylist()
        )
    per_run: dict[str, int] = {}
    for execution_id in events:
        per_run[execution_id] = per_run.get(execution_id, 0) + 1
    return [
        (json.loads(kwargs)["key"], run_id, agent_name, status, per_run.get(run_id, 0))
        for run_id, agent_name, status, kwargs in rows
        if agent_name in AGENT_NAMES
    ]


def read_side(path: Path) -> list[str]:
    """The keys a recorder logged after their calls returned (a line cut by the kill is left out)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    return data[: data.rfind(b"\n") + 1].decode().split()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("role", choices=("writer", "compactor", "op", "zygote"))
    parser.add_argument("--db", type=Path)
    parser.add_argument("--log", type=Path)
    parser.add_argument("--phase", type=Path)
    parser.add_argument("--kill-at")
    parser.add_argument("--nth", type=int, default=1)
    parser.add_argument("--widen", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=3600.0)
    parser.add_argument("--batches", type=int, default=0)
    parser.add_argument("--max-batch", type=int, default=5)
    parser.add_argument("--days", type=float, default=3.0)
    parser.add_argument("--compact-every", type=int, default=0)
    parser.add_argument("--pause", type=float, default=0.0)
    parser.add_argument("--no-auto-compact", action="store_true")
    parser.add_argument("--op", default="compact")
    parser.add_argument("--cutoff", type=float, default=0.0)
    parser.add_argument("--arrow-reader", action="store_true")
    args = parser.parse_args(argv)
    probes = Probes(args.phase, args.kill_at, args.nth, args.widen)
    if args.role != "zygote":
        probes.install()
    roles = {
        "writer": role_writer,
        "compactor": role_compactor,
        "op": role_op,
        "zygote": role_zygote,
    }
    roles[args.role](args, probes)


def command(role: str, *options: Any) -> list[str]:
    """The argv that starts this script as a child in `role`."""
    return [sys.executable, str(HERE), role, *map(str, options)]


if __name__ == "__main__":
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    main()
