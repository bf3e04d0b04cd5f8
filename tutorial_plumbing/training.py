"""Training: parameter counts, histories, JSON files, the weights download, saved models."""

import contextlib
import csv
import json
import shutil
import zipfile
from pathlib import Path

import keras
import numpy as np
from keras.applications import vgg16

from .messages import CannotContinue


def vgg16_preprocessing(name="preprocess"):
    """vgg16.preprocess_input as a small model of its own: RGB to BGR, minus ImageNet's mean colour.

    It is Keras's own `vgg16.preprocess_input` run on the model's input, so it gives exactly its
    numbers, in float32 whatever the dtype policy (the input is float32). Two things depend on
    how it is built:

    - It has no weights. Keras loads VGG16's ImageNet weights (`weights="imagenet"`, or the path
      of the .h5 file) by position: the n-th layer with weights gets the n-th saved layer. The
      base is built on this model's output (`input_tensor=`), so every layer before it counts
      too; a layer with weights here would shift them all by one, and the file would not load.
    - It is made of Keras operations, not a `Lambda` around Python code, so the saved .keras
      file describes it completely and `keras.models.load_model(path)` loads it in any program.
    """
    pixels = keras.Input(shape=(None, None, 3), name="rgb_0_255")
    return keras.Model(pixels, vgg16.preprocess_input(pixels), name=name)


def count_parameters(model) -> tuple:
    """(trainable, frozen) parameter counts."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


# Layers whose work is multiply-adds: every output number reads every kernel weight that
# reaches it once.
MULTIPLY_ADD_LAYERS = (
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.SeparableConv2D,
    keras.layers.Dense,
)


def count_multiply_adds(model) -> int:
    """Multiply-adds for one image through `model`, counted from its layers.

    A convolution or dense layer costs (output positions) x (its kernel weights). Normalisation,
    activations, pooling and additions are left out: in these networks they are a small part
    of the work. Models nested inside `model` (a Sequential block) are counted layer by layer.
    """
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            total += count_multiply_adds(layer)
        elif isinstance(layer, MULTIPLY_ADD_LAYERS):
            kernel = sum(int(np.prod(w.shape)) for w in layer.weights if w.name.endswith("kernel"))
            positions = int(np.prod(layer.output.shape[1:-1]))  # pixels; 1 for a vector
            total += positions * kernel
    return total


def print_trainable_counts(model) -> None:
    trainable, frozen = count_parameters(model)
    layers = [layer.name for layer in model.layers if layer.trainable_weights]
    print(f"Trainable parameters: {trainable:,}   frozen: {frozen:,}")
    print(f"Layers that will learn: {', '.join(layers) or 'none'}")


def save_json(data, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2))


def load_json(path):
    return json.loads(Path(path).read_text())


def history_dict(history) -> dict:
    """A Keras History as plain lists of floats, ready for JSON."""
    return {name: [float(value) for value in values] for name, values in history.history.items()}


def start_epoch_log(folder):
    """A CSVLogger for fit() that goes on with the log of a training cut off, or starts anew.

    `folder` holds the log and, in folder/backup, what BackupAndRestore saved. Without a backup
    there is nothing to resume, so an old log is dropped.
    """
    folder = Path(folder)
    log = folder / "epochs.csv"
    if not (folder / "backup").exists() and log.exists():
        log.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    return keras.callbacks.CSVLogger(str(log), append=True)


def finish_epoch_log(folder) -> dict:
    """Every epoch's numbers, from all pieces of a training (as history_dict); then `folder` goes.

    An epoch logged twice (cut off after the log, before the backup) counts once: its last run.
    """
    folder = Path(folder)
    rows = {}
    with open(folder / "epochs.csv", newline="") as file:
        for row in csv.DictReader(file):
            rows[int(row.pop("epoch"))] = {name: float(value) for name, value in row.items()}
    shutil.rmtree(folder, ignore_errors=True)
    names = rows[min(rows)]
    return {name: [rows[epoch][name] for epoch in sorted(rows)] for name in names}


VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


def download_failed(error) -> bool:
    """True for the errors Keras raises when it cannot download a file (no network, no server)."""
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


@contextlib.contextmanager
def explain_weights_problem(weights):
    """Turn what goes wrong with VGG16's weights into a message that says what to do.

    WEIGHTS = "imagenet": a failed download. WEIGHTS = a path: a file Keras cannot load into
    the model (another network's weights, a full model, not an .h5 file). Any other error,
    from building the model for instance, is not about the weights and passes unchanged.
    """
    file_name = VGG16_WEIGHTS_URL.rsplit("/", 1)[1]
    try:
        yield
    except Exception as error:
        if weights == "imagenet" and download_failed(error):
            raise CannotContinue(
                f"Could not download the ImageNet weights for VGG16: {error}\n"
                "What to do, one of:\n"
                "  - connect to the internet and run the cell again;\n"
                "  - set WEIGHTS = None for a dry run with random weights"
                " (it runs, learns little);\n"
                f"  - download {VGG16_WEIGHTS_URL} by hand and put it in ~/.keras/models/"
                f" (Keras looks there first), or set WEIGHTS to the path of {file_name}."
            ) from None
        if weights not in (None, "imagenet") and isinstance(error, ValueError | OSError):
            keras_says = str(error).strip().splitlines()[0]
            raise CannotContinue(
                f"WEIGHTS = {str(weights)!r}: Keras cannot load this file into VGG16 without "
                f"its top ({keras_says}).\nWhat to do: use the file Keras downloads for it, "
                f'{file_name}, or set WEIGHTS = "imagenet".'
            ) from None
        raise


def saved_image_size(path):
    """The image size a .keras file's model takes (its input's height), read from its config.

    Reads only the small config.json inside the file: no weights, no model built. None when
    the file gives no single size.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            config = json.loads(archive.read("config.json"))
        shape = config["config"]["layers"][0]["config"]["batch_shape"]
    except (OSError, KeyError, IndexError, TypeError, ValueError, zipfile.BadZipFile):
        return None
    height, width = shape[1:3]
    return height if height == width and isinstance(height, int) else None


def load_model_from(path, made_by: str, image_size=None):
    """Load a model the series saved, or say which notebook makes it.

    With `image_size` (IMG_SIZE), first check that the model takes images of that size.
    """
    path = Path(path)
    if not path.exists():
        raise CannotContinue(
            f"No model at {path}.\nWhat to do: run {made_by} first with the same ARTIFACTS_DIR. "
            "In Colab, put ARTIFACTS_DIR on Google Drive so it survives between sessions."
        )
    saved_size = saved_image_size(path)
    if image_size is not None and saved_size is not None and saved_size != image_size:
        raise CannotContinue(
            f"IMG_SIZE = {image_size}, but the model in {path.name} takes {saved_size}-pixel "
            f"images. What to do: set IMG_SIZE = {saved_size}, as in {made_by}, or run "
            f"{made_by} again with IMG_SIZE = {image_size}."
        )
    # Plain Keras loading, as in your own program: the model needs no code of this series.
    return keras.models.load_model(path)
