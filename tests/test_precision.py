"""Parts 2 to 4 under a number precision forced with TUTORIAL_PRECISION, whatever the machine.

mixed_float16 is the policy a Colab T4 gets (compute capability 7.5). On a CPU, TensorFlow
computes in float16 too, only slowly, so its path through the notebooks runs here: the
float16 feature store, training, evaluation from the store, and the float32 copy that part 4
exports. The checks are what a reader relies on: the model learns, every export predicts what
the model predicts (within the precision's rounding), a reload in a clean program scores the
test split as part 3 did, and no C++ note reaches the page.

.ci/run runs tests/test_series.py once more under mixed_bfloat16, and the Colab environment's
notebook tests under mixed_float16, so each policy the notebooks can pick runs in CI.
"""

import keras
import pytest
from conftest import (
    NOISE,
    TINY,
    accuracy_and_loss,
    notebook_text,
    predict_in_a_clean_process,
    read_json,
    run_notebooks,
    split_images,
)

from tutorial_plumbing.data_in import load_two_class_data
from tutorial_plumbing.machine import FORCE_PRECISION

# How far a float32 export may be from the model, as a probability, by the model's policy.
EXPORT_TOLERANCE = {"float32": 1e-4, "mixed_float16": 0.02, "mixed_bfloat16": 0.05}


@pytest.fixture(scope="module", params=["mixed_float16"])
def forced_run(request, tmp_path_factory, easy_folder):
    policy = request.param
    run_dir = tmp_path_factory.mktemp(policy) / "run"
    startup = {"precision.py": f"import os\nos.environ[{FORCE_PRECISION!r}] = {policy!r}\n"}
    parameters = dict(TINY, EPOCHS=10, DATA_DIR=str(easy_folder), USE_FEATURE_CACHE=True)
    executed = run_notebooks(run_dir, ["02", "03", "04"], parameters, startup)
    return policy, run_dir, executed


def test_the_forced_policy_is_the_one_used_and_said(forced_run):
    policy, run_dir, executed = forced_run
    said = f"Precision: {policy}, because the environment variable TUTORIAL_PRECISION asks for it."
    assert said in notebook_text(executed["02"])
    assert read_json(run_dir / "metrics.json")["precision"] == policy
    model = keras.models.load_model(run_dir / "fine_tuned.keras")
    assert model.get_layer("block1_conv1").dtype_policy.name == policy
    assert model.get_layer("probability").compute_dtype == "float32"


def test_the_model_learns_and_every_export_predicts_like_it(forced_run):
    policy, run_dir, _ = forced_run
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["test_accuracy"] >= 0.9
    exports = read_json(run_dir / "evaluation.json")["exports"]
    assert exports[".keras"]["max_difference"] == 0.0
    for name in ("SavedModel", "TFLite"):
        assert exports[name]["max_difference"] < EXPORT_TOLERANCE[policy], name


def test_a_clean_program_scores_the_test_split_as_part_3_did(forced_run, easy_folder, tmp_path):
    _, run_dir, _ = forced_run
    metrics = read_json(run_dir / "metrics.json")
    data = load_two_class_data(str(easy_folder), seed=TINY["SEED"])
    images, labels = split_images(data, "test")
    probabilities = predict_in_a_clean_process(run_dir / "fine_tuned.keras", images, tmp_path)
    accuracy, loss = accuracy_and_loss(probabilities, labels)
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    assert loss == pytest.approx(metrics["test_loss"], abs=0.02)


def test_no_cpp_note_reaches_the_page(forced_run):
    """float16 on a CPU without AVX-512 makes oneDNN say it falls back; the reader never sees it."""
    _, _, executed = forced_run
    for name, notebook in executed.items():
        text = notebook_text(notebook)
        for noise in NOISE:
            assert noise not in text, f"{noise!r} in notebook {name}"
