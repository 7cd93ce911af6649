"""`import kagura` stays light: no litellm, polars, rich, typer, duckdb or pyarrow until they are needed."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = (
    "litellm",
    "polars",
    "rich",
    "typer",
    "duckdb",
    "pyarrow",
    "jinja2",
    "pydantic",
    "openai",
    "asyncio",
)


def loaded_after(code: str) -> list[str]:
    probe = (
        code + f"\nimport sys, json\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_kagura_loads_nothing_heavy():
    assert loaded_after("import kagura") == []


def test_defining_agents_and_tools_loads_nothing_heavy():
    code = '''
from kagura import agent, tool

@tool
def search(q: str) -> str:
    """Search."""
    return q

@agent(model="gpt-4o-mini", tools=[search], memory=True)
async def helper(q: str) -> str:
    """{{ q }}"""
'''
    assert loaded_after(code) == []
