"""Speed of the naive transfer-learning recipe against this project's fast path, side by side.

Both run in one process on the same synthetic data, with VGG16 at random weights
(weights=None does the same arithmetic as the ImageNet weights):

  naive    phase 1  model.fit on the whole model (images in, base frozen) in float32: the frozen
                    VGG16 runs on every image in every epoch. Images come as in the notebooks
                    with USE_FEATURE_CACHE=False: augmented in the input pipeline, decoded once
                    and kept in memory (batches(..., keep_in_memory=True)).
           phase 2  a fine-tuning epoch of the whole model in float32, fed the same way: forward
                    through every block, backward through block5 and the head.
  project  phase 1  one pass of tutorial_plumbing.cache_features through the frozen base, at the
                    precision choose_precision() picks for this machine, then head epochs on
                    cached_batches (notebook 02 with USE_FEATURE_CACHE).
           phase 2  block4_pool outputs cached once to files (FeatureFile), then block5 + head
                    epochs on cached_batches (notebook 03 with USE_FEATURE_CACHE).
  series   parts 2 to 4 as the notebooks run them with USE_FEATURE_CACHE: the frozen store
                    (tutorial_plumbing.frozen_store) runs blocks 1 to 4 once per image for all
                    three splits; part 2 trains the head for 10 epochs on pooled features made
                    from the store, part 3 fine-tunes block5 + head for 3 epochs on it, part 4
                    predicts the test split from it. Timed whole, tracing included, against
                    the usual recipe's cost for the same epochs (scaled from its timed
                    batches, as above) plus its tracing once per part (from its warm-ups).
                    The images through block1_conv1 are counted: frozen_passes_per_image.

The images are JPEGs of cats_vs_dogs-like sizes (about 500x375) written to a temporary folder
and read by tutorial_plumbing.load_two_class_data(folder).batches(), which decodes and resizes
them in a tf.data pipeline, so every image pays its decoding as it would in the notebooks.

The naive recipe is too slow to run in full. It is timed on a few batches after one warm-up step
(the first call traces the graph; its time is reported, not counted) and scaled linearly:
measured seconds per image x images x epochs. Its validation passes are costed at the float32
forward rate on in-memory tensors, which leaves out their decoding: this flatters the naive side.
The project side is timed in full on every image, tracing included, except that the feature
extractor is traced before the extraction rate is taken.

The plumbing switches tf.data's autotuner off in every dataset it makes
(tutorial_plumbing.without_autotune), so the datasets timed here are exactly the notebooks'
datasets. To show whether that matters, the benchmark also times passes over the training
pipeline with the autotuner off and on.

Peak memory (ru_maxrss) is measured in a fresh subprocess per dataset size, running the project
path end to end, to show that it does not grow with the number of images.

Results go to a JSON file with the machine, the date and the library versions. The README's
speed sections are rendered from the files committed in benchmarks/results/, never typed:

    python benchmarks/speed.py --save          # 224 px, 256 images: a few minutes; writes
                                               # benchmarks/results/<cpu>-<cores>cpu.json
    python benchmarks/speed.py --write-readme  # README.md's speed sections from those files
    python benchmarks/speed.py --check-readme  # exit 1, with a diff, if README.md differs
    python benchmarks/speed.py --images 512 --json speed.json
    python benchmarks/speed.py --quick         # smoke test: small and fast, times mean nothing
"""

import argparse
import contextlib
import datetime
import difflib
import gc
import json
import logging
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ notes: fatal ones only


@contextlib.contextmanager
def stderr_to_devnull():
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


with stderr_to_devnull():  # TensorFlow's start-up notes, before the report
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402
from keras.applications import vgg16  # noqa: E402
from PIL import Image  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import tutorial_plumbing as plumbing  # noqa: E402

# Python-side notes that say nothing about speed: retracing of the many small models timed
# here, and tf.data's autotuner option, which the benchmark turns on and off on purpose.
tf.get_logger().setLevel("ERROR")
logging.getLogger("absl").setLevel(logging.ERROR)
# fit() says that it ignores shuffle=True for a tf.data.Dataset: the pipelines shuffle themselves.
warnings.filterwarnings("ignore", message="`shuffle=True` was passed")

SEED = 42
HEAD_EPOCHS = 10  # notebook 02's EPOCHS
HEAD_LEARNING_RATE = 1e-3
FINE_TUNE_LEARNING_RATE = 1e-5  # notebook 03's LEARNING_RATE
FINE_TUNE_EPOCHS_TIMED = 3  # phase 2 epochs run on the cache here (the first one traces)
SERIES_FINE_TUNE_EPOCHS = 3  # part 3's epochs in the series measurement, also with --quick
UNFREEZE_FROM = "block5_conv1"
CACHED_LAYER = "block4_pool"  # the last frozen layer when fine-tuning from block5
# cats_vs_dogs as the notebooks slice it (80/10/10 of the 23,262 images TFDS keeps).
FULL_RUN_IMAGES = {"train": 18610, "validation": 2326, "test": 2326}
FULL_RUN_FINE_TUNE_EPOCHS = 5  # notebook 03's FINE_TUNE_EPOCHS
# (width, height) of the generated JPEGs: cats_vs_dogs images are mostly 500 px on the long side.
JPEG_SIZES = [(500, 375), (500, 375), (375, 500), (500, 333), (400, 300)]
QUICK = {"image_size": 32, "images": 48, "batch_size": 8, "rss_sizes": [24, 96]}
AUTOTUNE_PASSES = 3  # timed passes over the pipeline with tf.data's autotuner off, and on
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"  # committed results, one file per machine
README = REPO_ROOT / "README.md"


# ---------------------------------------------------------------------------------------------
# The machine, the data, the model


def cpu_model() -> str:
    return next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor() or "unknown CPU",
    )


def gpu_names() -> list:
    return [
        tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
        for gpu in tf.config.list_physical_devices("GPU")
    ]


def machine_description(policy: str, load_at_start: float) -> dict:
    return {
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "bfloat16_in_hardware": plumbing.cpu_supports_bfloat16(),
        "gpus": gpu_names(),
        "policy": policy,
        "load_average_at_start": round(load_at_start, 2),
    }


def versions() -> dict:
    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
    }


def machine_file_name() -> str:
    """A results file name from the CPU model and core count (and GPU): amd-epyc-2cpu.json."""
    cleaned = re.sub(r"\((R|TM|tm|r)\)|@.*", " ", cpu_model())
    words = [w.lower() for w in re.findall(r"[A-Za-z]+", cleaned)]
    words = [w for w in words if w not in {"cpu", "processor", "core", "with", "radeon"}][:2]
    name = "-".join(words or ["cpu"]) + f"-{len(os.sched_getaffinity(0))}cpu"
    for gpu in gpu_names()[:1]:
        name += "-" + "-".join(re.findall(r"[a-z0-9]+", gpu.lower().replace("nvidia", "")))
    return name + ".json"


def write_jpeg_folder(folder: Path, count: int, seed: int = SEED) -> float:
    """Two class folders of `count` smooth, slightly noisy JPEGs; returns their mean size in KiB."""
    rng = np.random.default_rng(seed)
    total_bytes = 0
    for index in range(count):
        width, height = JPEG_SIZES[rng.integers(len(JPEG_SIZES))]
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        smooth = Image.fromarray(coarse).resize((width, height), Image.BICUBIC)
        pixels = np.asarray(smooth, np.int16) + rng.integers(-4, 5, (height, width, 1))
        path = folder / ("cats", "dogs")[index % 2] / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
        total_bytes += path.stat().st_size
    return total_bytes / count / 1024


@contextlib.contextmanager
def quiet():
    """Keep the plumbing's messages (folder summary, memory decisions) out of the report."""
    with open(os.devnull, "w") as devnull, contextlib.redirect_stdout(devnull):
        yield


def load_folder_quietly(folder: Path) -> plumbing.TwoClassData:
    with quiet():
        return plumbing.load_two_class_data(folder, seed=SEED)


def build_model(image_size: int) -> keras.Model:
    """Notebook 02's model, at the global dtype policy in force, with random weights."""
    inputs = keras.Input(shape=(image_size, image_size, 3), name="image")
    x = plumbing.vgg16_preprocessing(name="preprocess")(inputs)
    base = vgg16.VGG16(include_top=False, weights=None, input_tensor=x)
    base.trainable = False
    x = layers.GlobalAveragePooling2D(name="pooled_features")(base.output)
    x = layers.Dense(256, activation="relu", name="head_dense")(x)
    x = layers.Dropout(0.5, name="head_dropout")(x)
    outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)
    return keras.Model(inputs, outputs, name="vgg16_transfer")


def unfreeze_from(model, layer_name: str) -> None:
    """Notebook 03: `layer_name` and every layer after it learn; the layers before it are frozen."""
    first = [layer.name for layer in model.layers].index(layer_name)
    for index, layer in enumerate(model.layers):
        layer.trainable = index >= first


def compile_binary(model, learning_rate: float):
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate=learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model


def submodel(model, start: str | None, end: str) -> keras.Model:
    """The layers of `model` from the output of `start` (None: the input) to the output of `end`."""
    inputs = model.input if start is None else model.get_layer(start).output
    outputs = model.output if end == "output" else model.get_layer(end).output
    return keras.Model(inputs, outputs)


def vgg16_gflops(model) -> dict:
    """Floating-point operations per image (2 per multiply-add) counted from the layer shapes."""
    macs = {}
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            height, width = layer.output.shape[1:3]
            macs[layer.name] = height * width * int(np.prod(layer.kernel.shape))
        elif isinstance(layer, layers.Dense):
            macs[layer.name] = int(np.prod(layer.kernel.shape))
    conv = {name: value for name, value in macs.items() if name.startswith("block")}
    block5 = {name: value for name, value in conv.items() if name.startswith("block5")}
    head = sum(value for name, value in macs.items() if name.startswith(("head", "probability")))
    block5_and_head = sum(block5.values()) + head
    # Backward: weight gradients for every trainable layer, input gradients for all but the
    # first one (nothing before block5_conv1 learns).
    block5_train = 3 * block5_and_head - block5[UNFREEZE_FROM]
    return {
        "base_forward": 2e-9 * sum(conv.values()),
        "to_block4_pool_forward": 2e-9 * (sum(conv.values()) - sum(block5.values())),
        "block5_and_head_forward": 2e-9 * block5_and_head,
        "block5_and_head_train_step": 2e-9 * block5_train,
    }


# ---------------------------------------------------------------------------------------------
# Measurements


def machine_busy_seconds() -> float:
    """CPU seconds all processes on this machine have used since boot (steal time included)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]
    idle = fields[3] + fields[4]  # idle, iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def timed(function):
    """(result, wall seconds, cores this process kept busy, cores other processes kept busy).

    Other processes on a small machine take cores from the one measured: `other_cores` above
    about 0.2 means the timing was disturbed and should be taken again.
    """
    cpu, machine, wall = time.process_time(), machine_busy_seconds(), time.perf_counter()
    result = function()
    wall = time.perf_counter() - wall
    ours = (time.process_time() - cpu) / wall
    everyone = (machine_busy_seconds() - machine) / wall
    return result, wall, {"busy_cores": ours, "other_cores": max(0.0, everyone - ours)}


class EpochTimer(keras.callbacks.Callback):
    """Wall seconds of each epoch, validation included."""

    def on_train_begin(self, logs=None):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self.start)


def forward_rate(extractor, image_size: int, batch_size: int, repeats: int) -> dict:
    """Images/s through `extractor` on an in-memory batch, after tracing it (full and odd batch)."""
    images = tf.random.uniform((batch_size, image_size, image_size, 3), 0, 255, seed=SEED)
    _, warmup, _ = timed(
        lambda: (extractor.predict_on_batch(images), extractor.predict_on_batch(images[:1]))
    )
    _, wall, load = timed(lambda: [extractor.predict_on_batch(images) for _ in range(repeats)])
    return {"images_per_s": repeats * batch_size / wall, "warmup_s": warmup} | load


def merge_rates(first: dict, second: dict) -> dict:
    """Two forward_rate() results of equal size as one: the harmonic mean of their rates."""
    merged = {"images_per_s": 2 / (1 / first["images_per_s"] + 1 / second["images_per_s"])}
    for key in ("busy_cores", "other_cores"):
        merged[key] = (first[key] + second[key]) / 2
    return merged | {"warmup_s": first["warmup_s"]}


def stream_rate(batches) -> dict:
    """Images/s out of a dataset of (inputs, labels) batches alone, with no model to feed."""
    count, wall, load = timed(lambda: sum(int(inputs.shape[0]) for inputs, _ in batches))
    return {"images_per_s": count / wall} | load


def autotune_passes(data, image_size: int, batch_size: int, passes: int) -> dict:
    """Seconds per pass over the training pipeline with tf.data's autotuner off, then on.

    Off is how the plumbing builds every dataset (without_autotune); on is the same dataset
    with the option set back. One untimed pass of each comes first (it builds the pipeline);
    then the two alternate, so both see the same machine load.
    """
    off = data.batches("train", image_size, batch_size)
    options = tf.data.Options()
    options.autotune.enabled = True
    on = off.with_options(options)
    seconds = {"off_s": [], "on_s": []}
    for repeat in range(passes + 1):
        for key, dataset in (("off_s", off), ("on_s", on)):
            count, wall, _ = timed(lambda dataset=dataset: sum(len(y) for _, y in dataset))
            if repeat:
                seconds[key].append(wall)
    return seconds | {"images": int(count), "passes": passes}


def fit_on_images_cost(model, data, image_size, batch_size, steps, learning_rate) -> dict:
    """Seconds per image of model.fit on images, from `steps` batches after a warm-up step.

    The images come as in the notebooks without the feature cache: augmented in the input
    pipeline, decoded once and kept in memory.
    """
    compile_binary(model, learning_rate)
    with quiet():
        stream = data.batches(
            "train",
            image_size,
            batch_size,
            shuffle=True,
            seed=SEED,
            augmentation=plumbing.make_augmentation(seed=SEED),
            keep_in_memory=True,
        )
    stream = stream.repeat()
    _, warmup, _ = timed(lambda: model.fit(stream, epochs=1, steps_per_epoch=1, verbose=0))
    _, wall, load = timed(lambda: model.fit(stream, epochs=1, steps_per_epoch=steps, verbose=0))
    images = steps * batch_size
    return {
        "seconds_per_image": wall / images,
        "images_per_s": images / wall,
        "timed_images": images,
        "warmup_s": warmup,
    } | load


def extract(extractor, data, splits, image_size, batch_size, cache_dir=None):
    """plumbing.cache_features over each split: (cached features by split, timing)."""
    cached = {}

    def run():
        for split in splits:
            cache_file = os.path.join(cache_dir, f"{split}.f16") if cache_dir else None
            batches = data.batches(split, image_size, batch_size)
            cached[split] = plumbing.cache_features(extractor, batches, cache_file)

    _, wall, load = timed(run)
    images = sum(len(labels) for _, labels in cached.values())
    return cached, {"seconds": wall, "images": images, "images_per_s": images / wall} | load


def train_on_cache(trained, cached, epochs, batch_size, learning_rate) -> dict:
    """fit() on plumbing.cached_batches with validation, as the notebooks do; epoch timings."""
    compile_binary(trained, learning_rate)
    train = plumbing.cached_batches(*cached["train"], batch_size, shuffle=True, seed=SEED)
    validation = plumbing.cached_batches(*cached["validation"], batch_size)
    timer = EpochTimer()
    fit = lambda: trained.fit(  # noqa: E731
        train, validation_data=validation, epochs=epochs, callbacks=[timer], verbose=0
    )
    _, wall, load = timed(fit)
    steady = statistics.median(timer.seconds[1:] or timer.seconds)
    return {
        "seconds": wall,
        "epoch_seconds": timer.seconds,
        "steady_epoch_s": steady,
        "warmup_s": timer.seconds[0] - steady,
    } | load


def evaluate_on_cache(trained, cached, split, batch_size) -> float:
    batches = plumbing.cached_batches(*cached[split], batch_size)
    return timed(lambda: trained.evaluate(batches, verbose=0))[1]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmRSS:")[1].split()[0]) / 1024


# ---------------------------------------------------------------------------------------------
# The two recipes


def fit_phases_on_images(model, data, settings) -> dict:
    """fit() cost with images in, for phase 1 (base frozen) and then phase 2 (block5 learns)."""
    size, batch, steps = settings["image_size"], settings["batch_size"], settings["naive_steps"]
    phase1 = fit_on_images_cost(model, data, size, batch, steps, HEAD_LEARNING_RATE)
    unfreeze_from(model, UNFREEZE_FROM)
    phase2 = fit_on_images_cost(model, data, size, batch, steps, FINE_TUNE_LEARNING_RATE)
    return {"phase1_fit": phase1, "phase2_fit": phase2}


def run_naive(data, settings) -> dict:
    """Float32, images in, every epoch: phase 1 (frozen base) and phase 2 (block5 learns)."""
    keras.mixed_precision.set_global_policy("float32")
    keras.utils.set_random_seed(SEED)
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size)
    forward = forward_rate(submodel(model, None, "pooled_features"), size, batch, 3)
    return {"forward_float32": forward} | fit_phases_on_images(model, data, settings)


def run_without_cache(data, settings) -> dict:
    """The notebooks with USE_FEATURE_CACHE=False: images in every epoch, at the chosen policy."""
    keras.utils.set_random_seed(SEED)
    return fit_phases_on_images(build_model(settings["image_size"]), data, settings)


def run_project(data, settings, cache_dir: str, policy: str) -> dict:
    """The notebooks' cached path, at the chosen precision, through tutorial_plumbing."""
    keras.utils.set_random_seed(SEED)
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size)
    extractor = submodel(model, None, "pooled_features")
    results = {
        "gflops": vgg16_gflops(model),
        f"forward_{policy}": forward_rate(extractor, size, batch, 3),
        "pipeline_alone": stream_rate(data.batches("train", size, batch)),
    }
    features, results["phase1_extraction"] = extract(
        extractor, data, ["train", "validation"], size, batch
    )
    results["phase1_cache_bytes_per_image"] = sum(f.nbytes for f, _ in features.values()) / sum(
        len(labels) for _, labels in features.values()
    )
    # Measured again right after extraction, so both rates see the same machine load.
    after = forward_rate(extractor, size, batch, 3)
    results[f"forward_{policy}"] = merge_rates(results[f"forward_{policy}"], after)
    head = submodel(model, "pooled_features", "output")
    results["phase1_head"] = train_on_cache(head, features, HEAD_EPOCHS, batch, HEAD_LEARNING_RATE)
    unfreeze_from(model, UNFREEZE_FROM)
    block4 = submodel(model, None, CACHED_LAYER)
    block4.predict_on_batch(tf.zeros((1, size, size, 3)))  # trace once, as forward_rate does
    cached, results["phase2_caching"] = extract(
        block4, data, ["train", "validation", "test"], size, batch, cache_dir
    )
    train_cache = plumbing.cached_batches(*cached["train"], batch, shuffle=True, seed=SEED)
    results["phase2_cache_reading_alone"] = stream_rate(train_cache)
    trained = submodel(model, CACHED_LAYER, "output")
    epochs = train_on_cache(
        trained, cached, settings["fine_tune_epochs"], batch, FINE_TUNE_LEARNING_RATE
    )
    images_per_epoch = len(cached["train"][1]) + len(cached["validation"][1])
    epochs["images_per_s"] = images_per_epoch / epochs["steady_epoch_s"]
    results["phase2_epochs"] = epochs
    results["phase2_test_evaluation_s"] = evaluate_on_cache(trained, cached, "test", batch)
    results["phase2_cache_mb"] = sum(f.nbytes for f, _ in cached.values()) / 2**20
    return results


@contextlib.contextmanager
def counting_images_through(layer):
    """Count the images that go through `layer` (any model, fit or predict) into a list."""
    counted = [0]
    plain_call = type(layer).call

    def record(images):
        counted[0] += int(images)
        return images

    def counted_call(self, inputs, *args, **kwargs):
        if self is layer:
            images = tf.numpy_function(record, [tf.shape(inputs)[0]], tf.int32, stateful=True)
            with tf.control_dependencies([images]):
                inputs = tf.identity(inputs)
        return plain_call(self, inputs, *args, **kwargs)

    type(layer).call = counted_call
    try:
        yield counted
    finally:
        type(layer).call = plain_call


def run_series_path(data, settings, scratch: str) -> dict:
    """Parts 2, 3 and 4 with the frozen store, as the notebooks run them, timed whole.

    Part 2: the store (blocks 1 to 4, once per image, all splits), the pooled features from
    it through block5, HEAD_EPOCHS epochs of the head. Part 3: SERIES_FINE_TUNE_EPOCHS epochs
    of block5 + head on the store, which it reuses (the fingerprint is checked). Part 4: the
    test split's predictions from the store.
    """
    keras.utils.set_random_seed(SEED)
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size)
    store_dir = os.path.join(scratch, "frozen_store")
    results = {}

    def store():
        with quiet():  # its progress lines
            return plumbing.frozen_store(store_dir, data, model, CACHED_LAYER, size, batch)

    def part_2():
        stored, results["store_s"], _ = timed(store)
        rest_of_base = submodel(model, CACHED_LAYER, "pooled_features")
        features, results["pooled_s"], _ = timed(
            lambda: {
                split: plumbing.cache_features(
                    rest_of_base, plumbing.cached_batches(*stored[split], batch)
                )
                for split in ("train", "validation")
            }
        )
        head = submodel(model, "pooled_features", "output")
        results["part2_head"] = train_on_cache(
            head, features, HEAD_EPOCHS, batch, HEAD_LEARNING_RATE
        )

    def part_3():
        unfreeze_from(model, UNFREEZE_FROM)
        stored = store()
        trained = submodel(model, CACHED_LAYER, "output")
        results["part3_epochs"] = train_on_cache(
            trained, stored, SERIES_FINE_TUNE_EPOCHS, batch, FINE_TUNE_LEARNING_RATE
        )
        return stored

    def part_4(stored):
        after_store = submodel(model, CACHED_LAYER, "output")
        test = plumbing.cached_batches(*stored["test"], batch)
        return after_store.predict(test, verbose=0)

    with counting_images_through(model.get_layer("block1_conv1")) as passes:
        _, results["part2_s"], load2 = timed(part_2)
        stored, results["part3_s"], load3 = timed(part_3)
        predictions, results["part4_s"], load4 = timed(lambda: part_4(stored))
    images = sum(len(labels) for _, labels in stored.values())
    assert len(predictions) == len(stored["test"][1])
    results["seconds"] = results["part2_s"] + results["part3_s"] + results["part4_s"]
    results["frozen_passes_per_image"] = passes[0] / images
    results["other_cores"] = max(load["other_cores"] for load in (load2, load3, load4))
    results["store_mb"] = sum(f.nbytes for f, _ in stored.values()) / 2**20
    return results


# ---------------------------------------------------------------------------------------------
# From timings to the figures the issue asks for


def images_in_seconds(fits, forward_images_per_s, counts) -> dict:
    """Seconds of a recipe that takes images in: an epoch of each phase, and the test split.

    `fits` holds the measured fit costs per image ({phase}_fit); validation and test images
    are evaluated at `forward_images_per_s`.
    """
    evaluate = 1 / forward_images_per_s  # s per evaluated image
    epochs = {
        f"{phase}_epoch": counts["train"] * fits[f"{phase}_fit"]["seconds_per_image"]
        + counts["validation"] * evaluate
        for phase in ("phase1", "phase2")
    }
    return epochs | {"test": counts["test"] * evaluate}


def summarize(naive, project, counts, policy) -> dict:
    """Speedups at this run's image counts, and the efficiency of the extraction pipeline."""
    usual = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], counts)
    naive_p1_epoch, naive_p2_epoch = usual["phase1_epoch"], usual["phase2_epoch"]
    project_p1 = project["phase1_extraction"]["seconds"] + project["phase1_head"]["seconds"]
    p2 = project["phase2_epochs"]
    epochs = len(p2["epoch_seconds"])
    naive_p2_run = epochs * naive_p2_epoch + usual["test"]
    project_p2_run = (
        project["phase2_caching"]["seconds"]
        + sum(p2["epoch_seconds"])
        + project["phase2_test_evaluation_s"]
    )
    extraction = project["phase1_extraction"]["images_per_s"]
    return {
        "naive_phase1_s": HEAD_EPOCHS * naive_p1_epoch,
        "project_phase1_s": project_p1,
        "phase1_speedup": HEAD_EPOCHS * naive_p1_epoch / project_p1,
        "naive_phase2_epoch_s": naive_p2_epoch,
        "project_phase2_epoch_s": p2["steady_epoch_s"],
        "phase2_speedup": naive_p2_epoch / p2["steady_epoch_s"],
        "phase2_run_epochs": epochs,
        "naive_phase2_run_s": naive_p2_run,
        "project_phase2_run_s": project_p2_run,
        "phase2_speedup_amortised": naive_p2_run / project_p2_run,
        "extraction_efficiency": extraction / project[f"forward_{policy}"]["images_per_s"],
    }


def usual_tracing_s(naive, batch_size: int) -> dict:
    """Seconds the usual recipe spends once per notebook, tracing: its warm-ups less their work.

    Part 2's fit and part 3's fit each trace a training step (the warm-up fit of one batch,
    less that batch at the measured rate); part 4 traces its predictions (forward_rate's
    warm-up of a full and a one-image batch, less those images at the forward rate).
    """
    fit = {
        phase: naive[f"{phase}_fit"]["warmup_s"]
        - batch_size * naive[f"{phase}_fit"]["seconds_per_image"]
        for phase in ("phase1", "phase2")
    }
    forward = naive["forward_float32"]
    predict = forward["warmup_s"] - (batch_size + 1) / forward["images_per_s"]
    return {"part2": fit["phase1"], "part3": fit["phase2"], "part4": predict}


def series_gflops(counts, fine_tune_epochs, g) -> tuple:
    """(usual, series) GFLOPs for parts 2 to 4 on `counts` images: see series_figures."""
    n_train, n_val, n_test = counts["train"], counts["validation"], counts["test"]
    base, to_block4 = g["base_forward"], g["to_block4_pool_forward"]
    block5, block5_train = g["block5_and_head_forward"], g["block5_and_head_train_step"]
    usual = (
        HEAD_EPOCHS * (n_train + n_val) * base
        + fine_tune_epochs * (n_train * (to_block4 + block5_train) + n_val * base)
        + n_test * base
    )
    series = (
        (n_train + n_val + n_test) * to_block4
        + (n_train + n_val) * block5
        + fine_tune_epochs * (n_train * block5_train + n_val * block5)
        + n_test * block5
    )
    return usual, series


def series_figures(naive, project, series, counts, policy, batch_size) -> dict:
    """The series (parts 2 to 4) against the usual recipe: measured, and ideal from FLOPs.

    The usual recipe's seconds are its measured per-image fit costs and float32 forward rate
    times the images and epochs of each part: HEAD_EPOCHS epochs of part 2 (train fitted,
    validation evaluated), SERIES_FINE_TUNE_EPOCHS of part 3, and the test split's predictions;
    plus its tracing, once per part (usual_tracing_s), since the series is timed whole,
    tracing included.

    The ideal speedup counts only the arithmetic each path must do, in GFLOPs (vgg16_gflops),
    at the measured forward rate of the precision it runs at: seconds per GFLOP is
    1 / (forward images/s x base_forward GFLOPs). With N = train + validation + test images,
    E2 = HEAD_EPOCHS, E3 = SERIES_FINE_TUNE_EPOCHS and base = VGG16's base forward:
      usual  = E2 (train + val) base                          part 2: the frozen base, every epoch
             + E3 (train (to_block4 + block5_train) + val base)   part 3: forward + backward
             + test base                                      part 4
      series = N to_block4                                    one frozen pass per image
             + (train + val) block5_forward                   part 2: pooled features, once
             + E3 (train block5_train + val block5_forward)   part 3: block5 + head only
             + test block5_forward                            part 4
    (the head's own cost, under a millionth of the base's, is left out of both), and
    series_ideal_speedup = usual x float32 s/GFLOP / (series x the chosen policy's s/GFLOP).

    Where the series falls short of its ideal seconds: part 3's training steps, which may
    run below the forward rate per GFLOP (series_fine_tune_efficiency: the ideal seconds of a
    part-3 epoch over its measured steady seconds), and the rest, mostly one-time work such as
    tracing each model, which does not grow with the number of images.
    """
    n_train, n_val = counts["train"], counts["validation"]
    usual = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], counts)
    tracing = usual_tracing_s(naive, batch_size)
    usual_s = (
        HEAD_EPOCHS * usual["phase1_epoch"]
        + SERIES_FINE_TUNE_EPOCHS * usual["phase2_epoch"]
        + usual["test"]
        + sum(tracing.values())
    )
    g = project["gflops"]
    usual_gflops, ideal_gflops = series_gflops(counts, SERIES_FINE_TUNE_EPOCHS, g)
    float32_s_per_gflop = 1 / (naive["forward_float32"]["images_per_s"] * g["base_forward"])
    chosen_s_per_gflop = 1 / (project[f"forward_{policy}"]["images_per_s"] * g["base_forward"])
    ideal_s = ideal_gflops * chosen_s_per_gflop
    ideal_epoch_s = (
        n_train * g["block5_and_head_train_step"] + n_val * g["block5_and_head_forward"]
    ) * chosen_s_per_gflop
    steady_epoch_s = series["part3_epochs"]["steady_epoch_s"]
    fine_tuning_gap = SERIES_FINE_TUNE_EPOCHS * (steady_epoch_s - ideal_epoch_s)
    return {
        "naive_series_s": usual_s,
        "naive_series_tracing_s": sum(tracing.values()),
        "project_series_s": series["seconds"],
        "series_speedup": usual_s / series["seconds"],
        "series_ideal_speedup": usual_gflops * float32_s_per_gflop / ideal_s,
        "series_ideal_s": ideal_s,
        "series_fine_tune_efficiency": ideal_epoch_s / steady_epoch_s,
        "series_gap_fine_tuning_s": fine_tuning_gap,
        "series_gap_other_s": series["seconds"] - ideal_s - fine_tuning_gap,
        "frozen_passes_per_image": series["frozen_passes_per_image"],
    }


def full_run_cpu_estimate(naive, project, without_cache, series, counts, policy, batch) -> dict:
    """Seconds for parts 2 to 4 on all of cats_vs_dogs, scaled from this run's measurements.

    The usual recipe: its per-image costs times the full run's images and epochs, plus its
    tracing once per part. The notebooks: the series' store pass and pooled-feature pass per
    image, its steady epochs per image, its part-4 predictions per test image, and its
    one-time work (tracing, the fingerprint, reopening the store) once.
    """
    full = FULL_RUN_IMAGES
    fitted = full["train"] + full["validation"]  # images per epoch, as in this run's split
    scale = fitted / (counts["train"] + counts["validation"])
    naive_full = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], full)
    tracing = usual_tracing_s(naive, batch)
    usual = {
        "part2": HEAD_EPOCHS * naive_full["phase1_epoch"] + tracing["part2"],
        "part3": FULL_RUN_FINE_TUNE_EPOCHS * naive_full["phase2_epoch"] + tracing["part3"],
        "part4": naive_full["test"] + tracing["part4"],
    }
    # Without the cache, validation passes run the whole model at the chosen precision.
    uncached = images_in_seconds(without_cache, project[f"forward_{policy}"]["images_per_s"], full)
    head, fine_tuning = series["part2_head"], series["part3_epochs"]
    # The store's pass per image at the rate of the same pass traced beforehand (phase 2's
    # caching); what the series' store took beyond that (tracing, the fingerprint) is one-time.
    store_rate = project["phase2_caching"]["images_per_s"]
    store_once = max(0.0, series["store_s"] - sum(counts.values()) / store_rate)
    store = sum(full.values()) / store_rate + store_once
    epoch = fine_tuning["steady_epoch_s"] * scale
    notebooks = {
        "part2": store
        + series["pooled_s"] * scale  # its tracing scaled too: a little pessimistic
        + head["warmup_s"]
        + HEAD_EPOCHS * head["steady_epoch_s"] * scale,
        "part3": series["part3_s"]
        - fine_tuning["seconds"]
        + fine_tuning["warmup_s"]
        + FULL_RUN_FINE_TUNE_EPOCHS * epoch,
        "part4": series["part4_s"] * full["test"] / counts["test"],
    }
    usual_gflops, ideal_gflops = series_gflops(full, FULL_RUN_FINE_TUNE_EPOCHS, project["gflops"])
    ideal_speedup = (usual_gflops / naive["forward_float32"]["images_per_s"]) / (
        ideal_gflops / project[f"forward_{policy}"]["images_per_s"]
    )
    return {
        **{f"naive_{part}_s": seconds for part, seconds in usual.items()},
        **{f"project_{part}_s": seconds for part, seconds in notebooks.items()},
        "naive_series_s": sum(usual.values()),
        "project_series_s": sum(notebooks.values()),
        "project_store_s": store,
        "project_part3_epoch_s": epoch,
        "series_speedup": sum(usual.values()) / sum(notebooks.values()),
        "series_ideal_speedup": ideal_speedup,
        "without_cache_phase1_epoch_s": uncached["phase1_epoch"],
        "without_cache_phase2_epoch_s": uncached["phase2_epoch"],
    }


# ---------------------------------------------------------------------------------------------
# Peak memory, one fresh process per dataset size


def rss_child(settings) -> None:
    """The project path end to end on `images` JPEGs; prints its peak RSS as a JSON line."""
    with tempfile.TemporaryDirectory(prefix="speed_rss_") as scratch:
        folder = Path(scratch) / "images"
        write_jpeg_folder(folder, settings["images"])
        data = load_folder_quietly(folder)
        with quiet():
            policy = plumbing.choose_precision()
        project = run_rss_path(data, settings, scratch)
        print(json.dumps({"images": settings["images"], "policy": policy} | project))


def run_rss_path(data, settings, cache_dir) -> dict:
    """Notebook 02 then 03 on the cache (one epoch each); RSS now and at peak after each."""
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size)
    features, _ = extract(
        submodel(model, None, "pooled_features"), data, ["train", "validation"], size, batch
    )
    train_on_cache(submodel(model, "pooled_features", "output"), features, 1, batch, 1e-3)
    after_phase1 = {"rss_after_phase1_mb": current_rss_mb(), "peak_after_phase1_mb": peak_rss_mb()}
    unfreeze_from(model, UNFREEZE_FROM)
    splits = ["train", "validation", "test"]
    cached, _ = extract(submodel(model, None, CACHED_LAYER), data, splits, size, batch, cache_dir)
    train_on_cache(submodel(model, CACHED_LAYER, "output"), cached, 1, batch, 1e-5)
    cache_mb = sum(f.nbytes for f, _ in cached.values()) / 2**20
    return after_phase1 | {
        "rss_after_phase2_mb": current_rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
        "block4_cache_mb": cache_mb,
    }


def measure_peak_rss(settings) -> dict:
    """{images: child's result} for each size in settings["rss_sizes"], each in a new process.

    The children run side by side: each one's peak is its own, whatever runs beside it.
    """
    children = {}
    for images in settings["rss_sizes"]:
        command = [sys.executable, __file__, "--rss-child", "--images", str(images)]
        command += ["--image-size", str(settings["image_size"])]
        command += ["--batch-size", str(settings["batch_size"])]
        children[str(images)] = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
    results = {}
    for images, child in children.items():
        stdout, stderr = child.communicate()
        if child.returncode != 0:
            raise RuntimeError(f"RSS child for {images} images failed:\n{stderr[-3000:]}")
        results[images] = json.loads(stdout.strip().splitlines()[-1])
    return results


# ---------------------------------------------------------------------------------------------
# Report


def print_report(report) -> None:
    s, m, t = report["settings"], report["machine"], report["timings"]
    naive, project, summary = t["naive"], t["project"], report["summary"]
    counts, policy = report["images"], m["policy"]
    print(
        f"\nVGG16 at {s['image_size']} px, batch {s['batch_size']}: {sum(counts.values())} "
        f"synthetic JPEGs (~{report['jpeg_kib']:.0f} KiB each): train {counts['train']}, "
        f"validation {counts['validation']}, test {counts['test']}"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores, bf16 in hardware: {m['bfloat16_in_hardware']}, "
        f"TF {report['versions']['tensorflow']}, Keras {report['versions']['keras']}, "
        f"policy {policy}, "
        f"load average {m['load_average_at_start']} at start, {report['load_average_at_end']} "
        "at end"
    )
    print_rates(naive, project, t["without_cache"], summary, policy)
    autotune = t["autotune"]
    print(
        f"\nA pass over the training pipeline ({autotune['images']} images), seconds: "
        f"autotuner off {fmt_seconds(autotune['off_s'])}, on {fmt_seconds(autotune['on_s'])}"
    )
    print_phases(summary, naive, project)
    print_series(summary, t["series"])
    print_estimates(report)
    print("\nPeak RSS (ru_maxrss) by dataset size, a fresh process each")
    for images, child in report["rss_children"].items():
        print(
            f"  {images:>6} images: peak {child['peak_rss_mb']:.0f} MB, now "
            f"{child['rss_after_phase2_mb']:.0f} MB; block4 cache on disk "
            f"{child['block4_cache_mb']:.0f} MB"
        )


def fmt_seconds(values) -> str:
    """[1.0, 2.0, 3.0] -> '1.00, 2.00 and 3.00'."""
    texts = [f"{value:.2f}" for value in values]
    return " and ".join([", ".join(texts[:-1]), texts[-1]] if len(texts) > 1 else texts)


def print_rates(naive, project, without_cache, summary, policy) -> None:
    rows = [
        ("bare forward, float32, in-memory batch", naive["forward_float32"]),
        (f"bare forward, {policy}, in-memory batch", project[f"forward_{policy}"]),
        ("input pipeline alone (read, decode, resize)", project["pipeline_alone"]),
        ("cache_features on that pipeline (phase 1)", project["phase1_extraction"]),
        ("cache_features to block4_pool files (phase 2)", project["phase2_caching"]),
        ("naive phase 1: fit, images in, float32", naive["phase1_fit"]),
        ("naive phase 2: fit, images in, float32", naive["phase2_fit"]),
        ("block4 cache read by cached_batches alone", project["phase2_cache_reading_alone"]),
        ("project phase 2: an epoch on the cache", project["phase2_epochs"]),
        (f"no cache, phase 1: fit, images in, {policy}", without_cache["phase1_fit"]),
        (f"no cache, phase 2: fit, images in, {policy}", without_cache["phase2_fit"]),
    ]
    print(f"\n{'Rates':<50}{'images/s':>10}{'busy cores':>12}{'others':>8}")
    for label, rate in rows:
        print(
            f"  {label:<48}{rate['images_per_s']:>10.2f}{rate['busy_cores']:>12.2f}"
            f"{rate['other_cores']:>8.2f}"
        )
    disturbed = max(rate["other_cores"] for _, rate in rows)
    if disturbed > 0.2:
        print(
            f"  WARNING: other processes kept up to {disturbed:.1f} cores busy during these "
            "timings: measure again on a quiet machine."
        )
    print(f"  extraction_efficiency = {summary['extraction_efficiency']:.2f}")
    gflops = project["gflops"]
    print(
        f"  GFLOPs per image: base forward {gflops['base_forward']:.2f}, to block4_pool "
        f"{gflops['to_block4_pool_forward']:.2f}, block5+head forward "
        f"{gflops['block5_and_head_forward']:.2f}, block5+head train step "
        f"{gflops['block5_and_head_train_step']:.2f}"
    )


def print_phases(summary, naive, project) -> None:
    p1, p2 = naive["phase1_fit"], naive["phase2_fit"]
    print(f"\n{'Seconds for this run':<50}{'naive':>10}{'project':>10}{'speedup':>10}")
    rows = [
        (f"phase 1: {HEAD_EPOCHS} epochs", "phase1"),
        ("phase 2: one epoch (steady)", "phase2_epoch"),
        (f"phase 2: {summary['phase2_run_epochs']} epochs + caching + test", "phase2_run"),
    ]
    speedups = ["phase1_speedup", "phase2_speedup", "phase2_speedup_amortised"]
    for (label, key), speedup in zip(rows, speedups):
        naive_s, project_s = summary[f"naive_{key}_s"], summary[f"project_{key}_s"]
        print(f"  {label:<48}{naive_s:>10.1f}{project_s:>10.1f}{summary[speedup]:>10.1f}")
    print(
        f"  naive: measured s/image x images x epochs; timed on {p1['timed_images']} images per "
        f"phase after warm-ups of {p1['warmup_s']:.1f} s and {p2['warmup_s']:.1f} s (excluded)"
    )
    print(
        f"  project: phase 1 = extraction {project['phase1_extraction']['seconds']:.1f} s + head "
        f"{project['phase1_head']['seconds']:.1f} s; phase 2 caching "
        f"{project['phase2_caching']['seconds']:.1f} s (one time), first epoch traces "
        f"{project['phase2_epochs']['warmup_s']:.1f} s extra"
    )


def print_series(summary, series) -> None:
    print(
        f"\nThe series, parts 2 to 4 ({HEAD_EPOCHS} head epochs, {SERIES_FINE_TUNE_EPOCHS} "
        "fine-tuning epochs, test predictions), seconds"
    )
    print(
        f"  usual recipe {summary['naive_series_s']:.1f}, with the frozen store "
        f"{summary['project_series_s']:.1f} (part 2 {series['part2_s']:.1f}, part 3 "
        f"{series['part3_s']:.1f}, part 4 {series['part4_s']:.1f})"
    )
    print(
        f"  series_speedup {summary['series_speedup']:.2f}, series_ideal_speedup "
        f"{summary['series_ideal_speedup']:.2f} (ratio "
        f"{summary['series_speedup'] / summary['series_ideal_speedup']:.2f}), "
        f"frozen_passes_per_image {summary['frozen_passes_per_image']:.3f}"
    )
    print(
        f"  usual recipe's tracing (counted once per part): "
        f"{summary['naive_series_tracing_s']:.1f}; series pieces: store {series['store_s']:.1f}, "
        f"pooled features {series['pooled_s']:.1f}, head {series['part2_head']['seconds']:.1f}"
    )
    print(
        f"  short of the ideal {summary['series_ideal_s']:.1f} s by "
        f"{summary['project_series_s'] - summary['series_ideal_s']:.1f} s: part 3's training "
        f"steps {summary['series_gap_fine_tuning_s']:.1f} (series_fine_tune_efficiency "
        f"{summary['series_fine_tune_efficiency']:.2f}), the rest "
        f"{summary['series_gap_other_s']:.1f} (tracing and other one-time work)"
    )


def print_estimates(report) -> None:
    estimate = report["full_run_estimate_cpu"]
    minutes = {key: value / 60 for key, value in estimate.items() if key.endswith("_s")}
    print(f"\nEstimates for all of cats_vs_dogs {FULL_RUN_IMAGES}, in minutes, this machine")
    parts = [
        ("part 2", f"{HEAD_EPOCHS} head epochs", "part2"),
        ("part 3", f"{FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs", "part3"),
        ("part 4", "test predictions", "part4"),
        ("series", "parts 2 to 4", "series"),
    ]
    for name, what, key in parts:
        print(
            f"  {name} ({what}): usual {minutes[f'naive_{key}_s']:.0f}, "
            f"notebooks {minutes[f'project_{key}_s']:.0f}"
        )
    print(
        f"  of which the store {minutes['project_store_s']:.0f} and a part-3 epoch "
        f"{minutes['project_part3_epoch_s']:.1f}; series_speedup "
        f"{estimate['series_speedup']:.2f} of an ideal {estimate['series_ideal_speedup']:.2f}"
    )
    print(
        "  notebooks with USE_FEATURE_CACHE=False: an epoch of part 2 "
        f"{minutes['without_cache_phase1_epoch_s']:.0f}, of part 3 "
        f"{minutes['without_cache_phase2_epoch_s']:.0f}"
    )


# ---------------------------------------------------------------------------------------------
# The README's speed sections, rendered from the committed results files

MARKERS = {
    "cost": ("<!-- speed:cost:begin -->", "<!-- speed:cost:end -->"),
    "results": ("<!-- speed:results:begin -->", "<!-- speed:results:end -->"),
}
WRAP = 92  # the README's line length


def paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), WRAP, break_on_hyphens=False)


def kib(size_bytes: float) -> str:
    return f"{size_bytes / 2**10:,.0f} KiB"


def render_cost() -> str:
    """What one image costs and what the caches hold, from VGG16's layer shapes at 224 px."""
    size = 224
    model = build_model(size)  # the dtype policy changes no shape, so neither count
    gflops = vgg16_gflops(model)
    pooled = int(model.get_layer("pooled_features").output.shape[-1])
    block4_shape = tuple(int(n) for n in model.get_layer(CACHED_LAYER).output.shape[1:])
    float16_bytes = 2  # cache_features stores float16, whatever the policy
    pooled_bytes = pooled * float16_bytes
    block4_bytes = int(np.prod(block4_shape)) * float16_bytes
    all_images = sum(FULL_RUN_IMAGES.values())
    shape = " × ".join(str(n) for n in block4_shape)
    return "\n".join(
        [
            paragraph(
                f"""Almost all the time goes into VGG16 itself: one {size}-pixel image costs
                {gflops["base_forward"]:.1f} billion floating-point operations on the way
                through the base (counted from its layer shapes by `benchmarks/speed.py`). The
                usual recipe pays that for every image in every epoch, in float32. The notebooks
                avoid repeated work instead:"""
            ),
            "",
            "- "
            + paragraph(
                f"""**One frozen pass (part 2)**: the layers that stay frozen in part 3, everything
                up to `{CACHED_LAYER}`, run once per image, for all three splits. Their output
                is stored as float16 in `ARTIFACTS_DIR/frozen_store`: {shape} values,
                {kib(block4_bytes)} per image at {size} pixels,
                {block4_bytes * all_images / 2**30:.1f} GiB for all {all_images:,} images of
                cats_vs_dogs, on local disk (the operating system keeps it in memory when there
                is room)."""
            ).replace("\n", "\n  "),
            "- "
            + paragraph(
                f"""**The head (part 2)**: `block5` and the pooling run once on the stored maps;
                their {pooled} pooled features per image ({kib(pooled_bytes)} in float16) are
                what the head trains on, for as many epochs as you like."""
            ).replace("\n", "\n  "),
            "- "
            + paragraph(
                """**Fine-tuning and evaluation (parts 3 and 4)**: each epoch runs only `block5`
                and the head on the store, and part 4 predicts the test split from it. Grad-CAM,
                a new photo and the exports use the whole model."""
            ).replace("\n", "\n  "),
        ]
    )


def rate_rows(report) -> list:
    t, policy = report["timings"], report["machine"]["policy"]
    naive, project, uncached = t["naive"], t["project"], t["without_cache"]
    without = f"notebooks without the cache, phase {{}} (`fit` on images, {policy})"
    again = ", measured again beside the cache" if policy == "float32" else ""
    return [
        ("bare VGG16 base forward, float32", naive["forward_float32"]),
        (f"bare VGG16 base forward, {policy}{again}", project[f"forward_{policy}"]),
        ("input pipeline alone (read, decode, resize)", project["pipeline_alone"]),
        ("feature cache, phase 1 (`cache_features` on it)", project["phase1_extraction"]),
        ("usual recipe, phase 1 (`fit` on images, float32)", naive["phase1_fit"]),
        ("usual recipe, phase 2 (`fit` on images, float32)", naive["phase2_fit"]),
        (without.format(1), uncached["phase1_fit"]),
        (without.format(2), uncached["phase2_fit"]),
        ("notebooks with the cache, phase 2 (an epoch of block5 + head)", project["phase2_epochs"]),
    ]


def render_run(report, name: str) -> str:
    """One results file as the README shows it: where it came from, then what it measured."""
    m, v, s, summary = report["machine"], report["versions"], report["settings"], report["summary"]
    t, policy, images = report["timings"], m["policy"], report["images"]
    link = f"benchmarks/results/{name}"
    gpus = ", ".join(m["gpus"]) if m["gpus"] else "no GPU"
    bf16 = "with" if m["bfloat16_in_hardware"] else "without"
    lines = [
        paragraph(
            f"""**{m["cpu"]}**, {m["cores"]} cores, {bf16} bfloat16 instructions, {gpus};
            Python {v["python"]}, TensorFlow {v["tensorflow"]}, Keras {v["keras"]}, NumPy
            {v["numpy"]}; policy `{policy}`. Measured on {report["date"]}, rendered from
            [`{link}`]({link}): {sum(images.values())} generated JPEGs (train
            {images["train"]}, validation {images["validation"]}, test {images["test"]}),
            {s["image_size"]} pixels, batch {s["batch_size"]}."""
        ),
        "",
    ]
    if report.get("quick"):
        lines += [
            "> "
            + paragraph(
                f"""**A quick run** (`--quick`: {s["image_size"]}-pixel images, a few dozen
                files). It shows that the benchmark works, not how fast anything is: run it
                in full on a quiet machine before you believe any figure below."""
            ).replace("\n", "\n> "),
            "",
        ]
    lines += ["| Measured | images/s |", "|---|---:|"]
    lines += [f"| {label} | {rate['images_per_s']:.1f} |" for label, rate in rate_rows(report)]
    n = sum(images.values())
    lines += [
        "",
        f"| On the {n} images | usual recipe | notebooks | speedup |",
        "|---|---:|---:|---:|",
        f"| phase 1: feature extraction + {HEAD_EPOCHS} epochs of the head | "
        f"{summary['naive_phase1_s']:.1f} s | {summary['project_phase1_s']:.1f} s | "
        f"{summary['phase1_speedup']:.1f}x |",
        f"| phase 2: one fine-tuning epoch | {summary['naive_phase2_epoch_s']:.1f} s | "
        f"{summary['project_phase2_epoch_s']:.1f} s | {summary['phase2_speedup']:.1f}x |",
    ]
    if "series_speedup" in summary:
        lines += [
            f"| the series: part 2 ({HEAD_EPOCHS} head epochs), part 3 "
            f"({SERIES_FINE_TUNE_EPOCHS} fine-tuning epochs), part 4's test predictions | "
            f"{summary['naive_series_s']:.1f} s | {summary['project_series_s']:.1f} s | "
            f"{summary['series_speedup']:.1f}x |",
            "",
            paragraph(
                f"""Over the series, the frozen layers ran
                {summary["frozen_passes_per_image"]:.2f} times per image: the frozen store
                runs them once, and parts 3 and 4 reuse it. From VGG16's operation counts and
                the forward rates measured here, the series could at best be
                {summary["series_ideal_speedup"]:.1f} times faster than the usual recipe. It
                was {summary["series_speedup"]:.1f} times faster:
                {summary["series_speedup"] / summary["series_ideal_speedup"]:.0%} of the ideal.
                Both recipes pay for tracing (the usual recipe's
                {summary["naive_series_tracing_s"]:.1f} s come from its warm-ups). At the ideal
                rate the series would take {summary["series_ideal_s"]:.1f} s. It took
                {summary["project_series_s"] - summary["series_ideal_s"]:.1f} s more:
                {summary["series_gap_fine_tuning_s"]:.1f} s in part 3, whose training steps
                did {summary["series_fine_tune_efficiency"]:.0%} as many operations per second
                as the forward pass, and {summary["series_gap_other_s"]:.1f} s of one-time
                work, mostly tracing each model. One-time work does not grow with the number
                of images."""
            ),
        ]
    else:
        lines += [
            "",
            paragraph(
                """This results file was measured before the benchmark timed the whole series
                with the frozen store: run `python benchmarks/speed.py --save` again for
                those figures."""
            ),
        ]
    lines += [""]
    float32 = t["naive"]["forward_float32"]["images_per_s"]
    chosen = t["project"][f"forward_{policy}"]["images_per_s"]
    if policy == "float32":
        precision = """This machine has no fast 16-bit math, so the notebooks compute in float32
            here and this run measures no mixed precision."""
    else:
        precision = f"""`{policy}` ran the bare base at {chosen / float32:.1f} times the
            float32 rate ({chosen:.1f} against {float32:.1f} images/s)."""
    autotune = t["autotune"]
    rss = ", ".join(
        f"{child['peak_rss_mb']:,.0f} MB with {size} images"
        for size, child in report["rss_children"].items()
    )
    disturbed = max(rate["other_cores"] for _, rate in rate_rows(report))
    busy = ": too many for steady figures" if disturbed > 0.2 else ""
    lines += [
        paragraph(
            f"""{precision} The feature cache ran at
            {report["extraction_efficiency"]:.0%} of the bare base's forward rate on
            in-memory batches. A pass over the {autotune["images"]} training images through
            the input pipeline took {fmt_seconds(autotune["off_s"])} s with tf.data's
            autotuner off (as the notebooks set it) and {fmt_seconds(autotune["on_s"])} s
            with it on. Peak memory (a fresh process each): {rss}. The usual recipe is timed
            on {s["naive_steps"]} batches after a warm-up step and scaled to the full run.
            Other processes kept up to {disturbed:.1f} cores busy during the timings{busy}."""
        ),
        "",
    ]
    estimate = report["full_run_estimate_cpu"]
    if "project_series_s" in estimate:
        lines += render_estimates(estimate)
    return "\n".join(lines)


def minutes(seconds: float) -> str:
    value = seconds / 60
    return f"{value:,.0f} min" if value >= 10 else f"{value:.1f} min"


def render_estimates(estimate) -> list:
    """The full-run estimates as the README shows them (results files with the series)."""
    full = FULL_RUN_IMAGES
    return [
        paragraph(
            f"""**Estimates for all of cats_vs_dogs on this machine** ({full["train"]:,}
            training, {full["validation"]:,} validation and {full["test"]:,} test images,
            {FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs as in part 3), scaled from the series
            above: what is done per image times the images, one-time work once. They are
            estimates, not runs:"""
        ),
        "",
        "| | usual recipe | notebooks |",
        "|---|---:|---:|",
        f"| part 2 ({HEAD_EPOCHS} head epochs) | {minutes(estimate['naive_part2_s'])} | "
        f"{minutes(estimate['project_part2_s'])} ({minutes(estimate['project_store_s'])} "
        "for the frozen store) |",
        f"| part 3 ({FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs) | "
        f"{minutes(estimate['naive_part3_s'])} | {minutes(estimate['project_part3_s'])} "
        f"({minutes(estimate['project_part3_epoch_s'])} per epoch) |",
        f"| part 4 (test predictions) | {minutes(estimate['naive_part4_s'])} | "
        f"{minutes(estimate['project_part4_s'])} |",
        f"| the series | {minutes(estimate['naive_series_s'])} | "
        f"{minutes(estimate['project_series_s'])} |",
        f"| one epoch without the cache | | {minutes(estimate['without_cache_phase1_epoch_s'])} "
        f"(part 2), {minutes(estimate['without_cache_phase2_epoch_s'])} (part 3) |",
        "",
        paragraph(
            f"""At that size the series would be {estimate["series_speedup"]:.1f} times faster
            than the usual recipe, against an ideal of {estimate["series_ideal_speedup"]:.1f}
            ({estimate["series_speedup"] / estimate["series_ideal_speedup"]:.0%})."""
        ),
    ]


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    paths = sorted(results_dir.glob("*.json"))
    if not paths:
        return paragraph(
            """No results are committed yet: run `python benchmarks/speed.py --save` on a quiet
            machine, then `python benchmarks/speed.py --write-readme`."""
        )
    return "\n\n".join(render_run(json.loads(p.read_text()), p.name) for p in paths)


def render_readme(text: str) -> str:
    """`text` with every speed section replaced by what the code and the results render."""
    rendered = {"cost": render_cost(), "results": render_results()}
    for key, (begin, end) in MARKERS.items():
        if text.count(begin) != 1 or text.count(end) != 1:
            raise SystemExit(f"README.md needs exactly one {begin} and one {end}")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n{rendered[key]}\n{end}{tail}"
    return text


def update_readme(write: bool, readme: Path = README) -> int:
    """0 when README.md shows what the results render (after rewriting it, with `write`)."""
    current = readme.read_text()
    rendered = render_readme(current)
    if rendered == current:
        print("README.md's speed sections match the committed results.")
        return 0
    if write:
        readme.write_text(rendered)
        print("README.md's speed sections rewritten from the committed results.")
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        rendered.splitlines(keepends=True),
        "README.md",
        "README.md as the results render it",
    )
    sys.stdout.writelines(diff)
    print("\nREADME.md differs: run `python benchmarks/speed.py --write-readme`.")
    return 1


# ---------------------------------------------------------------------------------------------
# Command line


def parse_settings(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--images", type=int, default=256, help="JPEGs generated (all splits)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", help="write the results to this file")
    parser.add_argument(
        "--save",
        action="store_true",
        help="write the results to benchmarks/results/<this machine>.json (--json names it)",
    )
    parser.add_argument(
        "--check-readme",
        action="store_true",
        help="exit 1, with a diff, when README.md differs from what the results files render",
    )
    parser.add_argument(
        "--write-readme",
        action="store_true",
        help="rewrite README.md's speed sections from the committed results files",
    )
    parser.add_argument("--quick", action="store_true", help="small and fast: a smoke test")
    parser.add_argument(
        "--rss-sizes", type=int, nargs="*", help="dataset sizes for peak RSS (default N, 4N)"
    )
    parser.add_argument("--rss-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    settings = {
        "image_size": args.image_size,
        "images": args.images,
        "batch_size": args.batch_size,
        "rss_sizes": args.rss_sizes or [args.images, 4 * args.images],
    }
    if args.quick:
        settings |= QUICK
    settings["naive_steps"] = 2 if args.quick else 4
    settings["fine_tune_epochs"] = 2 if args.quick else FINE_TUNE_EPOCHS_TIMED
    settings["quick"] = args.quick
    json_path = args.json or (str(RESULTS_DIR / machine_file_name()) if args.save else None)
    return settings | {
        "json": json_path,
        "rss_child": args.rss_child,
        "check_readme": args.check_readme,
        "write_readme": args.write_readme,
    }


SERIES_KEYS = ("series_speedup", "series_ideal_speedup", "frozen_passes_per_image")
COMMAND_ONLY = ("json", "rss_child", "check_readme", "write_readme")


def run_benchmark(settings) -> dict:
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="speed_") as scratch:
        folder = Path(scratch) / "images"
        jpeg_kib = write_jpeg_folder(folder, settings["images"])
        data = load_folder_quietly(folder)
        counts = {split: sum(data.counts[split]) for split in ("train", "validation", "test")}
        naive = run_naive(data, settings)
        gc.collect()
        policy = plumbing.choose_precision()
        machine = machine_description(policy, load_at_start)
        project = run_project(data, settings, scratch, policy)
        gc.collect()
        series = run_series_path(data, settings, scratch)
        gc.collect()
        without_cache = run_without_cache(data, settings)
        gc.collect()
        passes = 2 if settings["quick"] else AUTOTUNE_PASSES
        autotune = autotune_passes(data, settings["image_size"], settings["batch_size"], passes)
    load_at_end = round(os.getloadavg()[0], 2)
    rss = measure_peak_rss(settings)
    summary = summarize(naive, project, counts, policy)
    summary |= series_figures(naive, project, series, counts, policy, settings["batch_size"])
    report = {
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "quick": settings["quick"],
        "machine": machine,
        "versions": versions(),
        **{key: summary[key] for key in ("phase1_speedup", "phase2_speedup")},
        **{key: summary[key] for key in SERIES_KEYS},
        "extraction_efficiency": summary["extraction_efficiency"],
        "peak_rss_mb": {n: r["peak_rss_mb"] for n, r in rss.items()},
        "summary": summary,
        "settings": {k: v for k, v in settings.items() if k not in COMMAND_ONLY},
        "images": counts,
        "jpeg_kib": jpeg_kib,
        "load_average_at_end": load_at_end,
        "timings": {
            "naive": naive,
            "project": project,
            "without_cache": without_cache,
            "series": series,
            "autotune": autotune,
        },
        "rss_children": rss,
        "full_run_estimate_cpu": full_run_cpu_estimate(
            naive, project, without_cache, series, counts, policy, settings["batch_size"]
        ),
    }
    return report


def main(argv=None) -> dict | None:
    settings = parse_settings(argv)
    if settings["check_readme"] or settings["write_readme"]:
        sys.exit(update_readme(write=settings["write_readme"]))
    if settings["rss_child"]:
        rss_child(settings)
        return None
    started = time.perf_counter()
    report = run_benchmark(settings)
    report["benchmark_wall_s"] = time.perf_counter() - started
    print_report(report)
    print(f"\nBenchmark took {report['benchmark_wall_s']:.0f} s")
    if settings["json"]:
        Path(settings["json"]).parent.mkdir(parents=True, exist_ok=True)
        Path(settings["json"]).write_text(json.dumps(report, indent=2) + "\n")
        print(f"Results written to {settings['json']}")
    return report


if __name__ == "__main__":
    main()
