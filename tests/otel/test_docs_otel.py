"""docs/opentelemetry.md: its Python snippet, pointed at a running `kagura serve`, lands runs
that the documented commands then show."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from otel_parts import cli_json, litellm_price, run_cli

pytest.importorskip("opentelemetry.exporter.otlp.proto.http")

DOC = Path(__file__).resolve().parents[2] / "docs" / "opentelemetry.md"


def test_the_python_snippet_reaches_kagura_serve(served, tmp_path):
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 1
    script = tmp_path / "app.py"
    script.write_text(blocks[0], encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    env["OTEL_EXPORTER_OTLP_ENDPOINT"] = served.base
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr
    runs = cli_json("monitor", "list", "--agent", "support", "--db", str(served.db))
    assert len(runs) == 1
    input_price, output_price = litellm_price("gpt-4o-mini")
    assert runs[0]["metrics"]["total_tokens"] == 1500
    assert runs[0]["metrics"]["total_cost"] == pytest.approx(
        1200 * input_price + 300 * output_price
    )
    assert run_cli("monitor", "cost", "--db", str(served.db)).returncode == 0
    trace = run_cli("monitor", "trace", runs[0]["id"], "--db", str(served.db))
    assert trace.returncode == 0 and "gpt-4o-mini" in trace.stdout
