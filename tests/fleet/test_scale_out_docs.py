"""docs/scale-out.md: its reading commands and Python run against a real S3 server."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from s3_server import S3_ENV
from store_rows import run

from kagura.observability import EventStore

pytestmark = pytest.mark.s3

DOC = Path(__file__).resolve().parents[2] / "docs" / "scale-out.md"
DOC_URL = "s3://acme-telemetry/kagura"


def section(title: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    start = text.index(f"## {title}")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else None]


def blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, flags=re.S)


@pytest.fixture
def fleet_url(tmp_path, bucket, s3_env, monkeypatch):
    """The hosts the doc names (worker-01, worker-02) compacted into a fresh bucket."""
    url = f"s3://{bucket}/kagura"
    for i, host in enumerate(("worker-01", "worker-02", "worker-03")):
        monkeypatch.setenv("KAGURA_HOST_ID", host)
        with EventStore(tmp_path / host / "t.db", lake=url, auto_compact=False) as store:
            store.append_many([run(f"agent_{i}", 1_767_225_600.0 + j) for j in range(3)])
            store.compact()
    monkeypatch.delenv("KAGURA_HOST_ID")
    return url


def test_the_reading_commands_run(fleet_url, s3_env, tmp_path):
    commands = [
        line.split("#")[0].strip()
        for line in blocks(section("Read the fleet with DuckDB"), "bash")[0].splitlines()
        if line.strip()
    ]
    assert len(commands) == 4
    env = dict(
        os.environ,
        **S3_ENV,
        AWS_ENDPOINT_URL=s3_env,
        KAGURA_HOME=str(tmp_path / "analyst"),
        PYTHONIOENCODING="utf-8",
        COLUMNS="160",
    )
    for command in commands:
        words = shlex.split(command.replace(DOC_URL, fleet_url))
        extra = {}
        while "=" in words[0]:
            name, value = words.pop(0).split("=", 1)
            extra[name] = value
        assert words[0] == "kagura"
        out = subprocess.run(
            [sys.executable, "-m", "kagura.cli", *words[1:]],
            capture_output=True,
            text=True,
            env={**env, **extra},
            timeout=120,
        )
        assert out.returncode == 0, f"{command}: {out.stderr}"
        assert out.stdout.strip()


def test_the_python_runs(fleet_url, s3_env):
    code = blocks(section("Read the fleet with DuckDB"), "python")[0].replace(DOC_URL, fleet_url)
    scope: dict = {}
    exec(compile(code, str(DOC), "exec"), scope)
    assert scope["fleet"].get_summary_stats()["total_executions"] == 9
