"""Unit tests of the plumbing the notebooks share."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import build_notebook_02_model

from tutorial_plumbing import data_in, machine
from tutorial_plumbing.bases import VGG16_WEIGHTS_URL, explain_weights_problem
from tutorial_plumbing.data_in import load_cats_vs_dogs, load_two_class_data, resize_image
from tutorial_plumbing.evaluation import binary_metrics, grad_cam, predict_file
from tutorial_plumbing.feature_store import FeatureFile, cache_features, cached_batches
from tutorial_plumbing.machine import FORCE_PRECISION, POLICIES, choose_precision, fits_in_memory
from tutorial_plumbing.messages import CannotContinue
from tutorial_plumbing.model import make_augmentation
from tutorial_plumbing.pictures import overlay_heatmap, plot_history
from tutorial_plumbing.saving import float32_copy, load_model_from
from tutorial_plumbing.your_images import load_image


def image_batches(count=20, image_size=32, batch_size=8, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (count, image_size, image_size, 3)).astype("float32")
    labels = rng.integers(0, 2, count)
    return images, labels, tf.data.Dataset.from_tensor_slices((images, labels)).batch(batch_size)


def test_cannot_continue_shows_one_line_instead_of_a_traceback():
    error = CannotContinue("No model at x.\nWhat to do: run 02 first.")
    assert error._render_traceback_() == [
        "CannotContinue: No model at x.\nWhat to do: run 02 first."
    ]


@pytest.mark.parametrize(
    ("gpu_capability", "cpu_bf16", "expected"),
    [
        ((7, 5), False, "mixed_float16"),
        ((6, 0), False, "float32"),
        (None, True, "mixed_bfloat16"),
        (None, False, "float32"),
    ],
)
def test_precision_follows_the_hardware(
    monkeypatch, restore_policy, capsys, gpu_capability, cpu_bf16, expected
):
    monkeypatch.delenv(FORCE_PRECISION, raising=False)
    gpus = ["GPU:0"] if gpu_capability else []
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: gpus)
    monkeypatch.setattr(
        tf.config.experimental,
        "get_device_details",
        lambda device: {"compute_capability": gpu_capability, "device_name": "Test GPU"},
    )
    monkeypatch.setattr(machine, "cpu_supports_bfloat16", lambda: cpu_bf16)
    assert choose_precision() == expected
    assert keras.mixed_precision.global_policy().name == expected
    assert f"Precision: {expected}, because" in capsys.readouterr().out


@pytest.mark.parametrize("policy", POLICIES)
def test_a_forced_precision_wins_over_the_hardware(monkeypatch, restore_policy, capsys, policy):
    monkeypatch.setenv(FORCE_PRECISION, policy)
    monkeypatch.setattr(machine, "cpu_supports_bfloat16", lambda: policy == "float32")
    assert choose_precision() == policy
    assert keras.mixed_precision.global_policy().name == policy
    reason = "the environment variable TUTORIAL_PRECISION asks for it"
    assert capsys.readouterr().out == f"Precision: {policy}, because {reason}.\n"


def test_a_forced_precision_that_does_not_exist_is_one_message(monkeypatch, restore_policy):
    monkeypatch.setenv(FORCE_PRECISION, "float16")
    with pytest.raises(CannotContinue, match="TUTORIAL_PRECISION='float16' is not a pol"):
        choose_precision()


def test_weights_download_failure_becomes_a_message_and_other_errors_pass():
    with pytest.raises(CannotContinue, match="WEIGHTS = None"):
        with explain_weights_problem("imagenet"):
            raise Exception("URL fetch failure on https://x: None -- no network")
    for weights in ("imagenet", None, "/some/file.h5"):
        with pytest.raises(TypeError, match="bad argument"):
            with explain_weights_problem(weights):
                raise TypeError("bad argument")
    # With the published file (md5 checked), a model it does not fit is a bug, not a download.
    with pytest.raises(ValueError, match="Layer count mismatch"):
        with explain_weights_problem("imagenet"):
            raise ValueError("Layer count mismatch when loading weights from file.")


def test_weights_url_is_the_one_keras_downloads():
    from keras.src.applications import vgg16 as keras_vgg16

    assert VGG16_WEIGHTS_URL == keras_vgg16.WEIGHTS_PATH_NO_TOP


def test_missing_model_names_the_notebook_to_run(tmp_path):
    with pytest.raises(CannotContinue, match="run 02_feature_extraction.ipynb first"):
        load_model_from(tmp_path / "nothing.keras", made_by="02_feature_extraction.ipynb")


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16"])
def test_cached_features_give_the_same_predictions_as_the_whole_model(
    tmp_path, restore_policy, policy
):
    """Phase 1 (pooled features in memory) and phase 2 (block4_pool maps in a file)."""
    keras.mixed_precision.set_global_policy(policy)
    model = build_notebook_02_model()
    images, _, batches = image_batches()
    expected = model.predict(images, verbose=0)

    extractor = keras.Model(model.input, model.get_layer("pooled_features").output)
    head = keras.Model(model.get_layer("pooled_features").output, model.output)
    features, labels = cache_features(extractor, batches)
    assert features.dtype == np.float16 and features.shape == (20, 512)
    assert features.nbytes / len(features) <= 2048
    from_cache = head.predict(cached_batches(features, labels, 8), verbose=0)
    np.testing.assert_allclose(from_cache, expected, atol=2e-3)

    extractor = keras.Model(model.input, model.get_layer("block4_pool").output)
    top = keras.Model(model.get_layer("block4_pool").output, model.output)
    features, labels = cache_features(extractor, batches, tmp_path / "cache.f16")
    assert isinstance(features, FeatureFile)
    assert features.shape == (20, 2, 2, 512)
    from_file = top.predict(cached_batches(features, labels, 8), verbose=0)
    np.testing.assert_allclose(from_file, expected, atol=2e-3)


def test_cached_batches_keep_each_feature_with_its_label_and_cover_every_row(tmp_path):
    rows = np.arange(50, dtype=np.float16).reshape(50, 1).repeat(4, axis=1)
    labels = np.arange(50) % 2
    path = tmp_path / "rows.f16"
    path.write_bytes(rows.tobytes())
    on_disk = FeatureFile(path, (4,), 50)
    for features in (rows, on_disk):
        seen = []
        for batch, batch_labels in cached_batches(features, labels, 8, True, seed=1):
            values = batch.numpy()[:, 0].astype(int)
            assert (values % 2 == batch_labels.numpy()).all()
            seen.extend(values)
        assert sorted(seen) == list(range(50))
        assert seen != list(range(50)), "shuffle=True must shuffle"


def test_model_saved_as_keras_file_reloads_and_predicts_the_same(tmp_path):
    model = build_notebook_02_model()
    images, _, _ = image_batches(count=4)
    path = tmp_path / "model.keras"
    model.save(path)
    reloaded = load_model_from(path, made_by="02")
    np.testing.assert_array_equal(
        reloaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_binary_metrics_match_a_hand_computed_example():
    labels = [1, 1, 1, 0, 0, 0, 1, 0]
    probabilities = [0.9, 0.8, 0.4, 0.3, 0.6, 0.1, 0.7, 0.2]
    # At 0.5: predicted 1 1 0 0 1 0 1 0 -> TP 3, FN 1, FP 1, TN 3.
    result = binary_metrics(labels, probabilities, threshold=0.5)
    assert result["confusion_matrix"] == [[3, 1], [1, 3]]
    assert result["accuracy"] == pytest.approx(6 / 8)
    assert result["precision"] == pytest.approx(3 / 4)
    assert result["recall"] == pytest.approx(3 / 4)
    assert result["f1"] == pytest.approx(3 / 4)
    # 15 of the 16 (positive, negative) pairs are ranked right: only 0.4 < 0.6.
    assert result["roc_auc"] == pytest.approx(15 / 16)
    # A stricter threshold: predicted 1 1 0 0 0 0 0 0 -> TP 2, FN 2, FP 0, TN 4.
    strict = binary_metrics(labels, probabilities, threshold=0.75)
    assert strict["confusion_matrix"] == [[4, 0], [2, 2]]
    assert (strict["precision"], strict["recall"]) == (1.0, 0.5)
    assert strict["roc_auc"] == result["roc_auc"]


@pytest.fixture(scope="module")
def saved_series_model(tmp_path_factory):
    """A model built as in the series, saved and reloaded: what notebook 04 works on."""
    path = tmp_path_factory.mktemp("model") / "fine_tuned.keras"
    build_notebook_02_model(image_size=64).save(path)
    return load_model_from(path, made_by="03")


def test_grad_cam_gives_one_normalised_heatmap_per_image(saved_series_model):
    rng = np.random.default_rng(1)
    images = rng.uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    images[1, :32] = 0  # a different picture: the top half black
    heatmaps, probabilities = grad_cam(saved_series_model, images)
    assert heatmaps.shape == (2, 4, 4)  # block5_conv3 at 64 px: a 4 x 4 grid
    assert heatmaps.min() >= 0 and heatmaps.max() <= 1
    assert np.allclose(heatmaps.max(axis=(1, 2)), 1.0)
    assert not np.allclose(heatmaps[0], heatmaps[1])
    expected = saved_series_model.predict(images, verbose=0)[:, 0]
    np.testing.assert_allclose(probabilities, expected, atol=1e-5)
    overlay = overlay_heatmap(images[0], heatmaps[0])
    assert overlay.shape == (64, 64, 3) and overlay.dtype == np.uint8


def test_float32_copy_predicts_like_the_mixed_precision_model(tmp_path, restore_policy):
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    model = build_notebook_02_model()
    copy = float32_copy(model)
    # Every layer of the copy computes and outputs float32 ([0] is the input). The preprocessing
    # is a model of Keras operations on the float32 input: float32 under any policy.
    assert {layer.output.dtype for layer in copy.layers} == {"float32"}
    assert {layer.compute_dtype for layer in copy.layers if layer.weights} == {"float32"}
    # The very same numbers, layer by layer (a fresh initialisation would predict about 0.5
    # too, with an untrained head: the predictions alone cannot tell).
    for ours, theirs in zip(model.weights, copy.weights, strict=True):
        assert ours.path == theirs.path
        np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs), err_msg=ours.path)
    images, _, _ = image_batches(count=4)
    np.testing.assert_allclose(
        copy.predict(images, verbose=0), model.predict(images, verbose=0), atol=0.02
    )


def test_predict_file_reads_an_image_and_refuses_a_non_image(tmp_path, saved_series_model):
    from PIL import Image

    photo = tmp_path / "photo.jpg"
    Image.new("RGB", (80, 60), (200, 30, 30)).save(photo)
    probability, image = predict_file(saved_series_model, photo, 64)
    expected_image = resize_image(load_image(photo), 64).numpy()
    np.testing.assert_array_equal(image, expected_image)  # read as training reads, 0-255
    expected = saved_series_model.predict(expected_image[None], verbose=0)[0, 0]
    assert probability == pytest.approx(float(expected), abs=1e-6)  # P(class 1), not P(class 0)
    assert abs(probability - 0.5) > 1e-3, "the test needs a model that is not exactly undecided"
    notes = tmp_path / "notes.jpg"
    notes.write_text("not a photo")
    with pytest.raises(CannotContinue, match="notes.jpg: not an image"):
        predict_file(saved_series_model, notes, 64)


def test_images_kept_in_memory_match_images_decoded_every_epoch(tmp_path, capsys):
    from conftest import write_two_class_folder

    folder = write_two_class_folder(tmp_path / "photos", per_class=12)
    data = load_two_class_data(str(folder), seed=0)
    fresh = np.concatenate([x for x, _ in data.batches("train", 32, 8)])
    kept = data.batches("train", 32, 8, keep_in_memory=True)
    assert "keeping them in memory" in capsys.readouterr().out
    for _ in range(2):  # the second epoch reads from memory
        np.testing.assert_allclose(np.concatenate([x for x, _ in kept]), fresh, atol=0.5)
    shuffled = data.batches("train", 32, 8, shuffle=True, seed=1, keep_in_memory=True)
    epochs = [np.concatenate([y for _, y in shuffled]) for _ in range(2)]
    assert sorted(epochs[0]) == sorted(epochs[1]) and len(epochs[0]) == len(fresh)


def test_every_dataset_the_notebooks_train_on_has_the_autotuner_off(tmp_path):
    """With it on, passes over our datasets often ended seconds late (see without_autotune)."""
    from conftest import write_two_class_folder

    folder = write_two_class_folder(tmp_path / "photos", per_class=6)
    data = load_two_class_data(str(folder), seed=0)
    features, labels = np.zeros((6, 4), np.float16), np.arange(6) % 2
    datasets = [
        data.batches("train", 32, 4),
        data.batches("train", 32, 4, shuffle=True, seed=1, augmentation=make_augmentation(1)),
        data.batches("validation", 32, 4, keep_in_memory=True),
        cached_batches(features, labels, 4, shuffle=True, seed=1),
    ]
    for dataset in datasets:
        assert dataset.options().autotune.enabled is False
        assert dataset.repeat().options().autotune.enabled is False  # as fit() may wrap it


def test_images_too_large_for_memory_are_decoded_every_epoch(monkeypatch, capsys):
    monkeypatch.setattr(machine.Path, "read_text", lambda self: "MemAvailable: 1000 kB\n")
    assert not fits_in_memory(10**9, "train")
    assert "too large: decoding every epoch instead" in capsys.readouterr().out


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_the_model_feeds_vgg16_exactly_what_preprocess_input_makes(restore_policy, policy):
    """Preprocessing inside the model: once, VGG16's own, on 0-255 pixels, in float32."""
    from keras.applications import vgg16

    keras.mixed_precision.set_global_policy(policy)
    model = build_notebook_02_model()
    images, _, _ = image_batches(count=4)
    first_convolution_sees = keras.Model(model.input, model.get_layer("block1_conv1").input)
    np.testing.assert_array_equal(
        first_convolution_sees.predict(images, verbose=0), vgg16.preprocess_input(images.copy())
    )


@pytest.mark.parametrize("policy", ["float32", "mixed_bfloat16", "mixed_float16"])
def test_a_model_saved_under_any_policy_reloads_with_plain_keras_and_predicts_the_same(
    tmp_path, restore_policy, policy
):
    keras.mixed_precision.set_global_policy(policy)
    model = build_notebook_02_model()
    images, _, _ = image_batches(count=4)
    path = tmp_path / "model.keras"
    model.save(path)
    keras.mixed_precision.set_global_policy("float32")  # as in a fresh program
    reloaded = keras.models.load_model(path)
    assert reloaded.get_layer("block1_conv1").dtype_policy.name == policy
    np.testing.assert_array_equal(
        reloaded.predict(images, verbose=0), model.predict(images, verbose=0)
    )


def test_a_failed_dataset_download_is_one_message_and_leaves_nothing_half_written(
    tmp_path, monkeypatch
):
    import functools

    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds, "builder", functools.partial(tfds.builder, data_dir=str(tmp_path)))
    monkeypatch.setattr(data_in, "host_reachable", lambda host: True)

    def connection_reset(self, *args, **kwargs):
        (tmp_path / "downloads").mkdir(exist_ok=True)
        (tmp_path / "downloads" / "cats_vs_dogs.zip.tmp.0123").mkdir()
        (tmp_path / "downloads" / "cats_vs_dogs.zip.tmp.0123" / "part").write_bytes(b"PK half")
        raise ConnectionResetError("connection reset by peer (simulated)")

    monkeypatch.setattr(tfds.download.DownloadManager, "download", connection_reset)
    for _ in range(2):  # the second run meets what the first one left, and fails the same way
        with pytest.raises(CannotContinue) as error:
            load_cats_vs_dogs()
        message = str(error.value)
        assert message.startswith("The cats_vs_dogs download failed: ")
        assert "connection reset by peer" in message and "DATA_DIR" in message
        assert len(message.splitlines()) == 2
    tfds_folders = {"downloads", "extracted"}  # TFDS's own empty folders may stay
    leftovers = [path.name for path in tmp_path.rglob("*") if path.name not in tfds_folders]
    assert leftovers == [], "a half-written download or dataset would trip the next run"
    assert not tfds.builder("cats_vs_dogs").is_prepared()


def test_learning_curves_mark_fine_tuning_inside_the_plot_with_whole_epochs(monkeypatch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.setattr(plt, "show", lambda: None)  # keep the figure to look at it
    head = {"accuracy": [0.6, 0.7, 0.8], "loss": [0.7, 0.5, 0.4]}
    head |= {"val_accuracy": [0.62, 0.71, 0.79], "val_loss": [0.69, 0.52, 0.45]}
    fine = {"accuracy": [0.85], "val_accuracy": [0.86], "loss": [0.35], "val_loss": [0.33]}
    plot_history([("head", head), ("fine-tuning", fine)])  # one epoch after the line
    figure = plt.gcf()
    renderer = figure.canvas.get_renderer()
    for axis in figure.axes:
        (label,) = [text for text in axis.texts if text.get_text() == "fine-tuning starts"]
        inside = axis.get_window_extent(renderer)
        box = label.get_window_extent(renderer)
        assert inside.x0 <= box.x0 and box.x1 <= inside.x1 and box.y0 >= inside.y0
        assert all(tick == int(tick) for tick in axis.get_xticks())
        assert len(axis.lines[0].get_xdata()) == 3 and list(axis.lines[2].get_xdata()) == [4]
    plt.close(figure)
