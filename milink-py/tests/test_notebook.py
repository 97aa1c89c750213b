"""The Tailspin notebook runs headlessly from top to bottom (nbclient), so it cannot rot."""

import pathlib

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")
pytest.importorskip("matplotlib")
pytest.importorskip("ipykernel")

NOTEBOOK = pathlib.Path(__file__).resolve().parents[2] / "examples" / "notebooks" / "tailspin.ipynb"


def test_the_tailspin_notebook_runs_from_top_to_bottom(tmp_path: pathlib.Path) -> None:
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = "".join(
        str(o.get("text", "")) for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
    )
    assert "'ToyStore': 'Ready'" in outputs
    assert "FailedOver" in outputs
