"""The series end to end: notebooks 01-04 run headless, offline, on tiny settings.

Every run uses WEIGHTS = "imagenet", the default: Keras's own loader reads official-format
weights files from KERAS_HOME (tests/official_weights.py). Runs as a reader would make them:
- TFDS cats_vs_dogs through TFDS's own builder, from a small archive in the real one's layout
  (tests/cats_vs_dogs_archive.py: cats red, dogs blue, 1,738 files to skip), on the
  feature-cache path. It must learn, and a red photo must come out as a cat;
- a generated two-class folder whose classes are easy to tell apart (reds and blues), given
  by DATA_DIR only, on the feature-cache path. This run must learn, and a new red photo must
  come out as "reds" from every saved copy of the model: if labels were wired wrong or
  swapped, it would not;
- the same folder on the path without the cache, with augmentation (parts 2 and 3), with
  WEIGHTS = None (random weights, the dry run): it must learn too;
- a folder with random labels, where validation loss turns up early: the weights kept must be
  the best epoch's, not the last one's.
"""

from pathlib import Path

import keras
import numpy as np
import official_weights
import papermill
import pytest
import tensorflow as tf
from cats_vs_dogs_archive import CORRUPT_IN_REAL_ARCHIVE, PER_CLASS
from conftest import (
    NOISE,
    OFFLINE,
    TINY,
    accuracy_and_loss,
    cats_vs_dogs_download,
    images_of,
    notebook_text,
    predict_in_a_clean_process,
    read_json,
    run_notebooks,
    split_images,
    vgg16_weights_file,
)
from PIL import Image

from tutorial_plumbing.bases import VGG16_WEIGHTS_URL
from tutorial_plumbing.data_in import load_two_class_data
from tutorial_plumbing.saving import load_model_from

SERIES = ["01", "02", "03", "04"]
# New photos, not in the folder: one plainly red, one plainly blue.
COLOURS = {"reds": (230, 30, 30), "blues": (30, 30, 230)}


@pytest.fixture(scope="module")
def new_photos(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("new_photos")
    paths = {}
    for name, colour in COLOURS.items():
        paths[name] = folder / f"plain_{name}.jpg"
        Image.new("RGB", (80, 60), colour).save(paths[name])
    return paths


@pytest.fixture(scope="module")
def tfds_run(tmp_path_factory, new_photos):
    """Parts 1 to 4 with DATA_DIR = None: cats_vs_dogs, prepared by TFDS's own builder."""
    run_dir = tmp_path_factory.mktemp("tfds") / "run"
    startup = cats_vs_dogs_download(run_dir.parent / "tensorflow_datasets")
    parameters = dict(TINY, EPOCHS=10, USE_FEATURE_CACHE=True, IMAGE_PATH=str(new_photos["reds"]))
    return run_dir, run_notebooks(run_dir, SERIES, parameters, startup)


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, easy_folder, new_photos):
    run_dir = tmp_path_factory.mktemp("folder") / "run"
    parameters = dict(
        TINY,
        EPOCHS=10,
        DATA_DIR=str(easy_folder),
        USE_FEATURE_CACHE=True,
        IMAGE_PATH=str(new_photos["reds"]),
    )
    return run_dir, run_notebooks(run_dir, SERIES, parameters)


@pytest.fixture(scope="module")
def uncached_run(tmp_path_factory, easy_folder):
    """Without the cache, and with WEIGHTS = None: the quick dry run a reader can choose."""
    run_dir = tmp_path_factory.mktemp("uncached") / "run"
    parameters = dict(
        TINY, EPOCHS=10, DATA_DIR=str(easy_folder), USE_FEATURE_CACHE=False, WEIGHTS=None
    )
    return run_dir, run_notebooks(run_dir, ["02", "03"], parameters)


@pytest.fixture(scope="module")
def random_labels_folder(tmp_path_factory) -> Path:
    """Two classes of the same kind of noise: nothing to learn, so validation loss rises early."""
    root = tmp_path_factory.mktemp("random_labels") / "photos"
    rng = np.random.default_rng(3)
    for name in ("left", "right"):
        (root / name).mkdir(parents=True)
        for index in range(40):
            pixels = rng.integers(0, 256, size=(48, 48, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index:03d}.png")
    return root


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
    assert metrics["data_source"] == "TFDS cats_vs_dogs"
    assert metrics["feature_cache"] is True
    assert metrics["class_names"] == ["cat", "dog"]
    assert metrics["test_images"] == sum(counts["counts"]["test"])
    evaluation = read_json(run_dir / "evaluation.json")
    assert sum(map(sum, evaluation["test"]["confusion_matrix"])) == metrics["test_images"]
    assert evaluation["test"]["accuracy"] == pytest.approx(metrics["test_accuracy"])


def test_tfds_builder_keeps_the_jpegs_skips_the_rest_and_splits_80_10_10(tfds_run):
    """TFDS's own cats_vs_dogs code ran: corrupt files and litter out, cat 0 and dog 1."""
    run_dir, executed = tfds_run
    counts = read_json(run_dir / "data_counts.json")["counts"]
    assert [sum(split) for split in zip(*counts.values())] == [PER_CLASS, PER_CLASS]
    total = 2 * PER_CLASS  # the archive also holds CORRUPT_IN_REAL_ARCHIVE files and litter
    assert {name: sum(split) for name, split in counts.items()} == {
        "train": total * 8 // 10,
        "validation": total // 10,
        "test": total // 10,
    }
    assert CORRUPT_IN_REAL_ARCHIVE == 1738
    assert "Downloading cats_vs_dogs" in notebook_text(executed["01"])  # prepared here, once


def test_tfds_run_learns_cats_and_dogs_the_right_way_round(tfds_run):
    """Cats are red in the archive: a red photo is a cat (class 0), and the model learned."""
    run_dir, _ = tfds_run
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["test_accuracy"] >= 0.9, "labels wired wrong? test accuracy near chance"
    example = read_json(run_dir / "evaluation.json")["example"]
    assert example["answer"] == "cat" and example["P(dog)"] < 0.5


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
    run_dir, _ = folder_run
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


def test_the_saved_models_start_from_the_imagenet_file(folder_run):
    """WEIGHTS = "imagenet" went through Keras's loader: the frozen layers hold the file's numbers.

    Part 2 froze the whole base; part 3 let block5 learn. Random weights, or weights one layer
    off, would differ from the file under the layer's own name.
    """
    run_dir, _ = folder_run
    saved = official_weights.read_weights_file(vgg16_weights_file())
    head = keras.models.load_model(run_dir / "head_trained.keras")
    fine_tuned = keras.models.load_model(run_dir / "fine_tuned.keras")
    layers = [name for name, weights in saved.items() if weights]
    assert len(layers) == 13
    for name in layers:
        models = [head] if name.startswith("block5") else [head, fine_tuned]
        for model in models:
            for got, expected in zip(model.get_layer(name).get_weights(), saved[name]):
                np.testing.assert_array_equal(got, expected, err_msg=f"{model.name} {name}")
    tuned = fine_tuned.get_layer("block5_conv3").get_weights()[0]
    assert not np.array_equal(tuned, saved["block5_conv3"][0]), "fine-tuning changed nothing"


def test_fine_tuning_unfroze_block5_only(folder_run):
    run_dir, executed = folder_run
    model = load_model_from(run_dir / "fine_tuned.keras", made_by="03")
    learning = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert learning == {"block5_conv1", "block5_conv2", "block5_conv3", "head_dense", "probability"}
    text = notebook_text(executed["03"])
    assert "Layers that will learn: block5_conv1, block5_conv2, block5_conv3" in text


def test_saved_models_load_anywhere_and_score_as_the_notebooks_did(
    folder_run, easy_folder, tmp_path
):
    """Plain keras.models.load_model in a process without this project's code, safe mode on.

    The reloaded models score the splits exactly as notebooks 02 and 03 measured them.
    """
    run_dir, _ = folder_run
    data = load_two_class_data(str(easy_folder), seed=TINY["SEED"])
    head, metrics = read_json(run_dir / "head_trained.json"), read_json(run_dir / "metrics.json")
    checks = [  # (file, split, accuracy and loss the notebook measured on that split)
        ("head_trained.keras", "validation", head["val_accuracy_kept"], head["val_loss_kept"]),
        ("fine_tuned.keras", "test", metrics["test_accuracy"], metrics["test_loss"]),
    ]
    for file_name, split, expected_accuracy, expected_loss in checks:
        images, labels = split_images(data, split)
        probabilities = predict_in_a_clean_process(run_dir / file_name, images, tmp_path)
        accuracy, loss = accuracy_and_loss(probabilities, labels)
        assert accuracy == pytest.approx(expected_accuracy), file_name
        assert loss == pytest.approx(expected_loss, abs=0.02), file_name


def test_a_new_red_photo_is_reds_and_a_blue_one_blues_in_every_saved_copy(folder_run, new_photos):
    run_dir, _ = folder_run
    metrics = read_json(run_dir / "metrics.json")
    reds = metrics["class_names"].index("reds")
    assert reds == 1, "class 1 is the second folder name in sorted order"
    keras_model = keras.models.load_model(run_dir / "fine_tuned.keras")
    serving = tf.saved_model.load(str(run_dir / "saved_model"))
    interpreter = tf.lite.Interpreter(model_path=str(run_dir / "fine_tuned.tflite"))
    interpreter.allocate_tensors()
    tflite_input = interpreter.get_input_details()[0]["index"]
    tflite_output = interpreter.get_output_details()[0]["index"]
    for name, path in new_photos.items():
        image = images_of(path, TINY["IMG_SIZE"])
        interpreter.set_tensor(tflite_input, image)
        interpreter.invoke()
        p_reds = {
            ".keras": float(keras_model.predict(image, verbose=0)[0, 0]),
            "SavedModel": float(serving.serve(image).numpy()[0, 0]),
            "TFLite": float(interpreter.get_tensor(tflite_output)[0, 0]),
        }
        for copy, probability in p_reds.items():
            if name == "reds":
                assert probability > 0.5, f"{copy}: a red photo got P(reds) = {probability:.3f}"
            else:
                assert probability < 0.5, f"{copy}: a blue photo got P(reds) = {probability:.3f}"


def test_notebook_04_calls_a_new_red_photo_reds(folder_run, new_photos):
    run_dir, executed = folder_run
    example = read_json(run_dir / "evaluation.json")["example"]
    assert example["path"] == str(new_photos["reds"])
    assert example["answer"] == "reds"
    assert example["P(reds)"] > 0.5
    assert f"P(reds) = {example['P(reds)']:.3f} -> reds" in notebook_text(executed["04"])


def test_part_2_trains_the_head_only(folder_run):
    run_dir, executed = folder_run
    model = keras.models.load_model(run_dir / "head_trained.keras")
    learning = {layer.name for layer in model.layers if layer.trainable and layer.weights}
    assert learning == {"head_dense", "probability"}
    assert "Layers that will learn: head_dense, probability" in notebook_text(executed["02"])


def test_grad_cam_explains_the_last_convolution(folder_run):
    """The heatmaps come from the layer whose features the head reads."""
    run_dir, _ = folder_run
    model = keras.models.load_model(run_dir / "fine_tuned.keras")
    convolutions = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    assert read_json(run_dir / "evaluation.json")["grad_cam_layer"] == convolutions[-1]


def test_the_path_without_the_cache_learns_with_augmentation(uncached_run):
    run_dir, executed = uncached_run
    head = read_json(run_dir / "head_trained.json")
    assert head["feature_cache"] is False
    assert head["val_accuracy_kept"] >= 0.9, "the head did not learn without the cache"
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["feature_cache"] is False
    assert metrics["test_accuracy"] >= 0.9
    assert "Augmentation layers:" in notebook_text(executed["02"])


def test_the_weights_kept_are_the_best_epochs_not_the_last(tmp_path, random_labels_folder):
    """Nothing to learn: early stopping ends the run, and the weights kept are the best epoch's
    (the ones ModelCheckpoint saved), not the last epoch's.

    Validation loss is noise around 0.693 here. With 8 epochs, a new lowest value in the last
    one happened (under mixed_bfloat16); with room for 20, the run only reaches the cap if every
    third epoch sets a new low, and early stopping ends it 3 epochs after its best."""
    parameters = dict(TINY, EPOCHS=20, DATA_DIR=str(random_labels_folder), USE_FEATURE_CACHE=True)
    run_dir = tmp_path / "run"
    run_notebooks(run_dir, ["02"], parameters)
    head = read_json(run_dir / "head_trained.json")
    val_loss = head["history"]["val_loss"]
    best = int(np.argmin(val_loss))
    assert best < len(val_loss) - 1, f"the run must go on past its best epoch: {val_loss}"
    assert head["val_loss_kept"] == pytest.approx(val_loss[best], abs=1e-5)
    kept = keras.models.load_model(run_dir / "head_trained.keras")
    best_saved = keras.models.load_model(run_dir / "checkpoints" / "head_best.keras")
    for name in ("head_dense", "probability"):
        for ours, saved in zip(
            kept.get_layer(name).get_weights(), best_saved.get_layer(name).get_weights()
        ):
            np.testing.assert_array_equal(ours, saved, err_msg=name)


def test_fine_tuning_keeps_the_best_epoch_on_the_validation_split(folder_run):
    """Part 3's early stopping watches the validation split: never the test split."""
    run_dir, _ = folder_run
    history = read_json(run_dir / "fine_tuned.json")["history"]
    metrics = read_json(run_dir / "metrics.json")
    assert metrics["val_loss_kept"] == pytest.approx(min(history["val_loss"]), abs=1e-4)


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
    assert error.value.ename == "WeightsNotDownloaded"  # a CannotContinue: one line
    assert "Could not download the ImageNet weights" in error.value.evalue
    assert "WEIGHTS = None" in error.value.evalue
    assert VGG16_WEIGHTS_URL in error.value.evalue
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


def test_notebook_outputs_are_quiet(tfds_run):
    """No TensorFlow C++ notes, no avoidable warnings: what remains is for the reader."""
    _, executed = tfds_run
    for name, notebook in executed.items():
        text = notebook_text(notebook)
        for noise in NOISE:
            assert noise not in text, f"{noise!r} in notebook {name}"
