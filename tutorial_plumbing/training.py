"""Training: parameter counts, histories, JSON files, the weights download, saved models."""

import contextlib
import json
from pathlib import Path

import keras
import numpy as np
from keras.applications import vgg16

from .messages import CannotContinue


def count_parameters(model) -> tuple:
    """(trainable, frozen) parameter counts."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


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


VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


@contextlib.contextmanager
def explain_weights_download():
    """Turn a failed download of the ImageNet weights into a message that says what to do."""
    try:
        yield
    except Exception as error:
        if not isinstance(error, OSError) and "URL fetch failure" not in str(error):
            raise
        file_name = VGG16_WEIGHTS_URL.rsplit("/", 1)[1]
        raise CannotContinue(
            f"Could not download the ImageNet weights for VGG16: {error}\n"
            "What to do, one of:\n"
            "  - connect to the internet and run the cell again;\n"
            "  - set WEIGHTS = None for a dry run with random weights (it runs, learns little);\n"
            f"  - download {VGG16_WEIGHTS_URL} by hand and put it in ~/.keras/models/"
            f" (Keras looks there first), or set WEIGHTS to the path of {file_name}."
        ) from None


def load_model_from(path, made_by: str):
    """Load a model the series saved, or say which notebook makes it."""
    path = Path(path)
    if not path.exists():
        raise CannotContinue(
            f"No model at {path}.\nWhat to do: run {made_by} first with the same ARTIFACTS_DIR. "
            "In Colab, put ARTIFACTS_DIR on Google Drive so it survives between sessions."
        )
    # The model applies vgg16.preprocess_input in a Lambda layer: tell Keras what that name is.
    return keras.models.load_model(
        path, custom_objects={"preprocess_input": vgg16.preprocess_input}
    )
