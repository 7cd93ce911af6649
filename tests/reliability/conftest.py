"""Fixtures of the reliability tests: the store's path, child processes, the long-run flag.

`KAGURA_LONG_TESTS=1` runs the long versions (hundreds of kills, a minute of load);
`KAGURA_RELIABILITY_OUT=file` appends each harness's figures to that file as JSON lines.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from cli_process import run_cli

LONG = os.environ.get("KAGURA_LONG_TESTS") == "1"


def figures(name: str, **values: object) -> None:
    """Report a harness's figures on stdout and, when asked, in KAGURA_RELIABILITY_OUT."""
    line = json.dumps({"harness": name, "long": LONG, **values}, sort_keys=True)
    print(line)
    out = os.environ.get("KAGURA_RELIABILITY_OUT")
    if out:
        with open(out, "a", encoding="utf-8") as f:
            f.write(line + "\n")


@pytest.fixture
def db(kagura_home: Path) -> Path:
    """Where the store under test lives: the default path inside the test's KAGURA_HOME."""
    return kagura_home / "telemetry.db"


@pytest.fixture
def children():
    """Start child processes; any still running at the end of the test is killed."""
    started: list[subprocess.Popen] = []

    def start(argv: list[str], **kwargs) -> subprocess.Popen:
        env = dict(os.environ, LITELLM_LOCAL_MODEL_COST_MAP="True", PYTHONUNBUFFERED="1")
        env.update(kwargs.pop("env", {}))
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, **kwargs
        )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def cli(*args: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run `python -m kagura.cli ARGS` in a subprocess; return the finished process (text)."""
    full_env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
    return run_cli(*args, env=full_env, timeout=timeout, columns=120)


def assert_one_line_error(result: subprocess.CompletedProcess, *needles: str) -> str:
    """The CLI failed with exit code 1 or 2 and one line on stderr (no traceback) naming `needles`."""
    assert result.returncode in (1, 2), (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    if result.returncode == 2 and lines and lines[0].startswith("Usage:"):
        lines = [line for line in lines if line.startswith("Error")]  # click's usage block
    assert len(lines) == 1, f"expected one line, got:\n{result.stderr}"
    err = lines[0]
    for needle in needles:
        assert needle in err, f"{needle!r} not in {err!r}"
    return err


def wait_until(predicate, timeout: float = 30.0, step: float = 0.02) -> None:
    """Poll `predicate` until it is true; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(step)
