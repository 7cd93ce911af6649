"""A shared lake in a folder: hosts compact into host=<id>/, readers see every host."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from cli_process import run_cli
from store_rows import run

from kagura.observability import EventStore
from kagura.observability.errors import StoreError
from kagura.observability.store.compaction import Compactor

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z


def host_store(tmp_path: Path, lake: Path, host: str, monkeypatch) -> EventStore:
    monkeypatch.setenv("KAGURA_HOST_ID", host)
    return EventStore(tmp_path / host / "telemetry.db", lake=str(lake), auto_compact=False)


def write(store: EventStore, agent: str, n: int, cost: float, start: float) -> None:
    store.append_many([run(agent, start + i, costs=(cost,)) for i in range(n)])


def test_hosts_compact_into_their_prefix_and_a_reader_sees_all(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    a = host_store(tmp_path, lake, "host-a", monkeypatch)
    write(a, "alpha", 4, 0.25, T0)
    assert a.compact()["executions"] == 4
    b = host_store(tmp_path, lake, "host-b", monkeypatch)
    write(b, "beta", 3, 0.5, T0 + 100)
    assert b.compact()["executions"] == 3
    write(b, "beta", 2, 0.5, T0 + 200)  # stays in b's tail

    # Files and manifests under each host's prefix, nothing else at the top.
    assert sorted(p.name for p in lake.iterdir()) == ["host=host-a", "host=host-b"]
    files = sorted(p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet"))
    assert len(files) == 6  # executions, events and rollup of each host's segment
    assert all(f.startswith(("host=host-a/", "host=host-b/")) for f in files)
    assert any("/executions/date=2026-01-01/" in f for f in files)
    manifest = json.loads(sorted((lake / "host=host-a" / "_manifest").iterdir())[-1].read_text())
    assert manifest["host"] == "host-a" and len(manifest["segments"]) == 1
    # The lake files are plain Parquet: 4 runs of host a, 3 of b.
    counts = sorted(pq.read_metadata(lake / f).num_rows for f in files if "/executions/" in f)
    assert counts == [3, 4]
    assert (os.stat(lake / files[0]).st_mode & 0o777) == 0o600

    # A fleet reader: every host's lake runs (b's tail lives on b only).
    reader = EventStore(":memory:", lake=str(lake))
    stats = reader.get_summary_stats()
    assert stats["total_executions"] == 7
    assert stats["total_cost"] == pytest.approx(4 * 0.25 + 3 * 0.5)
    # Host b reads the fleet plus its own tail.
    assert b.get_summary_stats()["total_executions"] == 9
    # --host as a filter.
    only_a = EventStore(":memory:", lake=str(lake), hosts="host-a")
    assert only_a.get_summary_stats()["total_executions"] == 4
    assert [r["agent_name"] for r in only_a.get_executions(limit=10)] == ["alpha"] * 4
    newest = reader.get_executions(limit=2)
    assert [r["started_at"] for r in newest] == [T0 + 102, T0 + 101]
    for store in (a, b, reader, only_a):
        store.close()


def test_a_crash_between_manifest_and_commit_never_counts_twice(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    host = host_store(tmp_path, lake, "h1", monkeypatch)
    write(host, "alpha", 5, 0.1, T0)
    real = Compactor._publish

    def publish_then_die(self, con):
        real(self, con)
        raise RuntimeError("power cut after the manifest was written")

    monkeypatch.setattr(Compactor, "_publish", publish_then_die)
    with pytest.raises(RuntimeError):
        host.compact()
    monkeypatch.setattr(Compactor, "_publish", real)
    # The tail kept its rows; the host counts each run once.
    assert host.tail_size()["settled"] == 5
    assert host.get_summary_stats()["total_executions"] == 5
    reader = EventStore(":memory:", lake=str(lake))
    assert reader.get_summary_stats()["total_executions"] == 5  # the manifest ran ahead
    # The next compaction takes the manifest back, then moves the rows once.
    assert host.compact()["executions"] == 5
    reader.shared.forget()
    assert reader.get_summary_stats()["total_executions"] == 5
    assert host.get_summary_stats()["total_executions"] == 5
    assert host.tail_size()["settled"] == 0
    host.close()
    reader.close()


def test_two_stores_may_not_share_a_host_id(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    first = host_store(tmp_path, lake, "same", monkeypatch)
    write(first, "alpha", 2, 0.1, T0)
    first.compact()
    monkeypatch.setenv("KAGURA_HOST_ID", "same")
    other = EventStore(tmp_path / "other" / "telemetry.db", lake=str(lake), auto_compact=False)
    write(other, "beta", 2, 0.1, T0)
    with pytest.raises(StoreError, match="KAGURA_HOST_ID"):
        other.compact()
    assert other.tail_size()["settled"] == 2
    first.close()
    other.close()


@pytest.mark.parametrize(
    "url",
    ["s3://Bad_Bucket/x", "ftp://host/lake", "s3://bucket/a/../b", "s3://key:secret@bucket/p"],
)
def test_bad_lake_urls_are_refused(url):
    with pytest.raises(StoreError, match="bad lake URL"):
        EventStore(":memory:", lake=url)


def test_bad_host_id_is_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("KAGURA_HOST_ID", "a/b")
    with pytest.raises(StoreError, match="bad host id"):
        EventStore(tmp_path / "t.db", lake=str(tmp_path / "lake"))


def test_cli_reads_the_fleet_and_filters_hosts(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    for host, n in (("h1", 3), ("h2", 2)):
        store = host_store(tmp_path, lake, host, monkeypatch)
        write(store, f"agent_{host}", n, 0.5, T0)
        store.compact()
        store.close()
    env = {"KAGURA_HOME": str(tmp_path / "analyst")}
    out = run_cli("monitor", "--lake", str(lake), "stats", "--json", env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["total_executions"] == 5
    out = run_cli("monitor", "--lake", str(lake), "--host", "h2", "stats", "--json", env=env)
    assert json.loads(out.stdout)["total_executions"] == 2
    out = run_cli("monitor", "stats", "--json", env={**env, "KAGURA_LAKE": str(lake)})
    assert json.loads(out.stdout)["total_executions"] == 5
    for bad in (["--lake", "gopher://x"], ["--lake", str(lake), "--host", "no/pe"]):
        out = run_cli("monitor", *bad, "stats", env=env)
        assert out.returncode == 2
        assert out.stderr.count("\n") == 1 and out.stderr.startswith("Error: ")


def test_doctor_repair_never_unlists_shared_segments(tmp_path, monkeypatch):
    from kagura.observability.store import doctor

    lake = tmp_path / "lake"
    host = host_store(tmp_path, lake, "h1", monkeypatch)
    write(host, "alpha", 3, 0.1, T0)
    host.compact()
    report = doctor.check(host)
    assert report["missing"] == [] and report["unreadable"] == []
    doctor.repair(host)
    assert len(host.segments()) == 1
    assert EventStore(":memory:", lake=str(lake)).get_summary_stats()["total_executions"] == 3
    host.close()


def test_a_bad_lake_in_the_environment_keeps_recording(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGURA_LAKE", "ftp://nowhere/lake")
    store = EventStore(tmp_path / "t.db", auto_compact=False)
    write(store, "alpha", 3, 0.1, T0)  # recording goes on
    with pytest.raises(StoreError, match="bad lake URL"):
        store.compact()
    with pytest.raises(StoreError, match="bad lake URL"):
        store.get_summary_stats()
    store.close()
    monkeypatch.delenv("KAGURA_LAKE")
    again = EventStore(tmp_path / "t.db")
    assert again.tail_size()["settled"] == 3
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").rglob("*.parquet"))
    again.close()


def test_an_agent_records_with_a_bad_lake_in_the_environment(monkeypatch, kagura_home):
    from kagura import agent
    from kagura.observability.recording.collector import flush

    monkeypatch.setenv("KAGURA_LAKE", "ftp://nowhere/lake")

    @agent(model="gpt-4o-mini", mock_response="hi")
    async def hello(name: str) -> str:
        """Say hi to {{ name }}"""

    import asyncio

    assert asyncio.run(hello("x")) == "hi"
    from kagura.observability.recording.collector import default_store

    flush(default_store())
    monkeypatch.delenv("KAGURA_LAKE")
    with EventStore(kagura_home / "telemetry.db") as store:
        assert store.tail_size()["settled"] == 1


def test_old_manifests_and_replaced_files_go_after_the_grace(tmp_path, monkeypatch):
    lake = tmp_path / "lake"
    host = host_store(tmp_path, lake, "h1", monkeypatch)
    for i in range(5):  # the fourth small segment of the day triggers a merge
        write(host, "alpha", 2, 0.1, T0 + 10 * i)
        host.compact()
    manifests = lake / "host=h1" / "_manifest"
    assert len(list(manifests.iterdir())) > 3
    files = list(lake.rglob("*.parquet"))
    segments = host.segments()
    listed = {p for s in segments for p in (s.executions_path, s.events_path, s.rollup_path)}
    assert len(listed) == 3 * len(segments)  # the merged segment has its rollup
    assert len(files) > len(listed)  # merged-away files wait for readers of older manifests
    host._compactor.cleanup(grace=0.0)
    assert sorted(p.name for p in manifests.iterdir())[-1].startswith("m-")
    assert len(list(manifests.iterdir())) == 3
    assert {p.relative_to(lake).as_posix() for p in lake.rglob("*.parquet")} == listed
    reader = EventStore(":memory:", lake=str(lake))
    assert reader.get_summary_stats()["total_executions"] == 10
    reader.close()
    host.close()


# --- rollups in the shared lake -----------------------------------------------------

END = T0 + 3 * 86400.0 - 1800.0  # runs over three days, the last ending mid-hour


def sample_prices() -> dict[str, tuple[float, float]]:
    """The prices the checked-in sample was made with (no litellm import)."""
    meta = json.loads((Path(__file__).parents[2] / "data/fixtures/sample.json").read_text())
    return {
        name: (p["input_cost_per_token"], p["output_cost_per_token"])
        for name, p in meta["prices"].items()
    }


def same(got: dict, want: dict, label: str) -> None:
    """Counts and sums equal; percentiles within 1% when `got` was read from rollups."""
    assert got.keys() == want.keys(), label
    for key, value in want.items():
        if key == "approx":
            continue
        if key.startswith("p") and key[1:].split("_")[0].isdigit() and value is not None:
            assert abs(got[key] - value) <= 0.01 * value, (label, key, got[key], value)
        elif isinstance(value, float):
            assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12), (label, key)
        else:
            assert got[key] == value, (label, key, got[key], value)


def fleet_of_two(tmp_path: Path, monkeypatch) -> Path:
    from kagura.synthetic import fixtures

    lake = tmp_path / "lake"
    for seed, host in enumerate(("h1", "h2")):
        store = host_store(tmp_path, lake, host, monkeypatch)
        fixtures.fill(store, 500, seed=seed, days=2.5, end=END, prices=sample_prices())
        assert store.compact()["executions"] == 500
        store.close()
    return lake


def test_hosts_write_rollups_beside_their_segments(tmp_path, monkeypatch):
    lake = fleet_of_two(tmp_path, monkeypatch)
    for host in ("h1", "h2"):
        manifest = json.loads(
            sorted((lake / f"host={host}" / "_manifest").iterdir())[-1].read_text()
        )
        assert len(manifest["segments"]) >= 3  # one per UTC date
        for entry in manifest["segments"]:
            rollup = entry["rollup_path"]
            assert rollup == entry["executions_path"].replace("/executions/", "/rollups/", 1)
            assert rollup.startswith(f"host={host}/rollups/date={entry['date']}/")
            # The rollup counts the segment's runs (read from the files, not the store).
            runs = pq.read_table(lake / rollup, columns=["runs"]).column("runs").to_pylist()
            assert sum(runs) == pq.read_metadata(lake / entry["executions_path"]).num_rows
            assert (os.stat(lake / rollup).st_mode & 0o777) == 0o600


def test_fleet_answers_from_shared_rollups_equal_a_scan(tmp_path, monkeypatch):
    lake = fleet_of_two(tmp_path, monkeypatch)
    reader = EventStore(":memory:", lake=str(lake))
    assert reader._planned("summary_stats").name == "sql/rollups/summary_stats.sql"
    windows = [
        (None, None),
        (T0 + 5000.5, None),  # a partial first hour: its runs are scanned
        (T0 + 86400.0 + 1234.0, END - 4321.0),
        (T0 + 7200.0, T0 + 7200.0 + 1800.0),  # less than an hour
    ]
    for since, until in windows:
        for agent in (None, "chatbot", "research*"):
            label = f"{since} {until} {agent}"
            got = reader.get_summary_stats(agent, since=since, until=until)
            want = reader.get_summary_stats(agent, since=since, until=until, exact=True)
            assert want["approx"] is False
            same(got, want, label)
            for method in ("cost_by_agent", "cost_by_date"):
                call = getattr(reader, method)
                got_rows = call(agent_name=agent, since=since, until=until).to_dicts()
                want_rows = call(agent_name=agent, since=since, until=until, exact=True).to_dicts()
                assert len(got_rows) == len(want_rows), label
                for g, w in zip(got_rows, want_rows, strict=True):
                    same(g, w, f"{method} {label}")
    whole = reader.get_summary_stats()
    assert whole["approx"] is True and whole["total_executions"] == 1000
    # --host: the same from one host's rollups.
    only = EventStore(":memory:", lake=str(lake), hosts="h2")
    same(only.get_summary_stats(), only.get_summary_stats(exact=True), "h2")
    assert only.get_summary_stats()["total_executions"] == 500
    # A lake written before rollups (its manifest entries without rollup_path) is scanned.
    h1 = lake / "host=h1" / "_manifest"
    newest = sorted(h1.iterdir())[-1]
    old = json.loads(newest.read_text())
    for entry in old["segments"]:
        del entry["rollup_path"]
    old["seq"] += 1
    (h1 / f"m-{old['seq']:012d}.json").write_text(json.dumps(old))
    reader.shared.forget()
    plan_segments = reader._tail(with_events=False).segments
    assert sum(1 for s in plan_segments if s.rollup_path is None) == len(old["segments"])
    same(reader.get_summary_stats(), whole, "h1 without rollups")
    for store in (reader, only):
        store.close()


def test_a_failed_rollup_write_publishes_nothing(tmp_path, monkeypatch):
    from kagura.observability.store import compaction

    lake = tmp_path / "lake"
    host = host_store(tmp_path, lake, "h1", monkeypatch)
    write(host, "alpha", 5, 0.1, T0)

    def broken(*args, **kwargs):
        raise OSError("disk full while writing the rollup")

    monkeypatch.setattr(compaction, "build_rollup", broken)
    with pytest.raises(OSError):
        host.compact()
    monkeypatch.undo()
    # Nothing listed, nothing half-written left: the runs wait in the tail.
    assert host.tail_size()["settled"] == 5
    assert not list(lake.rglob("*.parquet"))
    assert not (lake / "host=h1" / "_manifest").exists() or not any(
        json.loads(p.read_text())["segments"] for p in (lake / "host=h1" / "_manifest").iterdir()
    )
    assert host.compact()["executions"] == 5
    reader = EventStore(":memory:", lake=str(lake))
    assert reader.get_summary_stats()["total_executions"] == 5
    host.close()
    reader.close()


def test_doctor_and_prune_keep_shared_rollups_in_step(tmp_path, monkeypatch):
    import sqlite3

    from kagura.observability.store import doctor

    lake = tmp_path / "lake"
    host = host_store(tmp_path, lake, "h1", monkeypatch)
    write(host, "alpha", 6, 0.1, T0)
    write(host, "beta", 4, 0.3, T0 + 86400.0)  # a second date: a second segment
    host.compact()
    # A segment listed without its rollup (as a lake from before rollups has them).
    seg = host.segments()[0]
    (lake / seg.rollup_path).unlink()
    con = sqlite3.connect(host.path)
    with con:
        con.execute("UPDATE segments SET rollup_path = NULL WHERE id = ?", (seg.id,))
    con.close()
    report = doctor.check(host)
    assert [r["segment"] for r in report["rollups"]] == [seg.id]
    done = doctor.repair(host)
    assert [a["action"] for a in done["actions"]] == ["rollup built"]
    assert done["after"]["rollups"] == []
    newest = json.loads(sorted((lake / "host=h1" / "_manifest").iterdir())[-1].read_text())
    assert all(e["rollup_path"] and (lake / e["rollup_path"]).is_file() for e in newest["segments"])
    # Retention rewrites the first day's segment: its new rollup counts what is left.
    assert host.prune(T0 + 3.5)["deleted"] == 4  # runs at T0 + 0..3
    entries = json.loads(sorted((lake / "host=h1" / "_manifest").iterdir())[-1].read_text())
    counted = {
        e["date"]: sum(pq.read_table(lake / e["rollup_path"], columns=["runs"])["runs"].to_pylist())
        for e in entries["segments"]
    }
    assert counted == {"2026-01-01": 2, "2026-01-02": 4}
    reader = EventStore(":memory:", lake=str(lake))
    got = reader.get_summary_stats()
    assert got["approx"] is True and got["total_executions"] == 6
    assert got["total_cost"] == pytest.approx(2 * 0.1 + 4 * 0.3)
    same(got, reader.get_summary_stats(exact=True), "after prune")
    reader.close()
    host.close()
