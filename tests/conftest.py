"""Shared test helpers: run notebooks headless and offline, make image folders.

Notebooks run in their own Jupyter kernel (papermill). To change what that kernel sees, the
tests give it start-up code: IPython runs every file in $IPYTHONDIR/profile_default/startup/
when a kernel starts. Nothing test-specific lives in the notebooks or the plumbing module.
"""

import atexit
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# The kernels, and the programs the tests start, import the helpers of this tree (its
# tutorial_plumbing/ comes before any installed copy), as the test process itself does.
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))

# Keras reads $KERAS_HOME once, when it is imported. The test processes, and the kernels they
# start, use a cache folder of their own: tests/official_weights.py writes ImageNet weights
# files there in the published layout, so WEIGHTS = "imagenet" runs Keras's own code offline.
KERAS_HOME = Path(tempfile.mkdtemp(prefix="tests-keras-home-"))
os.environ["KERAS_HOME"] = str(KERAS_HOME)
atexit.register(shutil.rmtree, KERAS_HOME, ignore_errors=True)


# This process imports TensorFlow too: quietly (its C++ start-up notes would reach the
# terminal at the end of a run on several workers). The kernels the tests start get the
# environment as it was, so the notebooks' own quiet start is what the quiet-output tests check.
from tutorial_plumbing.machine import hide_c_messages  # noqa: E402  (no TensorFlow yet)

_tf_log_level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
with hide_c_messages():
    import keras  # noqa: E402
    import tensorflow  # noqa: E402, F401  (loaded now, while the C++ notes are off)

if _tf_log_level is None:
    del os.environ["TF_CPP_MIN_LOG_LEVEL"]
else:
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = _tf_log_level
import cats_vs_dogs_archive  # noqa: E402
import keras_md5_stub  # noqa: E402
import nbformat  # noqa: E402
import numpy as np  # noqa: E402
import official_weights  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import run_series  # noqa: E402
from tutorial_plumbing.data_in import resize_image  # noqa: E402
from tutorial_plumbing.model import build_model  # noqa: E402
from tutorial_plumbing.your_images import load_image  # noqa: E402

# The official-format weights files written into KERAS_HOME so far, {path: md5}. Keras's md5
# check accepts them (tests/keras_md5_stub.py): in this process now, in kernels at start-up.
WEIGHTS_FILES = {}
keras_md5_stub.install(WEIGHTS_FILES)
_WEIGHTS_WRITTEN = set()
KERAS_MD5_STUB = """
import sys

sys.path.insert(0, {tests!r})
import keras_md5_stub

sys.path.pop(0)
keras_md5_stub.install({files!r})
"""


def imagenet_weights(*bases) -> dict:
    """Write the bases' ImageNet weights files (once per process); kernel start-up code for them.

    With it, a notebook's WEIGHTS = "imagenet" loads them through Keras's own get_file and
    load_weights, as in Colab, without a download.
    """
    for base in bases:
        if base not in _WEIGHTS_WRITTEN:
            WEIGHTS_FILES.update(official_weights.fill_keras_cache(KERAS_HOME, [base]))
            _WEIGHTS_WRITTEN.add(base)
    return {"keras_md5_stub.py": KERAS_MD5_STUB.format(tests=str(TESTS), files=WEIGHTS_FILES)}


def vgg16_weights_file() -> Path:
    """The VGG16 no-top weights file in KERAS_HOME, as Keras downloads it."""
    imagenet_weights("VGG16")
    return KERAS_HOME / "models" / official_weights.requested_file("VGG16")[0]


_ARCHIVE = {}


def cats_vs_dogs_download(data_dir: Path) -> dict:
    """A TFDS data folder where cats_vs_dogs is downloaded but not prepared; kernel start-up code.

    The archive (tests/cats_vs_dogs_archive.py) is written once per process. Kernels started with
    the returned code use data_dir, and our check that the download host answers passes; any
    real connection still fails.
    """
    if not _ARCHIVE:
        folder = Path(tempfile.mkdtemp(prefix="tests-cats-vs-dogs-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        _ARCHIVE["path"] = folder / "kagglecatsanddogs_5340.zip"
        _ARCHIVE["content"] = cats_vs_dogs_archive.write_archive(_ARCHIVE["path"])
    cats_vs_dogs_archive.put_in_tfds_download_cache(_ARCHIVE["path"], data_dir)
    return {
        "offline.py": OFFLINE,
        "pretend_host_answers.py": cats_vs_dogs_archive.PRETEND_HOST_ANSWERS,
        "tfds_data_dir.py": f"import os\nos.environ['TFDS_DATA_DIR'] = {str(data_dir)!r}\n",
    }


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
    "triggered tf.function retracing",
    "<module '",  # a cell whose last line returns a module shows it
]

# How far a number computed at a given precision (a layer's compute_dtype) may fall from the
# float32 result, for values up to about 1: a few steps of that precision's last digit. Tests
# that compare numbers use the tolerance of the policy in force (bfloat16 keeps 8 bits).
TOLERANCE = {"float32": 1e-5, "float16": 4e-3, "bfloat16": 3e-2}

# Small and quick: enough to exercise every cell, not to learn anything about cats.
TINY = {
    "IMG_SIZE": 32,
    "BATCH_SIZE": 8,
    "EPOCHS": 2,
    "FINE_TUNE_EPOCHS": 1,
    "WEIGHTS": "imagenet",  # the default, from the official-format files in KERAS_HOME
    "SEED": 7,
}


def ipython_dir(folder: Path, scripts: dict) -> Path:
    """An IPYTHONDIR whose kernels first run `scripts` ({file name: code}), in name order."""
    startup = folder / "profile_default" / "startup"
    startup.mkdir(parents=True, exist_ok=True)
    for name, code in scripts.items():
        (startup / name).write_text(code)
    return folder


# pytest names the running test in this variable. A kernel that sees it does not capture what
# C++ code writes to file descriptor 2 (ipykernel leaves that to pytest), so such lines would
# never reach a notebook in the tests. Kernels start without it, as they do for a reader.
PYTEST_VARIABLE = "PYTEST_CURRENT_TEST"


@contextlib.contextmanager
def kernel_startup(folder: Path, scripts: dict):
    """Make kernels started inside this block run `scripts` ({file name: code}) first."""
    before = {name: os.environ.get(name) for name in ("IPYTHONDIR", PYTEST_VARIABLE)}
    os.environ["IPYTHONDIR"] = str(ipython_dir(folder, scripts))
    os.environ.pop(PYTEST_VARIABLE, None)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def run_notebooks(
    run_dir: Path,
    prefixes,
    parameters: dict,
    startup: dict | None = None,
    language=None,
    bases=("VGG16",),
):
    """Run the series' notebooks named by prefixes into run_dir; return them executed.

    language: None for the English notebooks, "pt-BR" for the generated Portuguese ones.
    bases: the ImageNet weights files the kernels find in KERAS_HOME.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    executed = {}
    notebooks = run_series.series_notebooks(list(prefixes), language or "en")
    scripts = {**imagenet_weights(*bases), **(startup or {})}
    with kernel_startup(run_dir.parent / f"{run_dir.name}-ipython", scripts):
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


def build_notebook_02_model(image_size=32, seed=0, weights=None):
    """The model as notebook 02 builds it (random weights by default).

    Its build_model comes from tutorial_plumbing/model.py, which tools/save_lesson_code.py keeps
    equal to the notebook's own cell (test_hygiene checks it). weights="imagenet" loads the
    official-format file from KERAS_HOME.
    """
    if weights == "imagenet":
        imagenet_weights("VGG16")
    keras.utils.set_random_seed(seed)
    return build_model(image_size, weights)


# What the tests check of a run: models reloaded as a reader would, accuracy and loss by hand.


def images_of(path: Path, image_size: int) -> np.ndarray:
    """A photo file as the series feeds it to the model: RGB, resized, 0-255, a batch of one."""
    return resize_image(load_image(path), image_size).numpy()[None]


def predict_in_a_clean_process(model_path: Path, images: np.ndarray, folder: Path) -> np.ndarray:
    """keras.models.load_model(path) in a new Python that cannot import this project."""
    np.save(folder / "images.npy", images)
    script = (
        "import importlib.util, sys\n"
        "import keras, numpy as np\n"
        # An installed copy of the helpers (a clone's editable install) is taken away first.
        "sys.meta_path = [f for f in sys.meta_path if '__editable__' not in repr(f)]\n"
        "assert importlib.util.find_spec('tutorial_plumbing') is None, 'project code is visible'\n"
        "model = keras.models.load_model(sys.argv[1])\n"
        "np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))\n"
    )
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IPYTHONDIR")}
    environment["TF_CPP_MIN_LOG_LEVEL"] = "3"
    result = subprocess.run(
        [sys.executable, "-I", "-c", script, str(model_path), "images.npy", "predictions.npy"],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return np.load(folder / "predictions.npy")[:, 0]


def split_images(data, split: str) -> tuple:
    images, labels = [], []
    for batch, batch_labels in data.batches(split, TINY["IMG_SIZE"], 8):
        images.append(batch.numpy())
        labels.append(batch_labels.numpy())
    return np.concatenate(images), np.concatenate(labels)


def accuracy_and_loss(probabilities, labels) -> tuple:
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    loss = -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped))
    return float(np.mean((probabilities > 0.5) == labels)), float(loss)


def read_json(path: Path):
    return json.loads(path.read_text())
