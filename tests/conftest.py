"""Shared test helpers: run notebooks headless and offline, make image folders.

Notebooks run in their own Jupyter kernel (papermill). To change what that kernel sees, the
tests give it start-up code: IPython runs every file in $IPYTHONDIR/profile_default/startup/
when a kernel starts. Nothing test-specific lives in the notebooks or the plumbing module.
"""

import contextlib
import os
import sys
from pathlib import Path


@contextlib.contextmanager
def _stderr_to_devnull():
    """File descriptor 2 to /dev/null: some C++ start-up notes ignore TF_CPP_MIN_LOG_LEVEL."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


# This process imports TensorFlow too: quietly (its C++ start-up notes would reach the
# terminal at the end of a run on several workers). The kernels the tests start get the
# environment as it was, so the notebooks' own quiet start is what the quiet-output tests check.
_tf_log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
with _stderr_to_devnull():
    import keras  # noqa: E402
    import tensorflow  # noqa: E402, F401  (loaded now, while the C++ notes are off)

if _tf_log_level is None:
    del os.environ["TF_CPP_MIN_LOG_LEVEL"]
else:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _tf_log_level
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import run_series  # noqa: E402
import tutorial_plumbing as plumbing  # noqa: E402

# tfds.load / builder.as_dataset('cats_vs_dogs') return fake examples with the real features.
MOCK_TFDS = """
import tensorflow_datasets as tfds

tfds.core.DatasetBuilder.is_prepared = lambda self: True
_tfds_mock = tfds.testing.mock_data(num_examples={num_examples})  # kept: its patches live with it
_tfds_mock.__enter__()
"""

# No name resolves: every download fails at once, as it does on a machine without internet.
OFFLINE = """
import socket


def _no_network(*args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, "no network (simulated by the tests)")


socket.getaddrinfo = _no_network
"""

# What TensorFlow, Jupyter and Keras print that a reader should not have to read.
NOISE = [
    "oneDNN",
    "cudart_stub",
    "cuInit",
    "absl::InitializeLog",
    "running over TCP",
    "`shuffle=True` was passed",
    "tf.lite.Interpreter is deprecated",
    "XNNPACK",
    "INFO:tensorflow",
]

# Small and quick: enough to exercise every cell, not to learn anything about cats.
TINY = {
    "IMG_SIZE": 32,
    "BATCH_SIZE": 8,
    "EPOCHS": 2,
    "FINE_TUNE_EPOCHS": 1,
    "WEIGHTS": None,
    "SEED": 7,
}


@contextlib.contextmanager
def kernel_startup(folder: Path, scripts: dict):
    """Make kernels started inside this block run `scripts` ({file name: code}) first."""
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    for name, code in scripts.items():
        (startup / name).write_text(code)
    before = os.environ.get("IPYTHONDIR")
    os.environ["IPYTHONDIR"] = str(folder)
    try:
        yield
    finally:
        if before is None:
            del os.environ["IPYTHONDIR"]
        else:
            os.environ["IPYTHONDIR"] = before


def run_notebooks(
    run_dir: Path, prefixes, parameters: dict, startup: dict | None = None, language=None
):
    """Run the series' notebooks named by prefixes into run_dir; return them executed.

    language: None for the English notebooks, "pt-BR" for the generated Portuguese ones.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    executed = {}
    notebooks = run_series.series_notebooks(list(prefixes), language or "en")
    with kernel_startup(run_dir.parent / f"{run_dir.name}-ipython", startup or {}):
        for notebook in notebooks:
            output = run_series.run_notebook(notebook, run_dir, parameters)
            executed[notebook.name[:2]] = nbformat.read(output, as_version=4)
    return executed


def notebook_text(notebook) -> str:
    """Everything a notebook printed, as one string."""
    parts = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(str(output.get("data", {}).get("text/plain", "")))
            parts.extend(output.get("traceback", []))
    return "\n".join(parts)


def write_two_class_folder(root: Path, per_class: int = 60, seed: int = 0) -> Path:
    """A folder whose classes are easy to tell apart (reddish vs bluish), JPEG and PNG mixed."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(["reds", "blues"]):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            height, width = rng.integers(40, 90, size=2)
            pixels = rng.integers(0, 90, size=(height, width, 3))
            pixels[..., 0 if label == 0 else 2] += 150
            image = Image.fromarray(pixels.astype(np.uint8))
            extension = "jpg" if index % 2 else "png"
            image.save(root / name / f"{name}_{index:03d}.{extension}")
    return root


@pytest.fixture(scope="session")
def easy_folder(tmp_path_factory) -> Path:
    return write_two_class_folder(tmp_path_factory.mktemp("photos") / "my_photos")


@pytest.fixture
def restore_policy():
    """Put back the global dtype policy a test changes."""
    before = keras.mixed_precision.global_policy().name
    yield
    keras.mixed_precision.set_global_policy(before)


def build_notebook_02_model(image_size=32, seed=0):
    """The model exactly as notebook 02's build cell makes it, with random weights.

    The cell itself is run (weights=None, no download), so tests and the benchmark's drift
    check use the notebook's code, not a copy of it.
    """
    path = Path(__file__).resolve().parent.parent / "notebooks" / "02_feature_extraction.ipynb"
    notebook = nbformat.read(path, as_version=4)
    (build_cell,) = [cell.source for cell in notebook.cells if "vgg16.VGG16(" in cell.source]
    keras.utils.set_random_seed(seed)
    namespace = {
        "IMG_SIZE": image_size,
        "WEIGHTS": None,
        "explain_weights_download": contextlib.nullcontext,
        "print_trainable_counts": lambda model: None,
        "vgg16_preprocessing": plumbing.vgg16_preprocessing,
    }
    exec("import keras\nfrom keras import layers\nfrom keras.applications import vgg16", namespace)
    exec(build_cell, namespace)
    return namespace["model"]
