"""Notebook 00 runs headless and its measured claims hold: transfer beats scratch with few labels.

The notebook pretrains a small CNN on the digits 0-4 and learns the digits 5-9 from a few
labels, from scratch and by transfer. To keep the test quick it runs 2 budgets and 2 seeds
instead of the notebook's defaults; the margins asserted below were measured at these
settings and are far larger than the seed-to-seed spread.
"""

import json
import math
from pathlib import Path

import nbformat
import pytest
from conftest import NOISE, notebook_text

import run_series

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "00_why_transfer_learning.ipynb"
PARAMETERS = {"LABELS_PER_CLASS": [1, 5], "N_SEEDS": 2, "SHUFFLED_LABELS_PER_CLASS": 5, "SEED": 42}
METHODS = {"scratch", "transfer", "fine_tuned"}
# Measured with PARAMETERS: transfer - scratch is about +0.20 at 1 label per class, and the
# fine-tuned model is as far ahead. 0.10 leaves room for other CPUs and library versions.
MARGIN = 0.10


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("notebook_00")
    executed = run_series.run_notebook(NOTEBOOK, run_dir, PARAMETERS)
    table = json.loads((run_dir / "transfer_vs_scratch.json").read_text())
    return run_dir, nbformat.read(executed, as_version=4), table


def printed(notebook) -> str:
    return "\n".join(
        output.get("text", "")
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if output.get("output_type") == "stream"
    )


def test_the_table_has_every_method_budget_and_seed(run):
    _, _, table = run
    budgets = [str(n) for n in PARAMETERS["LABELS_PER_CLASS"]]
    assert table["budgets"] == budgets
    assert set(table["methods"]) == METHODS
    for method in METHODS:
        assert set(table["methods"][method]) == set(budgets), method
        for budget in budgets:
            row = table["methods"][method][budget]
            assert len(row["accuracies"]) == PARAMETERS["N_SEEDS"]
            assert row["mean"] == pytest.approx(sum(row["accuracies"]) / len(row["accuracies"]))
            assert row["train_seconds"] > 0


def test_budgets_count_labels_per_class_and_the_test_set_is_fixed(run):
    _, _, table = run
    # Five target classes: a budget of n labels per class is 5 * n labelled images.
    assert table["train_images"] == {str(n): 5 * n for n in PARAMETERS["LABELS_PER_CLASS"]}
    n_test = table["test_images"]
    assert n_test >= 300
    # Every accuracy is a count of correct answers on the same, full test set.
    for method in METHODS:
        for row in table["methods"][method].values():
            for acc in row["accuracies"]:
                assert math.isclose(acc * n_test, round(acc * n_test), abs_tol=1e-6)


def test_transfer_beats_scratch_with_few_labels(run):
    _, _, table = run
    smallest = str(min(PARAMETERS["LABELS_PER_CLASS"]))
    methods = table["methods"]
    scratch = methods["scratch"][smallest]["mean"]
    assert methods["transfer"][smallest]["mean"] >= scratch + MARGIN, methods
    assert methods["fine_tuned"][smallest]["mean"] >= scratch + MARGIN, methods
    # Chance is 0.2 with five classes: the pretrained base, not luck, makes the difference.
    assert methods["transfer"][smallest]["mean"] >= 0.4


def test_shuffled_pixels_take_the_transfer_advantage_away(run):
    _, _, table = run
    budget = str(PARAMETERS["SHUFFLED_LABELS_PER_CLASS"])
    normal, shuffled = table["methods"], table["shuffled_pixels"]["methods"]
    assert table["shuffled_pixels"]["labels_per_class"] == budget
    assert set(shuffled) == {"scratch", "transfer"}
    normal_gain = normal["transfer"][budget]["mean"] - normal["scratch"][budget]["mean"]
    shuffled_gain = shuffled["transfer"]["mean"] - shuffled["scratch"]["mean"]
    # Measured: about +0.14 on normal pixels, about -0.03 on shuffled ones.
    assert normal_gain >= MARGIN
    assert shuffled_gain <= normal_gain - MARGIN


def test_the_plot_is_saved_and_the_notebook_reports_its_time(run):
    run_dir, notebook, _ = run
    plot = run_dir / "transfer_vs_scratch.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Total time, from the Setup cell to here:" in printed(notebook)


def test_notebook_00_is_quiet(run):
    _, notebook, _ = run
    text = notebook_text(notebook)
    for noise in NOISE:
        assert noise not in text, noise
