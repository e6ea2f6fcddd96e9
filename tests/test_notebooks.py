"""The notebooks run headless, top to bottom, on a sweep and runs the tests make; a raising cell fails."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from rnnexp.sweeps import demonstrations
from tests.conftest import ROOT
from tests.sweep_runs import grid_sweep, mnist_run, sine_mode_runs, text_run

NOTEBOOKS = ROOT / "notebooks"


def execute(name: str) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel started in notebooks/ (raises CellExecutionError on any error)."""
    notebook = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
    ).execute()
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]


def text_of(notebook: nbformat.NotebookNode) -> str:
    parts = [out.get("text", "") for out in outputs(notebook)]
    parts += [out.get("data", {}).get("text/plain", "") for out in outputs(notebook)]
    return "\n".join(parts)


def images(notebook: nbformat.NotebookNode) -> int:
    return sum("image/png" in out.get("data", {}) for out in outputs(notebook))


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_cells_are_short_calls_into_the_package(path: Path):
    notebook = nbformat.read(path, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert len(cell.source.splitlines()) <= 15, (
                f"{path.name}: a cell of {len(cell.source.splitlines())} lines"
            )
            assert not cell.outputs, f"{path.name} is stored with outputs; clear them before committing"


def test_review_notebook_runs_on_a_sweep_with_failed_jobs(tmp_path_factory, monkeypatch):
    sweep_dir = grid_sweep(tmp_path_factory)[0]
    monkeypatch.setenv("RNNEXP_SWEEP_DIR", str(sweep_dir))  # the kernel inherits the environment
    notebook = execute("review_sweep.ipynb")
    shown = text_of(notebook)
    assert f"{sweep_dir}: 4 jobs" in shown and "'failed': 2" in shown
    # the groups of replicates: no seed swept, so each group is one run, and it says so
    assert "4 groups (replicates: seed)" in shown and "n = 1: a single run" in shown
    assert images(notebook) >= 3  # learning curves, parameter effects, the best run's saved figure
    assert (sweep_dir / "report.html").is_file()


def test_demonstrations_notebook_runs_on_trained_runs(tmp_path_factory, monkeypatch):
    sweep_dir = grid_sweep(tmp_path_factory)[0]
    sine_run = next(p for p in sorted(sweep_dir.iterdir()) if (p / "results.json").is_file())
    text = text_run(tmp_path_factory)
    monkeypatch.setenv("RNNEXP_SINE_RUN", str(sine_run))
    monkeypatch.setenv("RNNEXP_MNIST_RUN", str(mnist_run(tmp_path_factory)))
    monkeypatch.setenv("RNNEXP_TEXT_RUN", str(text))
    streams_run, forecast_run = sine_mode_runs(tmp_path_factory)
    monkeypatch.setenv("RNNEXP_STREAMS_RUN", str(streams_run))
    monkeypatch.setenv("RNNEXP_FORECAST_RUN", str(forecast_run))
    notebook = execute("demonstrations.ipynb")
    # sine predictions, carried streams, forecasts, MSE per forecast step, confusion matrix, misclassified digits
    assert images(notebook) == 6
    # The text cell printed what the text run's checkpoint generates for the notebook's seed.
    generated = demonstrations.generate_text(text, prompt="\n", length=300, temperature=0.8, seed=1)
    assert generated in text_of(notebook) and "Set TEXT_RUN" not in text_of(notebook)
