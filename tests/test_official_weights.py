"""WEIGHTS = "imagenet" and WEIGHTS = <file>, through Keras's own loader, on files in the published
layout (tests/official_weights.py): the layout is right, every base loads, the numbers arrive.
"""

import h5py
import keras
import numpy as np
import official_weights
import pytest
from conftest import (
    KERAS_HOME,
    TINY,
    build_notebook_02_model,
    imagenet_weights,
    run_notebooks,
    vgg16_weights_file,
)
from keras.src.legacy.saving import legacy_h5_format
from keras.src.utils import file_utils

from tutorial_plumbing.bases import vgg16_preprocessing
from tutorial_plumbing.messages import CannotContinue

VGG16_LAYERS_WITH_WEIGHTS = [
    f"block{block}_conv{number}"
    for block, convolutions in enumerate([2, 2, 3, 3, 3], start=1)
    for number in range(1, convolutions + 1)
]


def names(attribute) -> list:
    return [name.decode() if isinstance(name, bytes) else str(name) for name in attribute]


def structure(path) -> dict:
    """What Keras's .h5 loader reads of a file: layer names, and per layer each weight's shape."""
    with h5py.File(path, "r") as file:
        layers = names(file.attrs["layer_names"])
        weight_names = {layer: names(file[layer].attrs["weight_names"]) for layer in layers}
        return {
            "layer_names": layers,
            "weights": {
                layer: [
                    (tuple(file[layer][weight].shape), file[layer][weight].dtype.name)
                    for weight in weight_names[layer]
                ]
                for layer in layers
            },
            "weight_names": weight_names,
        }


def test_the_vgg16_file_has_the_structure_keras_itself_writes(tmp_path):
    """Compared with VGG16(weights=None, include_top=False) saved in the legacy .h5 format."""
    ours = structure(vgg16_weights_file())
    reference_path = tmp_path / "keras_writes.h5"
    with h5py.File(reference_path, "w") as file:
        model = keras.applications.VGG16(include_top=False, weights=None)
        legacy_h5_format.save_weights_to_hdf5_group(file, model)
    keras_writes = structure(reference_path)
    # The same layers in the same order, weightless ones too; only the input's name differs.
    assert ours["layer_names"][1:] == keras_writes["layer_names"][1:]
    assert ours["layer_names"][0] == "input_1"
    assert ours["weights"] == {
        ours_name: keras_writes["weights"][keras_name]
        for ours_name, keras_name in zip(ours["layer_names"], keras_writes["layer_names"])
    }
    with_weights = [name for name, weights in ours["weights"].items() if weights]
    assert with_weights == VGG16_LAYERS_WITH_WEIGHTS
    # Keras 3 names a weight by its path (block1_conv1/kernel); the published file, by Keras 1's
    # names for the kernel (W) and the bias (b).
    for name in with_weights:
        assert keras_writes["weight_names"][name] == [f"{name}/kernel", f"{name}/bias"]
        assert ours["weight_names"][name] == [f"{name}_W_1:0", f"{name}_b_1:0"]
    assert all(dtype == "float32" for weights in ours["weights"].values() for _, dtype in weights)


def test_the_md5_check_runs_on_the_test_files(tmp_path):
    """Keras's check of a cached file still runs: a test file changed afterwards fails it."""
    path = vgg16_weights_file()
    published_md5 = "6d6bbae143d832006294945121d1f1fc"  # keras/src/applications/vgg16.py
    assert file_utils.validate_file(str(path), published_md5)
    changed = tmp_path / path.name
    changed.write_bytes(path.read_bytes() + b"\0")
    official_changed = {str(changed): official_weights.md5(path)}
    plain = file_utils.validate_file.original
    assert not plain(str(changed), official_changed[str(changed)])


def numbers_by_layer(model, names) -> dict:
    return {name: model.get_layer(name).get_weights() for name in names}


def assert_holds_the_files_numbers(model, path, names=VGG16_LAYERS_WITH_WEIGHTS):
    """Each named layer has exactly the numbers stored under its own name in the file."""
    saved = official_weights.read_weights_file(path)
    for name, weights in numbers_by_layer(model, names).items():
        assert len(weights) == len(saved[name]), name
        for got, expected in zip(weights, saved[name]):
            np.testing.assert_array_equal(got, expected, err_msg=name)


@pytest.mark.parametrize("weights", ["imagenet", "file path"])
def test_part_2_model_holds_the_files_numbers_layer_by_layer(weights, restore_policy):
    """Not left random, not one layer off: every VGG16 layer of part 2's model, by name."""
    keras.mixed_precision.set_global_policy("float32")
    path = vgg16_weights_file()
    model = build_notebook_02_model(weights="imagenet" if weights == "imagenet" else str(path))
    assert_holds_the_files_numbers(model, path)
    random = build_notebook_02_model(weights=None)
    assert not np.array_equal(
        random.get_layer("block1_conv1").get_weights()[0],
        model.get_layer("block1_conv1").get_weights()[0],
    )


# MobileNetV3 notes that its weights were made at 224 pixels; these models take 32.
@pytest.mark.filterwarnings("ignore:`input_shape` is undefined or non-square:UserWarning")
@pytest.mark.parametrize("base", list(official_weights.BASES))
def test_every_base_loads_its_imagenet_file_through_keras_own_loader(base):
    """Each base of the series, built as notebook 05 builds it, gets the file's numbers."""
    imagenet_weights(base)
    path = KERAS_HOME / "models" / official_weights.requested_file(base)[0]
    build, options = official_weights.BASES[base]
    inputs = keras.Input(shape=(32, 32, 3))
    if base == "VGG16":
        x = vgg16_preprocessing()(inputs)
    elif base == "ResNet50V2":
        x = keras.layers.Rescaling(1 / 127.5, offset=-1, name="preprocess")(inputs)
    else:
        x = inputs
    model = build(include_top=False, weights="imagenet", input_tensor=x, **options)
    with_weights = [layer for layer in model.layers if layer.weights]
    saved = official_weights.read_weights_file(path)
    saved_with_weights = [weights for weights in saved.values() if weights]
    assert len(with_weights) == len(saved_with_weights)
    for layer, expected in zip(with_weights, saved_with_weights):  # the loader's own order
        for got, want in zip(layer.get_weights(), expected):
            np.testing.assert_array_equal(got, want, err_msg=layer.name)


def test_a_weights_file_that_does_not_fit_stops_with_one_clear_message(tmp_path):
    imagenet_weights("ResNet50V2")
    other_network = KERAS_HOME / "models" / official_weights.requested_file("ResNet50V2")[0]
    not_weights = tmp_path / "notes.h5"
    not_weights.write_text("not a weights file")
    for path in (other_network, not_weights):
        with pytest.raises(CannotContinue) as error:
            build_notebook_02_model(weights=str(path))
        message = str(error.value)
        assert message.startswith(f"WEIGHTS = {str(path)!r}: Keras cannot load this file"), message
        assert "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
        assert len(message.splitlines()) == 2


def test_part_2_with_a_weights_file_path_keeps_the_files_numbers(tmp_path, easy_folder):
    """WEIGHTS = the path of the .h5 file, as a reader sets it after downloading it by hand."""
    copy = tmp_path / "downloads" / vgg16_weights_file().name
    copy.parent.mkdir()
    copy.write_bytes(vgg16_weights_file().read_bytes())
    parameters = dict(TINY, EPOCHS=1, DATA_DIR=str(easy_folder), WEIGHTS=str(copy))
    run_notebooks(tmp_path / "run", ["02"], parameters)
    model = keras.models.load_model(tmp_path / "run" / "head_trained.keras")
    assert_holds_the_files_numbers(model, copy)  # frozen in part 2: still the file's numbers
