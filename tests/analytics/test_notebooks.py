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
