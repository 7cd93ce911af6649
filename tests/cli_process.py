"""The real `kagura` command line in a subprocess, for every test folder."""

from __future__ import annotations

import os
import subprocess
import sys


def run_cli(
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60,
    columns: int = 200,
    cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """`python -m kagura.cli ARGS...` in a subprocess with a terminal `columns` wide (so no name
    is cut unless a test asks for a narrow one); `env` adds to or overrides the environment;
    `cwd` is the folder it runs in."""
    full_env = dict(os.environ, COLUMNS=str(columns), PYTHONIOENCODING="utf-8")
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "kagura.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        cwd=cwd,
    )
