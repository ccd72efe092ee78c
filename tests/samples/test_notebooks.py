"""Every notebook runs top to bottom on tiny synthetic data (MEDSEG_NOTEBOOK_TINY=1)."""
from __future__ import annotations

import pytest

from tests.conftest import ROOT

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_the_five_notebooks_are_there():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_train_lungs", "02_isic_lesions", "03_siim_pneumothorax", "04_unet_lungs",
        "05_inspect_model"]
    for path in NOTEBOOKS:
        first_code = next(c for c in nbformat.read(path, as_version=4).cells
                          if c.cell_type == "code" and "parameters" in c.metadata.get("tags", []))
        assert "TINY" in first_code.source and "DATA_DIR = None" in first_code.source


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path, monkeypatch):
    monkeypatch.setenv("MEDSEG_NOTEBOOK_TINY", "1")
    notebook = nbformat.read(path, as_version=4)
    # Errors raise CellExecutionError naming the cell; "python3" runs this interpreter
    # (jupyter_client starts sys.executable for a kernel whose argv is "python").
    client = nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600,
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    # Every notebook draws something: the figures are part of what it shows.
    assert any("image/png" in o.get("data", {}) for o in outputs)
