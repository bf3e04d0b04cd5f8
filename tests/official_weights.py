"""ImageNet weights files in the layout Keras downloads, filled with seeded random numbers.

No package ships ImageNet weights, and the tests run offline. So the tests write files that
Keras cannot tell from the published ones, except by their numbers (and md5), into a Keras
cache folder ($KERAS_HOME/models/), where `weights="imagenet"` finds them without a download.
Then Keras's own code runs as in Colab: get_file() finds the cached file and checks its md5,
and model.load_weights() reads it. Only the md5 check is stubbed (tests/keras_md5_stub.py):
a file of other numbers cannot have the published md5.

Where the layout comes from (Keras 3.15.1 and 3.13.2, the same in both):

- The file name and the URL: what `keras/src/applications/<base>.py` passes to
  `keras/src/utils/file_utils.py: get_file` for `weights="imagenet", include_top=False`, e.g.
  `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5`. `requested_file` asks Keras for it, so
  it is always the name the installed Keras wants.
- The structure: what `keras/src/legacy/saving/legacy_h5_format.py:
  load_weights_from_hdf5_group` reads, which is the Keras 1/2 `save_weights` .h5 format:
  - a root attribute `layer_names`: every layer of the model, in order, weightless ones
    (input, pooling, activations) included;
  - one group per layer, with an attribute `weight_names`: empty for a weightless layer, else
    the layer's weights in the order `trainable_weights + non_trainable_weights`;
  - in that group, one float32 dataset per weight name, of the weight's shape.
  The loader drops the layers without weights, then gives the n-th saved layer to the n-th
  layer of the model that has weights, checking the count and every shape.
- The names inside: the published VGG16 file (made with Keras 1, fchollet/deep-learning-models
  release v0.1) names its weights `block1_conv1_W_1:0` and `block1_conv1_b_1:0`, as the code
  that reads that file by hand shows; its input layer is `input_1`. The files of the newer
  bases were made with tf.keras 2, which names a weight after its TensorFlow variable,
  `<layer>/<weight>:0` (`conv1_conv/kernel:0`). The loader reads names only to find datasets.
- No `keras_version` or `backend` attribute: Keras 3 reads them, then uses neither.

`tests/test_official_weights.py` compares this layout with what Keras itself writes in the
legacy .h5 format for the same model, and checks that the numbers in a model built with
`weights="imagenet"` are the file's, layer by layer.
"""

import hashlib
import warnings
import zlib
from pathlib import Path

import h5py
import keras
import numpy as np

# The bases of the series (part 2 and notebook 05) and the options they are built with.
BASES = {
    "VGG16": (keras.applications.VGG16, {}),
    "MobileNetV3Small": (keras.applications.MobileNetV3Small, {"include_preprocessing": True}),
    "EfficientNetV2B0": (keras.applications.EfficientNetV2B0, {"include_preprocessing": True}),
    "ResNet50V2": (keras.applications.ResNet50V2, {}),
    "ConvNeXtTiny": (keras.applications.ConvNeXtTiny, {"include_preprocessing": True}),
}
SEED = 20261207


class _Asked(Exception):
    pass


def requested_file(base: str) -> tuple:
    """(file name, URL) that Keras downloads for `base` with weights="imagenet", no top."""
    from keras.src.utils import file_utils

    build, options = BASES[base]
    original = file_utils.get_file

    def ask(fname=None, origin=None, *args, **kwargs):
        raise _Asked(fname, origin)

    file_utils.get_file = ask
    try:
        with warnings.catch_warnings():  # MobileNetV3: weights made at 224 pixels, not 32
            warnings.simplefilter("ignore", UserWarning)
            build(include_top=False, weights="imagenet", input_shape=(32, 32, 3), **options)
    except _Asked as asked:
        return asked.args
    finally:
        file_utils.get_file = original
    raise AssertionError(f"{base}: Keras loaded weights without asking for a file")


def layer_weights(layer) -> list:
    """A layer's weights in the order the .h5 loader fills them."""
    return list(layer.trainable_weights) + list(layer.non_trainable_weights)


def published_weight_names(base: str, layer) -> list:
    if base == "VGG16":  # Keras 1 names: W (kernel) and b (bias)
        return [f"{layer.name}_W_1:0", f"{layer.name}_b_1:0"]
    return [f"{layer.name}/{weight.name}:0" for weight in layer_weights(layer)]


def seeded_values(layer_name: str, index: int, weight) -> np.ndarray:
    """Random numbers of the weight's shape, the same for the same layer and weight every time.

    Scaled like trained weights (no exploding activations): kernels as Glorot, biases and
    means near 0, scales and variances near 1.
    """
    rng = np.random.default_rng([SEED, zlib.crc32(layer_name.encode()), index])
    shape, name = tuple(weight.shape), weight.name
    if "variance" in name:
        return rng.uniform(0.5, 1.5, shape).astype("float32")
    if name == "gamma":
        return rng.uniform(0.8, 1.2, shape).astype("float32")
    if len(shape) >= 2:  # kernels
        receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
        fan_in, fan_out = shape[-2] * receptive, shape[-1] * receptive
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape).astype("float32")
    return rng.normal(0.0, 0.05, shape).astype("float32")


def write_weights_file(base: str, path: Path) -> Path:
    """Write `base`'s no-top ImageNet weights file, in the published layout, to `path`."""
    build, options = BASES[base]
    model = build(include_top=False, weights=None, **options)
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as file:
        names = [layer.name for layer in model.layers]
        if base == "VGG16":
            names[0] = "input_1"  # the published file's input layer
        file.attrs["layer_names"] = np.array([name.encode() for name in names])
        for name, layer in zip(names, model.layers):
            group = file.create_group(name)
            weights = layer_weights(layer)
            weight_names = published_weight_names(base, layer) if weights else []
            group.attrs["weight_names"] = np.array([n.encode() for n in weight_names], dtype="S")
            for index, (weight_name, weight) in enumerate(zip(weight_names, weights)):
                group.create_dataset(weight_name, data=seeded_values(name, index, weight))
    return path


def md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fill_keras_cache(keras_home: Path, bases=tuple(BASES)) -> dict:
    """Write the bases' weights files into keras_home/models/; {path: md5} of each file.

    A file already there from this process is kept.
    """
    written = {}
    for base in bases:
        file_name, _ = requested_file(base)
        path = Path(keras_home) / "models" / file_name
        if not path.exists():
            write_weights_file(base, path.with_suffix(".partial"))
            path.with_suffix(".partial").rename(path)
        written[str(path)] = md5(path)
    return written


def text(names) -> list:
    return [name.decode() if isinstance(name, bytes) else str(name) for name in names]


def read_weights_file(path: Path) -> dict:
    """{layer name: [arrays]} from a weights file in this layout, read by name, not position."""
    with h5py.File(path, "r") as file:
        return {
            layer: [
                np.asarray(file[layer][weight])
                for weight in text(file[layer].attrs["weight_names"])
            ]
            for layer in text(file.attrs["layer_names"])
        }
