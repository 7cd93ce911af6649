"""The docs hold: the tutorial's snippets run, sql.md matches the SQL headers, every SQL file
has a header and a test, and python-api.md names every public method.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from analytics_rows import prices

from kagura.observability.store import engine as query
from kagura.synthetic import fixtures

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
TESTS = ROOT / "tests"


def blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", text, re.S)


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A KAGURA_HOME holding 3,000 fixture runs that end now."""
    from kagura.observability.eventstore import EventStore

    folder = tmp_path_factory.mktemp("home")
    store = EventStore(folder / "telemetry.db", auto_compact=False)
    fixtures.fill(store, 3_000, seed=2, days=30, end=time.time() - 60, prices=prices())
    store.compact()
    store.close()
    return folder


def test_tutorial_python_blocks_run_in_order(home, tmp_path):
    code = blocks((DOCS / "tutorial.md").read_text(encoding="utf-8"), "python")
    assert len(code) >= 12
    # One process, block after block, as a reader would paste them; Path.home() is the fixture home's parent.
    fake_home = tmp_path / "user"
    (fake_home / ".kagura").parent.mkdir(parents=True)
    (fake_home / ".kagura").symlink_to(home, target_is_directory=True)
    script = tmp_path / "tutorial.py"
    script.write_text("\n\n".join(f"# --- block {i}\n{b}" for i, b in enumerate(code)))
    env = dict(
        os.environ,
        KAGURA_HOME=str(home),
        HOME=str(fake_home),
        COLUMNS="120",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONIOENCODING="utf-8",
    )
    result = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Hello → French: Bonjour !" in result.stdout
    assert "translator:" in result.stdout and "Total:" in result.stdout


def test_tutorial_commands_run(home, monkeypatch):
    from typer.testing import CliRunner

    from kagura.cli import app

    monkeypatch.setenv("KAGURA_HOME", str(home))
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    commands = []
    for block in blocks(text, "bash"):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("kagura monitor") and ">" not in line:
                commands.append(line)
    assert len(commands) >= 25
    runner = CliRunner()
    for line in commands:
        args = _split(line)[1:]
        if (
            args == ["monitor"]
            or "--refresh" in args
            or args[-2:] == ["--agent", "translator"]
            and len(args) == 3
        ):
            args.append("--once")  # the live view would never return
        if args[:2] == ["monitor", "trace"]:
            from kagura.observability.eventstore import EventStore

            args[2] = EventStore(home / "telemetry.db").get_executions(limit=1)[0]["id"][:24]
        result = runner.invoke(app, args)
        allowed = (0, 1) if args[1] in ("regressions", "health", "budget") else (0,)
        assert result.exit_code in allowed, f"{line}: {result.stdout}{result.stderr}"


def _split(line: str) -> list[str]:
    import shlex

    return shlex.split(line)


def test_tutorial_covers_every_step_of_the_seed_and_every_analytics_command():
    text = (DOCS / "tutorial.md").read_text(encoding="utf-8")
    for needle in (
        "kagura monitor --agent",
        "--refresh",
        "kagura monitor list --status failed",
        "--limit",
        "kagura monitor stats --agent",
        "kagura monitor trace",
        "--group-by date",
        "get_executions(",
        "get_summary_stats(",
        "show_live(",
        "show_list(",
        "show_stats(",
        "show_trace(",
        "show_cost_summary(",
        "since=",
        'status="failed"',
        "get_execution(",
        "delete_old_executions(",
        "clear_all()",
        "@agent",
        "KAGURA_HOME",
    ):
        assert needle in text, needle
    for command in ("latency", "regressions", "health", "budget", "errors", "trend", "sql"):
        assert f"kagura monitor {command}" in text, command


def test_every_sql_file_has_a_complete_header():
    for path in sorted((ROOT / "sql").glob("*.sql")):
        text = path.read_text(encoding="utf-8")
        header = query.parse_header(text)
        assert header.get("name") == path.stem, (
            f"{path.name}: header must start with `-- {path.stem}: ...`"
        )
        for key in ("summary", "grain", "params", "reads"):
            assert header.get(key), f"{path.name}: header has no {key}"
        # The params line and its continuation lines, up to `-- reads:`.
        block = re.search(r"^-- params:(.*?)^-- reads:", text, re.S | re.M).group(1)
        declared = set(re.findall(r"\$([A-Za-z_]\w*)", block))
        assert declared == set(query.param_names(text)) or header["params"] == "none", (
            f"{path.name}: header params {sorted(declared)} differ from the SQL's {query.param_names(text)}"
        )
        for view in re.split(r"[,\s]+", header["reads"].strip()):
            assert view in ("executions", "events", "scores"), f"{path.name}: reads {view!r}"


def test_every_sql_file_has_a_test():
    """A test names the file, or calls an EventStore method that runs it."""
    from kagura.observability.eventstore import EventStore

    tests = "\n".join(p.read_text(encoding="utf-8") for p in TESTS.rglob("test_*.py"))
    sources = {
        name: inspect.getsource(member)
        for name, member in inspect.getmembers(EventStore, inspect.isfunction)
    }

    def callers(name: str) -> set[str]:
        return {
            m
            for m, src in sources.items()
            if re.search(rf"\b_?{re.escape(name)}\(|\"{re.escape(name)}\"", src) and m != name
        }

    for path in sorted((ROOT / "sql").glob("*.sql")):
        name = path.stem
        runners = {m for m, src in sources.items() if f'"{name}"' in src}
        reach = set(runners)
        for method in list(runners):
            if method.startswith("_"):
                reach |= callers(method.lstrip("_")) | callers(method)
        names = {name} | {m for m in reach if not m.startswith("_")}
        assert any(re.search(rf"\b{re.escape(n)}\b", tests) for n in names), (
            f"sql/{name}.sql has no test (looked for {sorted(names)})"
        )


def test_sql_md_is_generated_from_the_headers():
    from kagura.cli.monitor import ANALYTIC_COMMANDS
    from kagura.observability.analytics.sql_docs import catalogue_markdown

    entries = query.catalogue()
    texts = {e["name"]: query.load_sql(e["name"]) for e in entries}
    expected = catalogue_markdown(entries, texts, ANALYTIC_COMMANDS)
    assert (DOCS / "sql.md").read_text(encoding="utf-8") == expected, (
        "docs/sql.md is out of date: run `kagura monitor sql --list --markdown > docs/sql.md`"
    )


def test_python_api_names_every_public_method():
    from kagura.observability import Dashboard, EventStore, Telemetry, TelemetryCollector

    text = (DOCS / "python-api.md").read_text(encoding="utf-8")
    for cls in (EventStore, Dashboard, TelemetryCollector, Telemetry):
        for name, member in inspect.getmembers(cls):
            if name.startswith("_") or not (
                inspect.isfunction(member) or isinstance(member, property)
            ):
                continue
            assert re.search(rf"\b{name}\b", text), (
                f"docs/python-api.md does not mention {cls.__name__}.{name}"
            )
