"""The frozen store: the layers that stay frozen run once per image for the whole series.

Part 2 runs them over every split and stores their output; part 3 fine-tunes from the store
and part 4 predicts the test set from it, neither running those layers again. A kernel
start-up script counts the images that go through `block1_conv1` in each notebook cell.
"""

import json
import re
import shutil
from pathlib import Path

import keras
import numpy as np
import pytest
from conftest import TINY, build_notebook_02_model, notebook_text, run_notebooks

from tutorial_plumbing import feature_store
from tutorial_plumbing.data_in import load_two_class_data
from tutorial_plumbing.feature_store import (
    Progress,
    cached_batches,
    frozen_store,
    open_frozen_store,
    reads_only_from,
    store_fingerprint,
)
from tutorial_plumbing.messages import CannotContinue

# Every image through block1_conv1 appends "<cell number> <images>" to a file, when it runs
# (in fit, predict or eager calls alike), not when a function is traced. Counting stops at
# part 4's export cell: TFLite cannot convert the counting operation.
COUNT_FROZEN_PASSES = """
import keras
import tensorflow as tf
from IPython import get_ipython

_count_file = {path!r}
_plain_call = keras.layers.Conv2D.call
_counting = [True]


def _stop_before_export(info):
    if "= float32_copy(model)" in info.raw_cell:
        _counting[0] = False


get_ipython().events.register("pre_run_cell", _stop_before_export)


def _record(images):
    with open(_count_file, "a") as file:
        file.write(f"{{get_ipython().execution_count}} {{int(images)}}\\n")
    return images


def _counted_call(self, inputs, *args, **kwargs):
    if self.name == "block1_conv1" and _counting[0]:
        images = tf.numpy_function(_record, [tf.shape(inputs)[0]], tf.int32, stateful=True)
        with tf.control_dependencies([images]):
            inputs = tf.identity(inputs)
    return _plain_call(self, inputs, *args, **kwargs)


keras.layers.Conv2D.call = _counted_call
"""


def passes_by_cell(count_file: Path, notebook) -> dict:
    """{source of the cell: images through block1_conv1 in it}."""
    sources = {cell.get("execution_count"): cell.source for cell in notebook.cells}
    counts = {}
    if count_file.exists():
        for line in count_file.read_text().splitlines():
            cell, images = map(int, line.split())
            counts[sources[cell]] = counts.get(sources[cell], 0) + images
    return counts


def run_counted(run_dir: Path, prefix: str, parameters: dict) -> tuple:
    count_file = run_dir.parent / f"passes_{prefix}_{len(list(run_dir.parent.glob('passes_*')))}"
    startup = {"count_frozen_passes.py": COUNT_FROZEN_PASSES.format(path=str(count_file))}
    executed = run_notebooks(run_dir, [prefix], parameters, startup)[prefix]
    return passes_by_cell(count_file, executed), executed


@pytest.fixture(scope="module")
def stored_series(tmp_path_factory, easy_folder):
    run_dir = tmp_path_factory.mktemp("stored") / "run"
    parameters = dict(TINY, DATA_DIR=str(easy_folder), USE_FEATURE_CACHE=True)
    passes = {}
    executed = {}
    for prefix in ["02", "03", "04"]:
        passes[prefix], executed[prefix] = run_counted(run_dir, prefix, parameters)
    return run_dir, parameters, passes, executed


def test_part_2_runs_each_image_once_through_the_frozen_layers(stored_series, easy_folder):
    run_dir, _, passes, executed = stored_series
    data = load_two_class_data(str(easy_folder), seed=TINY["SEED"])
    images = sum(sum(counts) for counts in data.counts.values())
    assert sum(passes["02"].values()) == images  # frozen passes per image: 1
    stored = json.loads((run_dir / "frozen_store" / "fingerprint.json").read_text())
    assert stored["fingerprint"]["layer"] == "block4_pool"
    assert stored["fingerprint"]["IMG_SIZE"] == TINY["IMG_SIZE"]
    assert "Through the frozen layers up to block4_pool:" in notebook_text(executed["02"])


def test_parts_3_and_4_do_not_run_the_frozen_layers_on_stored_splits(stored_series):
    _, _, passes, executed = stored_series
    assert passes["03"] == {}, "part 3 ran blocks 1 to 4 again"
    assert "Reusing the frozen store" in notebook_text(executed["03"])
    # The cell that scores the test split (not Grad-CAM's, whose example_probabilities match
    # a plain substring search).
    test_cell = [s for s in passes["04"] if re.search(r"^\s*probabilities =", s, re.MULTILINE)]
    assert test_cell == [], "part 4 predicted the test set through the whole model"
    # Grad-CAM, the new photo and the export check still use the whole model.
    assert sum(passes["04"].values()) > 0


def test_another_unfreeze_from_rebuilds_the_store(stored_series, easy_folder):
    run_dir, parameters, _, _ = stored_series
    passes, executed = run_counted(run_dir, "03", dict(parameters, UNFREEZE_FROM="block4_conv1"))
    text = notebook_text(executed)
    assert (
        "was made for other settings (layer 'block4_pool' -> 'block3_pool'): rebuilding it." in text
    )
    assert sum(passes.values()) > 0
    stored = json.loads((run_dir / "frozen_store" / "fingerprint.json").read_text())
    assert stored["fingerprint"]["layer"] == "block3_pool"


def small_data(folder):
    return load_two_class_data(str(folder), seed=TINY["SEED"])


def test_a_changed_image_size_rebuilds_the_store(tmp_path, easy_folder, capsys):
    data = small_data(easy_folder)
    folder = tmp_path / "frozen_store"
    model = build_notebook_02_model(32)
    frozen_store(folder, data, model, "block4_pool", 32, 8)
    frozen_store(folder, data, model, "block4_pool", 32, 8)
    assert "Reusing the frozen store" in capsys.readouterr().out
    bigger = build_notebook_02_model(48)
    stored = frozen_store(folder, data, bigger, "block4_pool", 48, 8)
    assert "(IMG_SIZE 32 -> 48" in capsys.readouterr().out
    assert stored["train"][0].shape[1:] == (3, 3, 512)


def test_other_weights_rebuild_the_store(tmp_path, easy_folder, capsys):
    """Random weights first, then ImageNet's: the first run's outputs must not be reused."""
    data = small_data(easy_folder)
    folder = tmp_path / "frozen_store"
    frozen_store(folder, data, build_notebook_02_model(32), "block4_pool", 32, 8)
    imagenet = build_notebook_02_model(32, weights="imagenet")
    frozen_store(folder, data, imagenet, "block4_pool", 32, 8)
    out = capsys.readouterr().out
    assert "was made for other settings (weights " in out and "rebuilding it" in out


def test_stored_and_whole_model_predictions_agree(tmp_path, easy_folder):
    data = small_data(easy_folder)
    model = build_notebook_02_model(32, seed=1)
    stored = frozen_store(tmp_path / "store", data, model, "block4_pool", 32, 8)
    after_store = keras.Model(model.get_layer("block4_pool").output, model.output)
    features, labels = stored["test"]
    from_store = after_store.predict(cached_batches(features, labels, 8), verbose=0)
    whole = model.predict(data.batches("test", 32, 8), verbose=0)
    np.testing.assert_allclose(from_store, whole, atol=1e-2)
    assert labels.tolist() == [
        int(label) for _, batch in data.batches("test", 32, 8) for label in batch
    ]


def test_a_store_cut_off_half_way_is_never_used(tmp_path, easy_folder, monkeypatch):
    data = small_data(easy_folder)
    model = build_notebook_02_model(32)
    folder = tmp_path / "frozen_store"

    def broken(*args, **kwargs):
        raise KeyboardInterrupt  # the kernel stopped while writing

    with monkeypatch.context() as patch:
        patch.setattr(np, "save", broken)
        with pytest.raises(KeyboardInterrupt):
            frozen_store(folder, data, model, "block4_pool", 32, 8)
    assert not folder.exists()
    fingerprint = store_fingerprint(data, 32, model, "block4_pool")
    assert open_frozen_store(folder, fingerprint) is None
    stored = frozen_store(folder, data, model, "block4_pool", 32, 8)
    assert len(stored["train"][1]) == sum(data.counts["train"])
    assert [p.name for p in tmp_path.iterdir()] == ["frozen_store"]  # no partial left


def residual_model():
    """A stem, then a block whose Add reads the stem around `block_conv` (as ConvNeXt does)."""
    inputs = keras.Input((32, 32, 3))
    stem = keras.layers.Conv2D(4, 3, padding="same", name="stem")(inputs)
    block = keras.layers.Conv2D(4, 3, padding="same", name="block_conv")(stem)
    joined = keras.layers.Add(name="join")([stem, block])
    pooled = keras.layers.GlobalAveragePooling2D(name="pooled_features")(joined)
    return keras.Model(inputs, keras.layers.Dense(1, name="probability")(pooled))


def test_a_store_the_rest_of_the_model_cannot_run_from_stops_before_any_work(tmp_path, easy_folder):
    model = residual_model()
    assert reads_only_from(model, "stem")  # everything after it starts from it
    assert reads_only_from(model, "join")
    assert not reads_only_from(model, "block_conv")  # `join` also reads `stem`
    with pytest.raises(CannotContinue) as caught:
        frozen_store(tmp_path / "store", small_data(easy_folder), model, "block_conv", 32, 8)
    message = str(caught.value)
    assert "The layers after block_conv also read the output of earlier layers" in message
    assert "What to do: set USE_FEATURE_CACHE = False in parts 2 and 3" in message
    assert not (tmp_path / "store").exists()


def test_progress_says_images_done_rate_and_time_left_and_ends_once(monkeypatch, capsys):
    clock = [1000.0]
    monkeypatch.setattr(feature_store.time, "time", lambda: clock[0])
    progress = Progress("Through the frozen layers", total=300, every=10)
    for _ in range(3):  # 100 images every 10 s: a line each time
        clock[0] += 10
        progress.add(100)
    progress.finish()  # the last line already said it all
    assert capsys.readouterr().out.splitlines() == [
        "Through the frozen layers: 100 of 300 images, 10/s, about 20 s left",
        "Through the frozen layers: 200 of 300 images, 10/s, about 10 s left",
        "Through the frozen layers: 300 images in 30.0 s, 10/s",
    ]
    clock[0] += 5
    progress.add(20)  # too soon for a line of its own: finish() says it
    progress.finish()
    assert capsys.readouterr().out == "Through the frozen layers: 320 images in 35.0 s, 9/s\n"


def test_a_store_that_will_not_fit_stops_with_a_clear_message(tmp_path, easy_folder, monkeypatch):
    data = small_data(easy_folder)
    model = build_notebook_02_model(32)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1, 1, 1000))
    with pytest.raises(CannotContinue, match="only 0.00 GiB are free"):
        frozen_store(tmp_path / "store", data, model, "block4_pool", 32, 8)
    assert not (tmp_path / "store").exists()


# The first run of a training raises after its 2nd epoch, once the backup is saved: a kernel
# killed there. The flag file makes the second run go through.
KILL_AFTER_EPOCH_2 = """
from pathlib import Path

import keras

_flag = Path({flag!r})
_plain_on_epoch_end = keras.callbacks.BackupAndRestore.on_epoch_end


def _killed_after_epoch_2(self, epoch, logs=None):
    _plain_on_epoch_end(self, epoch, logs)
    if epoch == 1 and not _flag.exists():
        _flag.touch()
        raise RuntimeError("kernel killed after epoch 2 (simulated by the tests)")


keras.callbacks.BackupAndRestore.on_epoch_end = _killed_after_epoch_2
"""


def test_a_training_killed_after_its_second_epoch_resumes_to_the_right_count(tmp_path, easy_folder):
    import papermill

    run_dir = tmp_path / "run"
    parameters = dict(
        TINY, DATA_DIR=str(easy_folder), EPOCHS=4, FINE_TUNE_EPOCHS=4, USE_FEATURE_CACHE=True
    )
    for prefix, name, log in [
        ("02", "head_trained.json", "head"),
        ("03", "fine_tuned.json", "fine_tuning"),
    ]:
        startup = {"kill.py": KILL_AFTER_EPOCH_2.format(flag=str(tmp_path / f"killed_{prefix}"))}
        with pytest.raises(papermill.PapermillExecutionError, match="kernel killed"):
            run_notebooks(run_dir, [prefix], parameters, startup)
        assert (run_dir / "resume" / log / "backup").is_dir()
        executed = run_notebooks(run_dir, [prefix], parameters, startup)[prefix]
        text = notebook_text(executed)
        assert "Epoch 3/4" in text and "Epoch 1/4" not in text, "it started over"
        history = json.loads((run_dir / name).read_text())["history"]
        assert len(history["loss"]) == len(history["val_loss"]) == 4
        assert not (run_dir / "resume" / log).exists()
