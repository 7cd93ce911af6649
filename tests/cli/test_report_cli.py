"""`kagura monitor report` through the real command line: files, modes, exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import stat

import pytest
from cli_process import run_cli
from report_seed import seed


@pytest.fixture
def seeded(tmp_path):
    return seed(tmp_path / "telemetry.db")


def one_line_error(result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("Error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_writes_an_owner_only_page(seeded, tmp_path):
    out = tmp_path / "report.html"
    result = run_cli("monitor", "report", "--db", str(seeded.path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    page = out.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert result.stdout.startswith(f"Wrote {out} (")
    assert "5 runs over 3 day(s), 3 agent(s), 4 trace(s)" in result.stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_replaces_a_readable_file_with_an_owner_only_one(seeded, tmp_path):
    out = tmp_path / "report.html"
    out.write_text("old")
    os.chmod(out, 0o644)
    result = run_cli("monitor", "report", "--db", str(seeded.path), "-o", str(out))
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert out.read_text(encoding="utf-8") != "old"


def test_default_file_is_report_html_in_the_current_folder(seeded, tmp_path):
    work = tmp_path / "work"
    work.mkdir()
    result = run_cli("monitor", "report", "--db", str(seeded.path), cwd=work)
    assert result.returncode == 0, result.stderr
    assert stat.S_IMODE((work / "report.html").stat().st_mode) == 0o600


def test_json_counts_and_filters(seeded, tmp_path):
    out = tmp_path / "alpha.html"
    result = run_cli(
        "monitor", "report", "--db", str(seeded.path), "-o", str(out), "--agent", "alpha", "--json"
    )
    assert result.returncode == 0, result.stderr
    counts = json.loads(result.stdout)
    # alpha ran on day 3 and day 1 (the nested trace's root); beta's runs are left out.
    assert counts == {
        "path": str(out),
        "bytes": len(out.read_bytes()),
        "runs": 2,
        "days": 2,
        "agents": 1,
        "traces": 2,
    }


def test_session_user_and_tag_narrow_the_page(seeded, tmp_path):
    out = tmp_path / "ana.html"
    result = run_cli(
        "monitor", "report", "--db", str(seeded.path), "-o", str(out), "--user", "ana", "--json"
    )
    assert result.returncode == 0, result.stderr
    # ana: the beta run of day 8 and the nested trace of day 1 (3 runs over 2 days, 2 agents).
    counts = json.loads(result.stdout)
    assert (counts["runs"], counts["days"], counts["agents"], counts["traces"]) == (3, 2, 2, 2)
    result = run_cli(
        "monitor", "report", "--db", str(seeded.path), "-o", str(out), "--session", " "
    )
    assert result.returncode == 2 and "--session needs a value" in one_line_error(result)


def test_stdout_with_dash(seeded):
    result = run_cli("monitor", "report", "--db", str(seeded.path), "-o", "-", "--since", "2d")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("<!DOCTYPE html>")
    data = result.stdout.split('id="report-data">', 1)[1].split("</script>", 1)[0]
    assert len(json.loads(data)["cost_by_date"]) == 1  # only day 1 is within 2 days


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--since", "yesterdayish"], 2, "--since"),
        (["--since", "2d", "--until", "5d"], 2, "--since must be before --until"),
        (["--traces", "-1"], 2, "--traces"),
        (["--agent", "nobody"], 1, "No runs of agent 'nobody'"),
    ],
)
def test_bad_options_are_one_line(seeded, tmp_path, args, code, words):
    out = tmp_path / "r.html"
    result = run_cli("monitor", "report", "--db", str(seeded.path), "-o", str(out), *args)
    assert result.returncode == code
    assert words in one_line_error(result)
    assert not out.exists()


def test_unwritable_outputs_are_one_line(seeded, tmp_path):
    db = str(seeded.path)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    result = run_cli("monitor", "report", "--db", db, "-o", str(folder))
    assert result.returncode == 2 and "is a folder" in one_line_error(result)

    result = run_cli("monitor", "report", "--db", db, "-o", str(tmp_path / "missing" / "r.html"))
    assert result.returncode == 1 and "does not exist" in one_line_error(result)

    plain = tmp_path / "plain-file"
    plain.write_text("x")
    result = run_cli("monitor", "report", "--db", db, "-o", str(plain / "r.html"))
    assert result.returncode == 1 and "is not a folder" in one_line_error(result)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_one_line(seeded, tmp_path):
    folder = tmp_path / "locked"
    folder.mkdir()
    os.chmod(folder, 0o500)
    try:
        result = run_cli(
            "monitor", "report", "--db", str(seeded.path), "-o", str(folder / "r.html")
        )
    finally:
        os.chmod(folder, 0o700)
    assert result.returncode == 1
    assert "cannot write" in one_line_error(result)
    assert list(folder.iterdir()) == []


def test_device_that_refuses_the_file_is_one_line(seeded):
    # /proc refuses new files even to root: the write fails after the page is made.
    result = run_cli(
        "monitor", "report", "--db", str(seeded.path), "-o", "/proc/kagura-report.html"
    )
    assert result.returncode == 1
    assert "cannot write /proc/kagura-report.html" in one_line_error(result)


def test_no_store_is_one_line(tmp_path):
    result = run_cli(
        "monitor", "report", "--db", str(tmp_path / "none.db"), "-o", str(tmp_path / "r.html")
    )
    assert result.returncode == 1
    assert "No telemetry yet" in one_line_error(result)
    assert not (tmp_path / "r.html").exists()
