"""The example notebook runs end to end, and its outputs carry the notebook display."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.support import ROOT

NOTEBOOK = ROOT / "studies" / "notebook" / "quickstart.ipynb"


@pytest.mark.slow
def test_quickstart_notebook_executes(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
    html = [out["data"]["text/html"] for cell in nb.cells if cell.cell_type == "code"
            for out in cell.get("outputs", []) if "text/html" in out.get("data", {})]
    assert [h.split("<b>")[1].split("</b>")[0] for h in html] == [
        "RangeTestResult", "LRSuggestion", "ScheduleSpec"]
    assert "data:image/png;base64," in html[0] and "data:image/png;base64," in html[2]
    printed = "".join(out.get("text", "") for cell in nb.cells if cell.cell_type == "code"
                      for out in cell.get("outputs", []) if out.get("output_type") == "stream")
    accuracy = float(printed.split("validation accuracy ")[1].split()[0])
    assert accuracy > 0.8  # five one-cycle epochs of a small CNN on the digits
    assert not list(tmp_path.glob("*.json"))  # the notebook cleans up its schedule file
