"""Speed of the naive transfer-learning recipe against this project's fast path, side by side.

Both run in one process on the same synthetic data, with VGG16 at random weights
(weights=None does the same arithmetic as the ImageNet weights):

  naive    phase 1  model.fit on the whole model (images in, base frozen) in float32: the frozen
                    VGG16 runs on every image in every epoch. Images come as in the notebooks
                    with USE_FEATURE_CACHE=False: augmented in the input pipeline, decoded once
                    and kept in memory (batches(..., keep_in_memory=True)).
           phase 2  a fine-tuning epoch of the whole model in float32, fed the same way: forward
                    through every block, backward through block5 and the head.
  project  phase 1  one pass of cache_features through the frozen base, at the
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

This file measures. Results go to a JSON file with the machine, the date and the library
versions, with the figures benchmarks/speed_report.py derives from the timings; that module
also prints the report and renders the README's speed sections from the committed files:

    python benchmarks/speed.py --save          # 224 px, 256 images: about 13 minutes; writes
                                               # benchmarks/results/<cpu>-<cores>cpu.json
    python benchmarks/speed_report.py --write-readme   # README.md's speed sections from them
    python benchmarks/speed.py --images 512 --json speed.json
    python benchmarks/speed.py --quick         # smoke test: small and fast, times mean nothing
"""

import argparse
import contextlib
import datetime
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
import time
import warnings
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the helpers of this clone, also when not installed
from tutorial_plumbing.machine import hide_c_messages  # noqa: E402  (no TensorFlow yet)

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ notes: fatal ones only
with hide_c_messages():  # TensorFlow's start-up notes, before the report
    import keras  # noqa: E402
    import tensorflow as tf  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402
from PIL import Image  # noqa: E402

from tutorial_plumbing.data_in import TwoClassData, load_two_class_data  # noqa: E402
from tutorial_plumbing.feature_store import cache_features, cached_batches, frozen_store  # noqa: E402
from tutorial_plumbing.machine import choose_precision, cpu_supports_bfloat16  # noqa: E402
from tutorial_plumbing.model import build_model, make_augmentation, unfreeze_from  # noqa: E402

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
        "bfloat16_in_hardware": cpu_supports_bfloat16(),
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


def load_folder_quietly(folder: Path) -> TwoClassData:
    with quiet():
        return load_two_class_data(folder, seed=SEED)


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
            augmentation=make_augmentation(seed=SEED),
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
    """cache_features over each split: (cached features by split, timing)."""
    cached = {}

    def run():
        for split in splits:
            cache_file = os.path.join(cache_dir, f"{split}.f16") if cache_dir else None
            batches = data.batches(split, image_size, batch_size)
            cached[split] = cache_features(extractor, batches, cache_file)

    _, wall, load = timed(run)
    images = sum(len(labels) for _, labels in cached.values())
    return cached, {"seconds": wall, "images": images, "images_per_s": images / wall} | load


def train_on_cache(trained, cached, epochs, batch_size, learning_rate) -> dict:
    """fit() on cached_batches with validation, as the notebooks do; epoch timings."""
    compile_binary(trained, learning_rate)
    train = cached_batches(*cached["train"], batch_size, shuffle=True, seed=SEED)
    validation = cached_batches(*cached["validation"], batch_size)
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
    batches = cached_batches(*cached[split], batch_size)
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
    model = build_model(size, None)
    forward = forward_rate(submodel(model, None, "pooled_features"), size, batch, 3)
    return {"forward_float32": forward} | fit_phases_on_images(model, data, settings)


def run_without_cache(data, settings) -> dict:
    """The notebooks with USE_FEATURE_CACHE=False: images in every epoch, at the chosen policy."""
    keras.utils.set_random_seed(SEED)
    return fit_phases_on_images(build_model(settings["image_size"], None), data, settings)


def run_project(data, settings, cache_dir: str, policy: str) -> dict:
    """The notebooks' cached path, at the chosen precision, through tutorial_plumbing."""
    keras.utils.set_random_seed(SEED)
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size, None)
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
    train_cache = cached_batches(*cached["train"], batch, shuffle=True, seed=SEED)
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
    model = build_model(size, None)
    store_dir = os.path.join(scratch, "frozen_store")
    results = {}

    def store():
        with quiet():  # its progress lines
            return frozen_store(store_dir, data, model, CACHED_LAYER, size, batch)

    def part_2():
        stored, results["store_s"], _ = timed(store)
        rest_of_base = submodel(model, CACHED_LAYER, "pooled_features")
        features, results["pooled_s"], _ = timed(
            lambda: {
                split: cache_features(rest_of_base, cached_batches(*stored[split], batch))
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
        test = cached_batches(*stored["test"], batch)
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
# Peak memory, one fresh process per dataset size


def rss_child(settings) -> None:
    """The project path end to end on `images` JPEGs; prints its peak RSS as a JSON line."""
    with tempfile.TemporaryDirectory(prefix="speed_rss_") as scratch:
        folder = Path(scratch) / "images"
        write_jpeg_folder(folder, settings["images"])
        data = load_folder_quietly(folder)
        with quiet():
            policy = choose_precision()
        project = run_rss_path(data, settings, scratch)
        print(json.dumps({"images": settings["images"], "policy": policy} | project))


def run_rss_path(data, settings, cache_dir) -> dict:
    """Notebook 02 then 03 on the cache (one epoch each); RSS now and at peak after each."""
    size, batch = settings["image_size"], settings["batch_size"]
    model = build_model(size, None)
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
    return settings | {"json": json_path, "rss_child": args.rss_child}


COMMAND_ONLY = ("json", "rss_child")


def run_benchmark(settings) -> dict:
    load_at_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="speed_") as scratch:
        folder = Path(scratch) / "images"
        jpeg_kib = write_jpeg_folder(folder, settings["images"])
        data = load_folder_quietly(folder)
        counts = {split: sum(data.counts[split]) for split in ("train", "validation", "test")}
        naive = run_naive(data, settings)
        gc.collect()
        policy = choose_precision()
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
    return {
        "date": datetime.datetime.now(datetime.UTC).date().isoformat(),
        "quick": settings["quick"],
        "machine": machine,
        "versions": versions(),
        "peak_rss_mb": {n: r["peak_rss_mb"] for n, r in rss.items()},
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
    }


def main(argv=None) -> dict | None:
    settings = parse_settings(argv)
    if settings["rss_child"]:
        rss_child(settings)
        return None
    import speed_report  # the figures from the timings, and the printed report

    started = time.perf_counter()
    report = speed_report.add_figures(run_benchmark(settings))
    report["benchmark_wall_s"] = time.perf_counter() - started
    speed_report.print_report(report)
    print(f"\nBenchmark took {report['benchmark_wall_s']:.0f} s")
    if settings["json"]:
        Path(settings["json"]).parent.mkdir(parents=True, exist_ok=True)
        Path(settings["json"]).write_text(json.dumps(report, indent=2) + "\n")
        print(f"Results written to {settings['json']}")
    return report


if __name__ == "__main__":
    main()
