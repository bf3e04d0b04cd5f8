"""Bad parameters stop a notebook before any work, with one line that says what to do."""

import keras
import papermill
import pytest
from conftest import TINY, build_notebook_02_model, run_notebooks

from tutorial_plumbing.messages import CannotContinue
from tutorial_plumbing.parameters import check_parameters
from tutorial_plumbing.saving import load_model_from, saved_image_size

GOOD = {
    "IMG_SIZE": 224,
    "BATCH_SIZE": 32,
    "EPOCHS": 10,
    "FINE_TUNE_EPOCHS": 5,
    "SEED": 42,
    "LEARNING_RATE": 1e-5,
    "THRESHOLD": 0.5,
    "WEIGHTS": "imagenet",
    "IMAGE_PATH": None,
}

# (parameter, bad value, words the message must contain)
BAD = [
    ("IMG_SIZE", 16, ["IMG_SIZE = 16", "at least 32"]),
    ("IMG_SIZE", 31, ["at least 32"]),
    ("IMG_SIZE", "224", ["IMG_SIZE", "text '224'", "type a number"]),
    ("IMG_SIZE", 224.0, ["whole number"]),
    ("IMG_SIZE", True, ["whole number"]),
    ("BATCH_SIZE", 0, ["BATCH_SIZE = 0", "at least 1"]),
    ("BATCH_SIZE", "32 ", ["type a number"]),
    ("EPOCHS", -1, ["EPOCHS = -1", "at least 1"]),
    ("EPOCHS", 2.5, ["whole number"]),
    ("EPOCHS", None, ["whole number"]),
    ("FINE_TUNE_EPOCHS", 0, ["FINE_TUNE_EPOCHS = 0"]),
    ("FINE_TUNE_EPOCHS", "five", ["text 'five'"]),
    ("SEED", "42", ["SEED", "type a number"]),
    ("LEARNING_RATE", 0, ["LEARNING_RATE = 0", "above 0"]),
    ("LEARNING_RATE", -1e-5, ["above 0"]),
    ("LEARNING_RATE", "1e-5", ["type a number"]),
    ("THRESHOLD", 1.5, ["THRESHOLD = 1.5", "from 0 to 1"]),
    ("THRESHOLD", -0.1, ["from 0 to 1"]),
    ("THRESHOLD", "0.5", ["type a number"]),
    ("WEIGHTS", "None", ["None (no quotes)"]),
    ("WEIGHTS", "ImageNet", ['"imagenet"']),
    ("WEIGHTS", "/no/such/weights.h5", ["no file at /no/such/weights.h5", "None"]),
    ("WEIGHTS", 3, ["not understood"]),
    ("IMAGE_PATH", "/no/such/photo.jpg", ["no file at /no/such/photo.jpg", "IMAGE_PATH = None"]),
]


def test_good_parameters_pass(tmp_path):
    check_parameters(**GOOD)
    weights = tmp_path / "vgg16_notop.h5"
    weights.write_bytes(b"not checked here: Keras reads it")
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"")
    check_parameters(WEIGHTS=None, IMAGE_PATH=str(photo), THRESHOLD=0, SEED=0)
    check_parameters(WEIGHTS=str(weights), THRESHOLD=1, IMG_SIZE=32, EPOCHS=1)


@pytest.mark.parametrize(("name", "value", "words"), BAD, ids=lambda x: repr(x)[:24])
def test_bad_parameter_is_one_line_that_says_what_to_do(name, value, words):
    with pytest.raises(CannotContinue) as caught:
        check_parameters(**dict(GOOD, **{name: value}))
    message = str(caught.value)
    assert "\n" not in message
    assert "What to do" in message
    for word in words:
        assert word in message


def test_a_misspelt_check_is_a_programming_error():
    with pytest.raises(TypeError):
        check_parameters(IMG_SIZ=224)


@pytest.fixture(scope="module")
def model_32(tmp_path_factory):
    path = tmp_path_factory.mktemp("saved") / "head_trained.keras"
    build_notebook_02_model(image_size=32).save(path)
    return path


def test_saved_image_size_reads_the_file_without_loading_it(model_32, tmp_path):
    assert saved_image_size(model_32) == 32
    sequential = keras.Sequential([keras.Input((40, 40, 3)), keras.layers.Conv2D(2, 3)])
    sequential.save(tmp_path / "sequential.keras")
    assert saved_image_size(tmp_path / "sequential.keras") == 40
    (tmp_path / "broken.keras").write_bytes(b"not a zip")
    assert saved_image_size(tmp_path / "broken.keras") is None


def test_a_model_saved_for_another_image_size_is_one_line(model_32):
    with pytest.raises(CannotContinue) as caught:
        load_model_from(model_32, made_by="02_feature_extraction.ipynb", image_size=64)
    message = str(caught.value)
    assert "\n" not in message
    assert "IMG_SIZE = 64" in message and "32-pixel" in message
    assert "02_feature_extraction.ipynb" in message
    model = load_model_from(model_32, made_by="02", image_size=32)
    assert model.input_shape == (None, 32, 32, 3)


def test_part_3_with_another_image_size_stops_at_the_model(tmp_path, model_32):
    """In the notebook: one line of traceback, before any data is read."""
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "head_trained.keras").write_bytes(model_32.read_bytes())
    parameters = dict(TINY, IMG_SIZE=48, DATA_DIR=str(tmp_path / "not_read"))
    with pytest.raises(papermill.PapermillExecutionError) as caught:
        run_notebooks(run_dir, ["03"], parameters)
    error = caught.value
    assert error.ename == "CannotContinue"
    assert "IMG_SIZE = 48" in error.evalue and "32-pixel" in error.evalue
    assert len(error.traceback) == 1  # the message alone, no wall of traceback
    assert "load_model_from" in error.source
