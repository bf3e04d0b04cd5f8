"""The series end to end: notebooks 01-04 run headless, offline, on tiny settings.

Two runs, as a reader would make them:
- TFDS cats_vs_dogs (fake examples from tfds.testing.mock_data), the uncached path with
  augmentation;
- a generated two-class folder whose classes are easy to tell apart, given by DATA_DIR
  only, on the feature-cache path. This run must learn: if labels were wired wrong,
  accuracy would stay near chance.
"""

import json
from pathlib import Path

import numpy as np
import papermill
import pytest
from conftest import MOCK_TFDS, OFFLINE, TINY, notebook_text, run_notebooks

import tutorial_plumbing as plumbing

SERIES = ["01", "02", "03", "04"]


@pytest.fixture(scope="module")
def tfds_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("tfds") / "run"
    parameters = dict(TINY, USE_FEATURE_CACHE=False)
    startup = {"mock_tfds.py": MOCK_TFDS.format(num_examples=24)}
    return run_dir, run_notebooks(run_dir, SERIES, parameters, startup)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, easy_folder):
    run_dir = tmp_path_factory.mktemp("folder") / "run"
    parameters = dict(TINY, EPOCHS=10, DATA_DIR=str(easy_folder), USE_FEATURE_CACHE=True)
    return run_dir, run_notebooks(run_dir, SERIES, parameters)


def read_json(path: Path):
    return json.loads(path.read_text())


def test_tfds_run_writes_every_artifact(tfds_run):
    run_dir, executed = tfds_run
    for name in [
        "sample_images.png",
        "data_counts.json",
        "head_trained.keras",
        "head_trained.json",
        "checkpoints/head_best.keras",
        "fine_tuned.keras",
        "fine_tuned.json",
        "training_curves.png",
        "metrics.json",
        "confusion_matrix.png",
        "grad_cam.png",
        "saved_model/saved_model.pb",
        "fine_tuned.tflite",
        "evaluation.json",
    ]:
        assert (run_dir / name).is_file(), name
    counts = read_json(run_dir / "data_counts.json")
    assert counts["class_names"] == ["cat", "dog"]
    assert set(counts["counts"]) == {"train", "validation", "test"}
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["feature_cache"] is False
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert "Trainable parameters" in notebook_text(executed["02"])


def test_folder_run_learns_the_two_classes(folder_run):
    run_dir, _ = folder_run
    head = read_json(run_dir / "head_trained.json")
    history = head["history"]
    assert history["val_loss"][-1] < 0.8 * history["val_loss"][0], "the head did not learn"
    assert max(history["val_accuracy"]) >= 0.9
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["class_names"] == ["blues", "reds"]
    assert metrics["feature_cache"] is True
    assert metrics["test_accuracy"] >= 0.9, "labels wired wrong? test accuracy near chance"


def test_evaluation_agrees_with_fine_tuning_and_exports_predict_the_same(folder_run):
    run_dir, executed = folder_run
    evaluation = read_json(run_dir / "evaluation.json")
    metrics = read_json(run_dir / "metrics.json")
    test = evaluation["test"]
    assert test["accuracy"] == pytest.approx(metrics["test_accuracy"])
    assert sum(map(sum, test["confusion_matrix"])) == metrics["test_images"]
    assert test["roc_auc"] >= 0.9
    sweep = evaluation["threshold_sweep"]
    assert [row["threshold"] for row in sweep] == sorted(row["threshold"] for row in sweep)
    exports = evaluation["exports"]
    assert exports[".keras"]["max_difference"] == 0.0
    for name in ("SavedModel", "TFLite"):
        assert exports[name]["size_mib"] > 1
        assert exports[name]["max_difference"] < 0.02, name
    assert "P(reds) =" in notebook_text(executed["04"])


def test_fine_tuning_unfroze_block5_only(folder_run):
    run_dir, executed = folder_run
    model = plumbing.load_model_from(run_dir / "fine_tuned.keras", made_by="03")
    learning = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert learning == {"block5_conv1", "block5_conv2", "block5_conv3", "head_dense", "probability"}
    text = notebook_text(executed["03"])
    assert "Layers that will learn: block5_conv1, block5_conv2, block5_conv3" in text


def test_reloaded_model_scores_the_test_split_as_the_notebook_did(folder_run, easy_folder):
    """The .keras file, reloaded here, predicts what the notebook measured through the cache."""
    run_dir, _ = folder_run
    metrics = read_json(run_dir / "metrics.json")
    model = plumbing.load_model_from(run_dir / "fine_tuned.keras", made_by="03")
    data = plumbing.load_two_class_data(str(easy_folder), seed=TINY["SEED"])
    probabilities, labels = [], []
    for images, batch_labels in data.batches("test", TINY["IMG_SIZE"], 8):
        probabilities.append(model.predict_on_batch(images)[:, 0])
        labels.append(batch_labels.numpy())
    probabilities, labels = np.concatenate(probabilities), np.concatenate(labels)
    accuracy = np.mean((probabilities > 0.5) == labels)
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    assert accuracy == pytest.approx(metrics["test_accuracy"])
    assert loss == pytest.approx(metrics["test_loss"], abs=0.02)


def test_fine_tuning_without_part_2_names_the_notebook_to_run(tmp_path, easy_folder):
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebooks(tmp_path / "run", ["03"], dict(TINY, DATA_DIR=str(easy_folder)))
    assert error.value.ename == "CannotContinue"
    assert "02_feature_extraction.ipynb" in error.value.evalue


def short_error(executed_path: Path) -> list:
    """The traceback lines the failing cell shows the reader."""
    import nbformat

    notebook = nbformat.read(executed_path, as_version=4)
    errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1
    return errors[0].traceback


def test_weights_download_failure_says_what_to_do(tmp_path, easy_folder):
    startup = {
        "offline.py": OFFLINE,
        "keras_home.py": f"import os\nos.environ['KERAS_HOME'] = {str(tmp_path / 'keras')!r}\n",
    }
    parameters = dict(TINY, DATA_DIR=str(easy_folder), WEIGHTS="imagenet")
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebooks(tmp_path / "run", ["02"], parameters, startup)
    assert error.value.ename == "CannotContinue"
    assert "Could not download the ImageNet weights" in error.value.evalue
    assert "WEIGHTS = None" in error.value.evalue
    assert plumbing.VGG16_WEIGHTS_URL in error.value.evalue
    assert len(short_error(tmp_path / "run" / "02_feature_extraction.ipynb")) == 1


def test_dataset_download_failure_says_what_to_do(tmp_path):
    startup = {
        "offline.py": OFFLINE,
        "tfds_home.py": f"import os\nos.environ['TFDS_DATA_DIR'] = {str(tmp_path / 'tfds')!r}\n",
    }
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebooks(tmp_path / "run", ["01"], TINY, startup)
    assert error.value.ename == "CannotContinue"
    assert "Cannot reach download.microsoft.com" in error.value.evalue
    assert "DATA_DIR" in error.value.evalue
    assert len(short_error(tmp_path / "run" / "01_explore_the_data.ipynb")) == 1
