"""notebooks/01_claims_world.ipynb runs top to bottom on a small world."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "01_claims_world.ipynb"


def test_notebook_runs_on_a_small_world(monkeypatch, tmp_path):
    monkeypatch.setenv("CLAIMRADAR_NB_CLAIMS", "8000")
    monkeypatch.setenv("CLAIMRADAR_NB_MONTHS", "14")
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel draws inline
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()  # the kernel inherits this process environment (the size above)
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any(o.output_type == "display_data" for o in outputs), "the notebook draws plots"
