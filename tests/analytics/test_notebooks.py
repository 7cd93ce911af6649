"""The notebooks run top to bottom in a fresh python3 kernel (nbclient); a failing cell fails the test.

They are also kept in step with notebooks/make_notebooks.py, which writes them.
"""

from __future__ import annotations

import ast
import os
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


@pytest.mark.parametrize("name", ["cost_analysis.ipynb", "performance_and_regressions.ipynb"])
def test_notebook_runs(name, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    from kagura.observability.eventstore import EventStore
    from tests.store_rows import run

    # A store of someone's own where the notebook is told to work: it must survive untouched.
    theirs = tmp_path / "telemetry.db"
    with EventStore(theirs) as store:
        store.append(*run("precious", 1_700_000_000.0))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("KAGURA_NOTEBOOK_DIR", str(tmp_path))
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=180,
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()  # a failing cell raises CellExecutionError with the cell's error
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "execute_result" for o in outputs)
    with EventStore(theirs) as store:
        assert [r["agent_name"] for r in store.get_executions()] == ["precious"]
    (scratch,) = tmp_path.glob("kagura-notebook-*")  # the notebook's own store
    assert (scratch / "telemetry.db").is_file()


def test_the_notebooks_extra_brings_jupyter():
    import re
    import tomllib

    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["notebooks"]
    names = {re.split(r"[<>=\[ ]", item, maxsplit=1)[0].lower() for item in extra}
    assert {"jupyterlab", "ipykernel", "nbclient", "nbconvert", "nbformat", "matplotlib"} <= names


def test_the_wheel_carries_the_fixture_data_and_the_sql(tmp_path):
    """Build the wheel, unpack it, and load the sample from the unpacked package alone."""
    import subprocess
    import zipfile

    pytest.importorskip("hatchling")
    built = subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(tmp_path / "dist")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("sample.json", "executions.parquet", "events.parquet"):
        assert f"kagura/data/fixtures/{name}" in names
    assert "kagura/sql/summary_stats.sql" in names
    assert "kagura/py.typed" in names  # type checkers read the package's annotations
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = (
        "from kagura.synthetic import fixtures\n"
        "from kagura.observability.store import engine as query\n"
        "print(fixtures.SAMPLE_DIR)\n"
        "print(query.sql_dir())\n"
        "print(len(fixtures.load_sample()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(site)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    sample_dir, sql_dir, count = result.stdout.split()
    assert Path(sample_dir) == site / "kagura" / "data" / "fixtures"
    assert Path(sql_dir) == site / "kagura" / "sql"
    import json

    assert int(count) == json.loads((ROOT / "data/fixtures/sample.json").read_text())["executions"]


def test_notebooks_match_their_source(tmp_path):
    sys.path.insert(0, str(NOTEBOOKS))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(NOTEBOOKS))
    for name, build in (
        ("cost_analysis.ipynb", make_notebooks.cost_notebook),
        ("performance_and_regressions.ipynb", make_notebooks.performance_notebook),
    ):
        saved = nbformat.read(NOTEBOOKS / name, as_version=4)
        fresh = build()
        # Code is compared as syntax trees, so a formatter may rewrap the saved cells.
        assert [_shape(c) for c in saved.cells] == [_shape(c) for c in fresh.cells], (
            f"notebooks/{name} is out of date: run `python notebooks/make_notebooks.py`"
        )
        assert all(not c.get("outputs") for c in saved.cells if c.cell_type == "code"), (
            f"notebooks/{name} is saved with outputs"
        )
    assert os.access(NOTEBOOKS / "make_notebooks.py", os.R_OK)


def _shape(cell) -> str:
    if cell.cell_type == "code":
        return ast.dump(ast.parse(cell.source))
    return cell.source
