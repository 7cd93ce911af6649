"""A shared lake on S3 (moto's server on 127.0.0.1): concurrent hosts, a reader meanwhile, failures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_process import run_cli
from s3_server import S3_ENV, free_port
from store_rows import run

from kagura.observability import EventStore
from kagura.observability.errors import StoreError

pytestmark = pytest.mark.s3

HOST_SCRIPT = Path(__file__).with_name("fleet_host.py")
HOSTS = ("h1", "h2", "h3")
BATCHES = 6
SIZE = 150


@pytest.mark.slow
def test_three_hosts_compact_concurrently_and_a_reader_never_sees_half(tmp_path, bucket, s3_env):
    url = f"s3://{bucket}/fleet"
    procs = {}
    for host in HOSTS:
        env = dict(
            os.environ,
            **S3_ENV,
            AWS_ENDPOINT_URL=s3_env,
            KAGURA_HOME=str(tmp_path / host),
            KAGURA_HOST_ID=host,
            PYTHONPATH=os.pathsep.join(sys.path),
        )
        record = tmp_path / f"{host}.jsonl"
        procs[host] = subprocess.Popen(
            [sys.executable, str(HOST_SCRIPT), url, host, str(BATCHES), str(SIZE), str(record)],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
    reader = EventStore(":memory:", lake=url)
    seen: dict[str, list[int]] = {h: [] for h in HOSTS}
    polls = 0
    deadline = time.monotonic() + 240
    while any(p.poll() is None for p in procs.values()) and time.monotonic() < deadline:
        reader.shared.forget()  # look at the lake again on every poll
        rows = reader.sql(
            "SELECT host, count(*) AS runs, count(DISTINCT id) AS ids FROM executions GROUP BY host"
        ).rows()
        polls += 1
        for row in rows:
            # Each compaction moves a whole batch of SIZE runs: anything else is half of one.
            assert row["runs"] % SIZE == 0, row
            assert row["ids"] == row["runs"], row  # never one run twice
            seen[row["host"]].append(row["runs"])
        # The planner's answer from the hosts' rollups: whole compactions only, too.
        assert reader.get_summary_stats()["total_executions"] % SIZE == 0
    for host, proc in procs.items():
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, f"{host}: {err}"
    assert polls >= 3
    for counts in seen.values():
        assert counts == sorted(counts)  # a host's runs never go back

    # Each host's own record of what it moved, summed independently of the store.
    records = [json.loads((tmp_path / f"{h}.jsonl").read_text().splitlines()[-1]) for h in HOSTS]
    assert [r["runs"] for r in records] == [BATCHES * SIZE] * 3
    reader.shared.forget()
    stats = reader.get_summary_stats()
    assert stats["total_executions"] == sum(r["runs"] for r in records)
    assert stats["total_cost"] == pytest.approx(sum(r["micros"] for r in records) / 1e6)
    assert stats["llm_calls"] == sum(r["events"] for r in records)
    by_host = EventStore(":memory:", lake=url, hosts="h2").get_summary_stats()
    assert by_host["total_executions"] == records[1]["runs"]
    # Merges ran (6 compactions, each of two dates) and kept every run once.
    assert len(reader.shared.newest("h1").segments) < 2 * BATCHES
    newest = reader.get_executions(limit=5)
    assert len(newest) == 5 and newest[0]["started_at"] >= newest[-1]["started_at"]
    reader.close()


def test_the_cli_reads_the_s3_lake(tmp_path, bucket, s3_env, monkeypatch):
    url = f"s3://{bucket}/p"
    monkeypatch.setenv("KAGURA_HOST_ID", "solo")
    store = EventStore(tmp_path / "h" / "telemetry.db", lake=url, auto_compact=False)
    store.append_many([run("alpha", 1_767_225_600.0 + i, costs=(0.2,)) for i in range(7)])
    assert store.compact()["executions"] == 7
    store.close()
    env = {**S3_ENV, "AWS_ENDPOINT_URL": s3_env, "KAGURA_HOME": str(tmp_path / "analyst")}
    out = run_cli("monitor", "--lake", url, "stats", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_executions"] == 7
    out = run_cli("monitor", "--lake", url, "sql", "cost_by_agent", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)[0]["calls"] == 7


def test_an_unreachable_endpoint_is_one_line_and_keeps_the_tail(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("KAGURA_HOME", str(home))
    store = EventStore(auto_compact=False)
    store.append_many([run("alpha", 1_767_225_600.0 + i) for i in range(4)])
    store.close()
    dead = f"http://127.0.0.1:{free_port()}"
    env = {**S3_ENV, "AWS_ENDPOINT_URL": dead, "KAGURA_HOME": str(home)}
    out = run_cli("monitor", "--lake", "s3://fleet-bucket/p", "compact", env=env)
    assert out.returncode == 1
    assert out.stderr.count("\n") == 1 and out.stderr.startswith("Error: "), out.stderr
    assert "Traceback" not in out.stderr
    # Nothing left the tail.
    again = EventStore()
    assert again.tail_size()["settled"] == 4
    assert again.get_summary_stats()["total_executions"] == 4
    again.close()
    out = run_cli("monitor", "--lake", "s3://fleet-bucket/p", "stats", env=env)
    assert out.returncode == 1 and out.stderr.count("\n") == 1


def test_a_missing_bucket_is_an_error_not_a_loss(tmp_path, s3_env, monkeypatch):
    monkeypatch.setenv("KAGURA_HOST_ID", "h")
    store = EventStore(tmp_path / "t.db", lake="s3://no-such-bucket-here/p", auto_compact=False)
    store.append_many([run("alpha", 1_767_225_600.0 + i) for i in range(3)])
    with pytest.raises(StoreError) as caught:
        store.compact()
    assert "\n" not in str(caught.value)
    assert store.tail_size()["settled"] == 3
    store.close()


def test_fleet_answers_from_rollups_on_s3_equal_a_scan(tmp_path, bucket, s3_env, monkeypatch):
    from test_shared_folder import END, T0, same, sample_prices

    from kagura.synthetic import fixtures

    url = f"s3://{bucket}/r"
    for seed, host in enumerate(("s1", "s2")):
        monkeypatch.setenv("KAGURA_HOST_ID", host)
        store = EventStore(tmp_path / host / "telemetry.db", lake=url, auto_compact=False)
        fixtures.fill(store, 300, seed=seed, days=2, end=END, prices=sample_prices())
        store.compact()
        # Every listed segment has its rollup, in the lake beside it.
        assert all(
            s.rollup_path and s.rollup_path.startswith(f"host={host}/rollups/")
            for s in store.segments()
        )
        store.close()
    reader = EventStore(":memory:", lake=url)
    assert reader._planned("summary_stats").name == "sql/rollups/summary_stats.sql"
    for since, until in ((None, None), (T0 + 86400.0 + 999.0, END - 77.0)):
        for hosts in (None, "s1"):
            fleet = EventStore(":memory:", lake=url, hosts=hosts)
            label = f"{since} {until} {hosts}"
            got = fleet.get_summary_stats(since=since, until=until)
            same(got, fleet.get_summary_stats(since=since, until=until, exact=True), label)
            got_rows = fleet.cost_by_agent(since=since, until=until).to_dicts()
            want_rows = fleet.cost_by_agent(since=since, until=until, exact=True).to_dicts()
            assert len(got_rows) == len(want_rows)
            for g, w in zip(got_rows, want_rows, strict=True):
                same(g, w, label)
            fleet.close()
    assert reader.get_summary_stats()["total_executions"] == 600
    reader.close()
