"""Permissions and secrets: the home is 0700, its files 0600; secrets never reach a file.

Telemetry holds prompts and arguments, so nothing the store writes may be
readable by other users, whatever the umask. Secrets given to an agent (named
like one, or shaped like a provider key) are redacted before they are written:
checked on the raw bytes of the SQLite files and of the Parquet files after
compaction, and on the values those files decode to.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from kagura.observability import EventStore, TelemetryCollector

from . import harness

# Written by the child below with umask 0: the worst case.
MODES = """
import json, os, sys, time
os.umask(0)
from pathlib import Path
from kagura.observability import EventStore
from kagura.observability.store.rows import event_row, execution_row, new_execution_id
home = Path(sys.argv[1])
store = EventStore(home / "telemetry.db", auto_compact=False)
t = time.time() - 7200
for i in range(3):
    run_id = new_execution_id(at=t + i)
    store.append(execution_row(id=run_id, agent_name="a", started_at=t + i, status="completed"),
                 [event_row(run_id, 0, "llm_call", t + i, name="m", cost=0.01)])
store.compact()
store.append(execution_row(id=new_execution_id(), agent_name="a", started_at=time.time(), status="running"))
modes = {str(p.relative_to(home.parent)): oct(os.stat(p).st_mode & 0o777) for p in [home, *home.rglob("*")]}
store.close()
print(json.dumps(modes))
"""


@pytest.fixture(scope="module")
def modes(tmp_path_factory):
    """The mode of every path under a home that a store created with umask 0 (taken while open)."""
    root = tmp_path_factory.mktemp("modes")
    result = subprocess.run(
        [sys.executable, "-c", MODES, str(root / "home")],
        capture_output=True,
        text=True,
        timeout=120,
        env=dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True"),
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_home_and_every_file_are_owner_only_even_with_umask_0(modes):
    assert modes["home"] == "0o700"
    assert modes["home/telemetry"] == "0o700"
    files = {path: mode for path, mode in modes.items() if not path.endswith(("home", "telemetry"))}
    for name in ("telemetry.db", "telemetry.db-wal", "telemetry.db-shm"):
        assert modes[f"home/{name}"] == "0o600", name
    parquet = {p: m for p, m in files.items() if p.endswith(".parquet")}
    assert len(parquet) == 3, parquet  # executions, events, rollup
    assert set(parquet.values()) == {"0o600"}, parquet
    assert modes["home/telemetry/.lock"] == "0o600"


def test_every_folder_is_owner_only_even_with_umask_0(modes):
    loose = {p: m for p, m in modes.items() if m not in ("0o600", "0o700")}
    assert not loose, loose


# --- secrets ----------------------------------------------------------------------------

OPENAI = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0"
GITHUB = "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789"
AWS = "AKIA" + "IOSFODNN7EXAMPLE"
PASSWORD = "correct-horse-battery-staple-42"
SECRETS = (OPENAI, GITHUB, AWS, PASSWORD)


def record_secrets(store: EventStore) -> str:
    """One agent run whose arguments, tags, events, metrics and error all carry secrets."""
    collector = TelemetryCollector(store)
    with pytest.raises(RuntimeError):
        with collector.recording(
            "leaky",
            {"api_key": OPENAI, "prompt": f"use {GITHUB} then {AWS}", "password": PASSWORD},
            tags={"token": PASSWORD, "note": f"key {OPENAI}"},
        ) as run:
            collector.record_llm_call(
                "gpt-4o-mini", 10, 5, 0.1, cost=0.001, headers={"Authorization": f"Bearer {OPENAI}"}
            )
            collector.record_tool_call(
                "fetch", 0.05, url=f"https://x.test/?key={AWS}", secret=PASSWORD
            )
            collector.record_event("custom", detail=f"token {GITHUB}")
            collector.record_metric("client_secret", PASSWORD)
            raise RuntimeError(f"auth failed for {OPENAI}")
    assert collector.flush(), "the recorder did not write the run in time"
    return run.id


def assert_no_secret_in(path: Path) -> None:
    data = path.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data, f"{secret[:8]}... in the raw bytes of {path}"


def test_secrets_never_reach_the_sqlite_files_or_the_parquet_files(db):
    store = EventStore(db, auto_compact=False)
    run_id = record_secrets(store)
    stored = store.get_execution(run_id)
    assert stored is not None and stored["status"] == "failed"
    assert len(stored["events"]) == 3
    text = json.dumps(stored, ensure_ascii=False)
    assert "[REDACTED]" in text  # the values were recorded, only the secrets went
    for secret in SECRETS:
        assert secret not in text, secret[:8]
    store.close()  # (reading the database's bytes while it is open would drop its locks)
    for path in db.parent.glob("telemetry.db*"):
        assert_no_secret_in(path)

    store = EventStore(db, auto_compact=False)
    assert store.compact()["executions"] == 1
    store.close()
    parquet = sorted(harness.lake_of(db).rglob("*.parquet"))
    assert len(parquet) == 3  # executions, events, rollup
    for path in parquet:
        assert_no_secret_in(path)  # footers hold min/max statistics uncompressed
        values = json.dumps(pq.read_table(path).to_pylist(), ensure_ascii=False)
        for secret in SECRETS:
            assert secret not in values, f"{secret[:8]}... decoded from {path}"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    for path in db.parent.glob("telemetry.db*"):
        assert_no_secret_in(path)
