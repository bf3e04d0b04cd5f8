"""Notebook 05 runs headless and offline: every base measured the same way, never on the test split.

One run compares all five bases on the generated two-class folder (32-pixel images, two epochs,
WEIGHTS = "imagenet": each base loads its official-format file through Keras's own loader) and
saves each model. A second run finds only VGG16's file and no internet, so the other base's
download fails, as it does for a reader offline: that base must be skipped with a message.
"""

import ast
import json
import shutil
from pathlib import Path

import keras
import nbformat
import numpy as np
import pytest
from conftest import (
    OFFLINE,
    TINY,
    TOLERANCE,
    imagenet_weights,
    notebook_text,
    run_notebooks,
    vgg16_weights_file,
)

import run_series
from tutorial_plumbing.bases import count_multiply_adds
from tutorial_plumbing.feature_store import check_store_layer, reads_only_from
from tutorial_plumbing.messages import CannotContinue
from tutorial_plumbing.your_images import scan_image_folder, split_scan

NOTEBOOK = Path(__file__).resolve().parent.parent / "notebooks" / "05_choose_a_base.ipynb"
BASES = ["VGG16", "MobileNetV3Small", "EfficientNetV2B0", "ResNet50V2", "ConvNeXtTiny"]
COLUMNS = [
    "validation_accuracy",
    "validation_loss",
    "base_parameters",
    "multiply_adds",
    "images_per_second",
    "cache_seconds",
    "train_seconds",
    "imagenet_top1",
]
# Quoted in the notebook from keras.io/api/applications/; the others are not listed there.
IMAGENET_TOP1 = {"VGG16": 0.713, "ResNet50V2": 0.760, "EfficientNetV2B0": 0.787}
HEAD_LAYERS = {"head_dense", "probability"}
# Bases whose preprocessing the notebook adds, and the Keras function it must match.
ADDED_PREPROCESSING = {
    "VGG16": keras.applications.vgg16.preprocess_input,
    "ResNet50V2": keras.applications.resnet_v2.preprocess_input,
}


@pytest.fixture(scope="module")
def run(tmp_path_factory, easy_folder):
    run_dir = tmp_path_factory.mktemp("bases") / "run"
    parameters = dict(TINY, DATA_DIR=str(easy_folder), BASES=" ".join(BASES), SAVE_MODELS=True)
    executed = run_notebooks(run_dir, ["05"], parameters, bases=BASES)["05"]
    table = json.loads((run_dir / "bases.json").read_text())
    return run_dir, executed, table


@pytest.fixture(scope="module")
def saved_models(run) -> dict:
    """Each base's saved model, loaded once with plain keras.models.load_model."""
    run_dir = run[0]
    return {name: keras.models.load_model(run_dir / f"base_{name}.keras") for name in BASES}


def rows(table) -> dict:
    return {row["base"]: row for row in table["bases"]}


def test_the_table_has_every_base_with_every_column(run):
    run_dir, _, table = run
    assert [row["base"] for row in table["bases"]] == BASES
    for name, row in rows(table).items():
        assert row["skipped"] is None, name
        for column in COLUMNS:
            assert column in row, (name, column)
        for column in ["multiply_adds", "images_per_second", "cache_seconds", "base_parameters"]:
            assert row[column] > 0, (name, column)
        assert 0 <= row["validation_accuracy"] <= 1
        assert row["imagenet_top1"] == IMAGENET_TOP1.get(name), name
    assert (run_dir / "bases.png").stat().st_size > 0


def test_the_bases_differ_in_work_as_published(run):
    """Multiply-adds are counted from the layers: their order must be the well-known one."""
    _, _, table = run
    work = {name: row["multiply_adds"] for name, row in rows(table).items()}
    assert sorted(work, key=work.get) == [
        "MobileNetV3Small",
        "EfficientNetV2B0",
        "ResNet50V2",
        "ConvNeXtTiny",
        "VGG16",
    ]


def test_each_model_has_its_preprocessing_inside_and_its_base_frozen(run, saved_models):
    run_dir, _, table = run
    pixels = np.random.default_rng(0).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    for name, row in rows(table).items():
        assert row["preprocessing"], f"{name}: no preprocessing layer inside the model"
        assert set(row["trainable_layers"]) == HEAD_LAYERS, name
        model = saved_models[name]
        assert {layer.name for layer in model.layers if layer.trainable_weights} == HEAD_LAYERS
        first = model.layers[1]
        assert f"{first.name} ({type(first).__name__})" == row["preprocessing"][0], name
        last = model.get_layer(row["preprocessing"][-1].split(" ")[0])
        base_starts = model.layers[model.layers.index(last) + 1]  # reads what the last one made
        preprocessed = keras.Model(model.input, base_starts.input)(pixels).numpy()
        if name in ADDED_PREPROCESSING:
            expected = ADDED_PREPROCESSING[name](pixels.copy())
            # VGG16's is float32 under every policy; ResNet50V2's Rescaling computes at the
            # policy's precision, so it is as close as that precision allows.
            atol = 1e-3 if name == "VGG16" else max(1e-3, TOLERANCE[last.compute_dtype])
            np.testing.assert_allclose(preprocessed, expected, rtol=1e-5, atol=atol)
        else:  # the base's own layers: scaled and centred, not 0-255 any more
            assert np.abs(preprocessed).max() < 5, name


def test_the_test_split_plays_no_part(run, easy_folder):
    _, _, table = run
    assert table["splits_used"] == ["train", "validation"]
    splits = split_scan(scan_image_folder(easy_folder), TINY["SEED"])
    for row in table["bases"]:
        assert row["train_images"] == len(splits["train"])
        assert row["validation_images"] == len(splits["validation"])
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    for cell in notebook.cells:
        if cell.cell_type == "code" and "plumbing" not in cell.metadata.get("tags", []):
            assert '"test"' not in cell.source and "'test'" not in cell.source


def test_the_lines_to_change_name_layers_that_exist(run, saved_models):
    """Part 3's UNFREEZE_FROM and part 4's Grad-CAM layer, as the notebook gives them."""
    run_dir, executed, table = run
    source = next(c.source for c in executed.cells if "UNFREEZE_FROM_FOR = {" in c.source)
    assignment = next(
        node
        for node in ast.parse(source).body
        if getattr(node, "targets", [None])[0].id == "UNFREEZE_FROM_FOR"
    )
    unfreeze_from = ast.literal_eval(assignment.value)
    assert set(unfreeze_from) == set(BASES)
    for name in BASES:
        model = saved_models[name]
        names = [layer.name for layer in model.layers]
        last_frozen = names[names.index(unfreeze_from[name]) - 1]
        # The frozen store: the unfrozen part must read only the last frozen layer.
        if name == "ConvNeXtTiny":  # the notebook says: no store in parts 2 and 3
            assert not reads_only_from(model, last_frozen)
            with pytest.raises(CannotContinue, match="USE_FEATURE_CACHE = False"):
                check_store_layer(model, last_frozen)
        else:
            assert reads_only_from(model, last_frozen), name
            keras.Model(model.get_layer(last_frozen).output, model.output)
        # Part 4's Grad-CAM layer: the base's last layer, the one the head reads.
        grad_cam_layer = model.get_layer(names[names.index("pooled_features") - 1])
        assert model.get_layer("pooled_features").input is grad_cam_layer.output, name
    assert "change these lines" in notebook_text(executed) or "nothing to change" in notebook_text(
        executed
    )


def test_count_multiply_adds_matches_the_arithmetic():
    # VGG16's 13 convolutions at 224 pixels: 3x3 kernels, 'same' padding, halving after blocks.
    blocks = [(224, [(3, 64), (64, 64)]), (112, [(64, 128), (128, 128)])]
    blocks += [
        (56, [(128, 256), (256, 256), (256, 256)]),
        (28, [(256, 512), (512, 512), (512, 512)]),
    ]
    blocks += [(14, [(512, 512)] * 3)]
    expected = sum(
        side * side * 9 * c_in * c_out for side, convs in blocks for c_in, c_out in convs
    )
    vgg16 = keras.applications.VGG16(include_top=False, weights=None, input_shape=(224, 224, 3))
    assert count_multiply_adds(vgg16) == expected
    # A dense layer on a feature map works at every pixel; nested models are counted inside.
    inputs = keras.Input((4, 4, 3))
    x = keras.layers.DepthwiseConv2D(3, padding="same")(inputs)  # 4*4 * 3*3*3
    x = keras.Sequential([keras.layers.Dense(5)])(x)  # 4*4 * 3*5
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(x)))  # 80*2
    assert count_multiply_adds(model) == 16 * 27 + 16 * 15 + 160


def test_a_base_whose_weights_cannot_be_downloaded_is_skipped(tmp_path, easy_folder):
    """Only VGG16's weights file in the cache, and no internet: MobileNetV3Small is skipped."""
    keras_home = tmp_path / "keras_home"
    (keras_home / "models").mkdir(parents=True)
    vgg16 = keras_home / "models" / vgg16_weights_file().name
    shutil.copy(vgg16_weights_file(), vgg16)
    startup = {
        "keras_home.py": f"import os\nos.environ['KERAS_HOME'] = {str(keras_home)!r}\n",
        "offline.py": OFFLINE,
        **imagenet_weights("VGG16"),
    }
    startup["keras_md5_stub.py"] = startup["keras_md5_stub.py"].replace(
        repr(str(vgg16_weights_file())), repr(str(vgg16))
    )
    run_dir = tmp_path / "run"
    parameters = dict(TINY, EPOCHS=1, DATA_DIR=str(easy_folder), BASES="VGG16 MobileNetV3Small")
    executed = run_notebooks(run_dir, ["05"], parameters, startup)["05"]
    printed = notebook_text(executed)
    assert "Skipped MobileNetV3Small: could not download its ImageNet weights" in printed
    table = rows(json.loads((run_dir / "bases.json").read_text()))
    assert "URL fetch failure" in table["MobileNetV3Small"]["skipped"]  # Keras's own download
    assert all(table["MobileNetV3Small"][column] is None for column in COLUMNS)
    assert table["VGG16"]["skipped"] is None
    assert table["VGG16"]["validation_accuracy"] is not None


def test_the_series_runs_it_only_when_asked():
    """Optional: it downloads four more bases' weights, so run_series.py runs it on request."""
    assert NOTEBOOK not in run_series.series_notebooks()
    assert run_series.series_notebooks(["05"]) == [NOTEBOOK]
