"""A read-only home and a full disk: clear errors, the agent goes on, nothing committed is lost.

Writes that cannot happen fail with an error naming the file; runs that were
committed before stay; once space or permission returns, writing and
compaction resume. Full disk is simulated with RLIMIT_FSIZE in a child process,
and, where mount namespaces are allowed, with a real 1 MB tmpfs (ENOSPC).
Root ignores file modes, so as root the children run without CAP_DAC_OVERRIDE.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kagura.observability import EventStore

from . import harness
from .test_damaged import build

HERE = Path(__file__).resolve().parent
CAPS = (1, 2, 3)  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER


def _drop_caps() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in CAPS:
        if libc.prctl(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone after exec
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def unprivileged(argv: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    """Run argv so that file permissions apply to it, even when the tests run as root."""
    full_env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True")
    full_env.update(env or {})
    return subprocess.run(
        argv,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=120,
        preexec_fn=_drop_caps if os.geteuid() == 0 else None,
    )


# An agent's run, recorded through the collector; prints what happened as JSON.
AGENT = """
import json, logging, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
from kagura.observability import EventStore, TelemetryCollector
out = {}
try:
    store = EventStore(sys.argv[1])
    out["open"] = "ok"
    out["runs"] = store.get_summary_stats()["total_executions"]
    store.close()
except Exception as exc:
    out["open"] = f"{type(exc).__name__}: {exc}"
collector = TelemetryCollector()
with collector.recording("translator", {"text": "hi"}) as run:
    collector.record_llm_call("gpt-4o-mini", 10, 5, 0.1, cost=0.001)
    value = "bonjour"
out["agent"] = value
print(json.dumps(out))
"""


def make_read_only(home: Path) -> None:
    for path in [home, *home.rglob("*")]:
        path.chmod(0o500 if path.is_dir() else 0o400)


def make_writable(home: Path) -> None:
    for path in [home, *home.rglob("*")]:
        path.chmod(0o700 if path.is_dir() else 0o600)


@pytest.fixture
def read_only_home(db, kagura_home):
    """A store in a home whose folders and files are read-only; writable again afterwards."""
    truth = build(db)
    make_read_only(kagura_home)
    yield truth
    make_writable(kagura_home)
    harness.assert_exact(db, truth)
    # Permission is back: writing resumes.
    import random

    run = harness.new_run(random.Random(4), time.time() - 3600, time.time() - 60)
    store = EventStore(db, auto_compact=False)
    store.append(*run.rows())
    store.close()
    truth.apply([run])
    harness.assert_exact(db, truth)


def test_a_read_only_home_is_read_and_the_agent_goes_on(db, read_only_home):
    result = unprivileged([sys.executable, "-c", AGENT, str(db)])
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["agent"] == "bonjour"
    assert out["open"] == "ok" and out["runs"] > 0, out  # opened read-only, and read
    assert "Traceback" not in result.stderr
    assert len([line for line in result.stderr.splitlines() if "WARNING" in line]) <= 1
    stats = unprivileged(
        [sys.executable, "-m", "kagura.cli", "monitor", "stats", "--json", "--db", str(db)]
    )
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["total_executions"] == out["runs"]
    (line,) = stats.stderr.strip().splitlines()  # said once
    assert str(db) in line and "read-only" in line


def test_a_read_only_store_is_not_called_damaged(db, read_only_home):
    result = unprivileged([sys.executable, "-c", AGENT, str(db)])
    out = json.loads(result.stdout)
    assert out["open"] == "ok", out["open"]
    compact = unprivileged(
        [sys.executable, "-m", "kagura.cli", "monitor", "compact", "--db", str(db)]
    )
    line = compact.stderr.strip().splitlines()[-1]  # after the one note that it is read-only
    assert compact.returncode == 1 and line.startswith("Error:") and "read-only" in line
    assert "not a" not in line and "move it away" not in line


def test_a_home_that_cannot_be_created_does_not_stop_the_agent(tmp_path):
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o500)
    home = parent / "kagura-home"
    try:
        result = unprivileged(
            [sys.executable, "-c", AGENT, str(home / "telemetry.db")],
            env={"KAGURA_HOME": str(home)},
        )
    finally:
        parent.chmod(0o700)
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["agent"] == "bonjour"
    assert str(home) in out["open"], out["open"]
    assert not home.exists()


# --- full disk: RLIMIT_FSIZE -------------------------------------------------------------

FILL = """
import json, random, resource, signal, sys, time
sys.path.insert(0, sys.argv[3])
import harness
from kagura.observability import EventStore, TelemetryCollector
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write with EFBIG instead of dying
db, limit = sys.argv[1], int(sys.argv[2])
store = EventStore(db, auto_compact=False)
rng, now = random.Random(5), time.time()
committed, out = [], {}

def fill(n=5):
    for _ in range(100000):
        runs = [harness.new_run(rng, now - 86400, now - 60, "completed") for _ in range(n)]
        try:
            store.append_many([r.rows() for r in runs])
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        committed.extend(runs)

resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
out["append_error"] = fill()
collector = TelemetryCollector(store)
with collector.recording("translator", {"text": "hi"}) as run:
    value = "bonjour"
out["agent"], out["agent_id"] = value, run.id
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
for _ in range(400):  # space is back: enough for Parquet files bigger than the next limit
    runs = [harness.new_run(rng, now - 86400, now - 60, "completed") for _ in range(5)]
    store.append_many([r.rows() for r in runs])
    committed.extend(runs)
resource.setrlimit(resource.RLIMIT_FSIZE, (20000, resource.RLIM_INFINITY))
try:
    out["compact_full"] = store.compact()
except Exception as exc:
    out["compact_full"] = f"{type(exc).__name__}: {exc}"
resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
out["compact_after"] = store.compact()
store.close()
out["committed"] = [r.to_list() for r in committed]
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store filled by a child until its files could grow no more (RLIMIT_FSIZE 256 kB)."""
    home = tmp_path_factory.mktemp("full")
    db = home / "telemetry.db"
    result = subprocess.run(
        [sys.executable, "-c", FILL, str(db), str(256 * 1024), str(HERE)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ, KAGURA_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True"),
    )
    assert result.returncode == 0, result.stderr
    return db, json.loads(result.stdout), result.stderr


def test_a_full_disk_loses_no_committed_run(filled):
    db, out, stderr = filled
    assert out["append_error"], "the limit was never reached"
    assert out["agent"] == "bonjour"
    assert "Traceback" not in stderr
    assert isinstance(out["compact_full"], str), "compaction under the limit should have failed"
    assert out["compact_after"]["executions"] > 0
    truth = harness.Truth()
    truth.apply([harness.Run.from_list(r) for r in out["committed"]])
    found, dupes, counts = harness.read_store(db)
    found.pop(out["agent_id"], None)  # the agent's run may or may not have fit
    assert not dupes and counts == {"orphan_events": 0, "duplicate_events": 0}
    assert found == truth.expected(), harness.describe_difference(found, truth.expected())
    store = EventStore(db, auto_compact=False)
    assert store._wal.con().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    store.close()
    listed, retired = harness.listed_files(db)
    assert harness.lake_files(db) - listed - retired == set(), "a half-written file was left"


def test_a_full_disk_error_names_the_database(filled):
    db, out, _ = filled
    assert str(db) in out["append_error"], out["append_error"]


def test_a_full_disk_during_compaction_names_the_file(filled):
    db, out, _ = filled
    assert str(harness.lake_of(db)) in out["compact_full"], out["compact_full"]


# --- full disk: a real 1 MB filesystem -----------------------------------------------------

TMPFS = """
import json, os, random, sys, time
sys.path.insert(0, sys.argv[2])
import harness
from pathlib import Path
from kagura.observability import EventStore
home = Path(sys.argv[1]); db = home / "telemetry.db"
filler = home / "filler"
filler.write_bytes(b"x" * 200_000)  # to free later
store = EventStore(db, auto_compact=False)
rng, now, committed, out = random.Random(9), time.time(), [], {}
def fill():
    for _ in range(100000):
        runs = [harness.new_run(rng, now - 86400, now - 60, "completed") for _ in range(5)]
        try:
            store.append_many([r.rows() for r in runs])
        except Exception as exc:
            return f"{type(exc).__name__}: {exc}"
        committed.extend(runs)
out["append_error"] = fill()
try:
    out["compact_full"] = store.compact()
except Exception as exc:
    out["compact_full"] = f"{type(exc).__name__}: {exc}"
filler.unlink()
out["resumed_error"] = None
for _ in range(3):
    runs = [harness.new_run(rng, now - 86400, now - 60, "completed") for _ in range(5)]
    store.append_many([r.rows() for r in runs])
    committed.extend(runs)
store.close()
found, dupes, counts = harness.read_store(db)
truth = harness.Truth(); truth.apply(committed)
out["exact"] = found == truth.expected()
out["difference"] = harness.describe_difference(found, truth.expected())
out["dupes"], out["counts"], out["committed"] = len(dupes), counts, len(committed)
print(json.dumps(out))
"""


def test_a_real_full_filesystem_loses_no_committed_run(tmp_path):
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a private tmpfs")
    home = tmp_path / "tiny"
    home.mkdir()
    script = tmp_path / "fill.py"
    script.write_text(TMPFS)
    result = subprocess.run(
        [
            "unshare", "-m", "sh", "-c",
            f'mount -t tmpfs -o size=1m,mode=0700 tmpfs "{home}" && exec "{sys.executable}" "{script}" "{home}" "{HERE}"',
        ],
        capture_output=True, text=True, timeout=300,
        env=dict(os.environ, KAGURA_HOME=str(home), LITELLM_LOCAL_MODEL_COST_MAP="True"),
    )  # fmt: skip
    if (
        result.returncode != 0
        and "mount" in result.stderr
        and "permission" in result.stderr.lower()
    ):
        pytest.skip("mount is not allowed here")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["append_error"], "the filesystem never filled"
    assert out["exact"], out["difference"]
    assert out["dupes"] == 0 and out["committed"] > 0
