"""The pretrained bases: the input each one expects, its ImageNet weights, its cost per image."""

import contextlib

import keras
import numpy as np
from keras.applications import vgg16

from .messages import CannotContinue, say


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


VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


class WeightsNotDownloaded(CannotContinue):
    """A base's ImageNet weights could not be downloaded (no network, no server).

    `cause`: what Keras said, for a short note where the whole message is too much.
    """

    def __init__(self, message, cause):
        super().__init__(message)
        self.cause = cause


def download_failed(error) -> bool:
    """True for the errors Keras raises when it cannot download a file (no network, no server)."""
    return isinstance(error, OSError) or "URL fetch failure" in str(error)


@contextlib.contextmanager
def explain_weights_problem(weights, base="VGG16"):
    """Turn what goes wrong with a base's weights into a message that says what to do.

    WEIGHTS = "imagenet": a failed download (WeightsNotDownloaded). WEIGHTS = a path: a file
    Keras cannot load into the base (another network's weights, a full model, not an .h5
    file). Any other error, from building the model for instance, is not about the weights
    and passes unchanged.
    """
    try:
        yield
    except Exception as error:
        file_name = VGG16_WEIGHTS_URL.rsplit("/", 1)[1]
        if weights == "imagenet" and download_failed(error):
            if base != "VGG16":
                raise WeightsNotDownloaded(
                    say(
                        "Could not download the ImageNet weights for {base}: {error}\n"
                        "What to do: connect to the internet and run the cell again, or set "
                        "WEIGHTS = None for a dry run with random weights.",
                        base=base,
                        error=error,
                    ),
                    cause=str(error),
                ) from None
            raise WeightsNotDownloaded(
                say(
                    "Could not download the ImageNet weights for VGG16: {error}\n"
                    "What to do, one of:\n"
                    "  - connect to the internet and run the cell again;\n"
                    "  - set WEIGHTS = None for a dry run with random weights"
                    " (it runs, learns little);\n"
                    "  - download {url} by hand and put it in ~/.keras/models/"
                    " (Keras looks there first), or set WEIGHTS to the path of {file}.",
                    error=error,
                    url=VGG16_WEIGHTS_URL,
                    file=file_name,
                ),
                cause=str(error),
            ) from None
        if weights not in (None, "imagenet") and isinstance(error, ValueError | OSError):
            keras_says = str(error).strip().splitlines()[0]
            raise CannotContinue(
                say(
                    "WEIGHTS = {weights!r}: Keras cannot load this file into {base} without "
                    "its top ({keras_says}).\nWhat to do: use the file Keras downloads for it, "
                    '{file}, or set WEIGHTS = "imagenet".',
                    weights=str(weights),
                    base=base,
                    keras_says=keras_says,
                    file=file_name if base == "VGG16" else f"{base} (include_top=False)",
                )
            ) from None
        raise


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
