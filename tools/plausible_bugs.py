"""Make plausible bugs one at a time, in a scratch copy, and see whether the tests catch each.

    python tools/plausible_bugs.py            # every bug (about 15 minutes on 2 cores)
    python tools/plausible_bugs.py --list     # the bugs and the tests that should catch them
    python tools/plausible_bugs.py labels_swapped threshold_inverted

Each bug is one exact edit of a file: `old` must occur exactly once (in one notebook cell, for a
notebook), so the list fails loudly when the code it edits changes. The edit is made in a scratch
copy of the working tree (your files are not touched), tutorial_plumbing/model.py is made again
from the lesson cells as after any edit, and the tests named for that bug run there (their
notebooks import the helpers of that copy). A bug is caught when those tests
fail. Run it on a green tree: a test that already fails would "catch" everything.
"""

import argparse
import dataclasses
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Bug:
    name: str
    what: str
    file: str
    old: str
    new: str
    tests: list
    also: tuple = ()  # more edits of the same mistake: (file, old, new)


SERIES = "tests/test_series.py::"
WEIGHTS = "tests/test_official_weights.py::"
PRECISION = "tests/test_precision.py::"
BUGS = [
    Bug(
        "labels_swapped",
        "the folder loader gives each image the other class's label",
        "tutorial_plumbing/data_in.py",
        "np.array([label for _, label in pairs], np.int64)",
        "np.array([1 - label for _, label in pairs], np.int64)",
        ["tests/test_labels.py::test_images_under_each_class_folder_get_that_class_label"],
    ),
    Bug(
        "tfds_class_names_reversed",
        "cats_vs_dogs class names not in the dataset's own label order",
        "tutorial_plumbing/data_in.py",
        'class_names=builder.info.features["label"].names,',
        'class_names=builder.info.features["label"].names[::-1],',
        ["tests/test_labels.py::test_cats_vs_dogs_names_and_labels_come_from_the_dataset"],
    ),
    Bug(
        "base_trainable_in_part_2",
        "the VGG16 base is left trainable in part 2",
        "notebooks/02_feature_extraction.ipynb",
        "base.trainable = False",
        "base.trainable = True",
        [SERIES + "test_part_2_trains_the_head_only"],
    ),
    Bug(
        "preprocessing_dropped",
        "the model feeds raw pixels to VGG16",
        "notebooks/02_feature_extraction.ipynb",
        "x = preprocessing()(inputs) if preprocessing else inputs",
        "x = inputs",
        ["tests/test_plumbing.py::test_the_model_feeds_vgg16_exactly_what_preprocess_input_makes"],
    ),
    Bug(
        "rescaled_twice",
        "pixels divided by 255 before VGG16's preprocessing",
        "notebooks/02_feature_extraction.ipynb",
        "x = preprocessing()(inputs) if preprocessing else inputs",
        "x = preprocessing()(layers.Rescaling(1 / 255)(inputs)) if preprocessing else inputs",
        ["tests/test_plumbing.py::test_the_model_feeds_vgg16_exactly_what_preprocess_input_makes"],
    ),
    Bug(
        "held_out_images_in_training",
        "validation and test images also go into the training split",
        "tutorial_plumbing/your_images.py",
        'splits["train"] += [(path, label) for path in paths[start:]]',
        'splits["train"] += [(path, label) for path in paths]',
        ["tests/test_own_images.py::test_split_is_seeded_stratified_and_without_overlap"],
    ),
    Bug(
        "copies_cut_apart",
        "the folder split cuts a group of copies of a photo across train, validation and test",
        "tutorial_plumbing/your_images.py",
        "while end not in unit_ends and end < len(paths):",
        "while False:",
        ["tests/test_duplicates.py::test_a_pair_that_a_plain_split_cuts_apart_ends_in_one_split"],
    ),
    Bug(
        "cache_rows_apart_from_labels",
        "cached features read in one order, their labels in another",
        "tutorial_plumbing/feature_store.py",
        "return np.asarray(features[indices], dtype=np.float16), labels[indices]",
        "return np.asarray(features[indices], dtype=np.float16), labels[indices[::-1]]",
        [
            "tests/test_plumbing.py::"
            "test_cached_batches_keep_each_feature_with_its_label_and_cover_every_row"
        ],
    ),
    Bug(
        "fine_tuning_unfreezes_everything",
        "unfreeze_from makes every layer trainable",
        "notebooks/03_fine_tuning.ipynb",
        "layer.trainable = index >= first",
        "layer.trainable = True",
        [SERIES + "test_fine_tuning_unfroze_block5_only"],
    ),
    Bug(
        "best_weights_not_restored",
        "part 2 keeps the last epoch's weights instead of the best epoch's",
        "notebooks/02_feature_extraction.ipynb",
        "restore_best_weights=True",
        "restore_best_weights=False",
        [SERIES + "test_the_weights_kept_are_the_best_epochs_not_the_last"],
    ),
    Bug(
        "threshold_inverted",
        "the metrics call class 1 below the threshold instead of above it",
        "tutorial_plumbing/evaluation.py",
        "predicted = (np.asarray(probabilities) >= threshold).astype(int)",
        "predicted = (np.asarray(probabilities) < threshold).astype(int)",
        ["tests/test_plumbing.py::test_binary_metrics_match_a_hand_computed_example"],
    ),
    Bug(
        "grad_cam_wrong_layer",
        "Grad-CAM explains block4 instead of the last convolution",
        "notebooks/04_evaluate_and_explain.ipynb",
        'GRAD_CAM_LAYER = "block5_conv3"',
        'GRAD_CAM_LAYER = "block4_conv3"',
        [SERIES + "test_grad_cam_explains_the_last_convolution"],
    ),
    Bug(
        "export_differs_from_model",
        "the float32 copy for the exports keeps fresh weights, not the model's",
        "tutorial_plumbing/saving.py",
        "copy.set_weights(model.get_weights())",
        "pass  # weights not copied",
        ["tests/test_plumbing.py::test_float32_copy_predicts_like_the_mixed_precision_model"],
    ),
    Bug(
        "model_needs_project_code",
        "preprocessing in a Lambda layer: the .keras file needs this project's code to load",
        "notebooks/02_feature_extraction.ipynb",
        "x = preprocessing()(inputs) if preprocessing else inputs",
        'x = layers.Lambda(vgg16.preprocess_input, name="preprocess")(inputs)',
        [SERIES + "test_saved_models_load_anywhere_and_score_as_the_notebooks_did"],
    ),
    Bug(
        "predict_file_other_class",
        "predicting a file returns the probability of the other class",
        "tutorial_plumbing/evaluation.py",
        "probability = float(model.predict(image[None], verbose=0)[0, 0])",
        "probability = 1 - float(model.predict(image[None], verbose=0)[0, 0])",
        [SERIES + "test_notebook_04_calls_a_new_red_photo_reds"],
    ),
    Bug(
        "copy_check_trusts_the_hash",
        "every pair near in the hash is called a copy: the pixel check is skipped",
        "tutorial_plumbing/duplicates.py",
        "if same_photo(fingerprints[first], fingerprints[second], known):",
        "if True:",
        [
            "tests/test_duplicates.py::test_a_folder_of_look_alike_faces_has_no_copies",
            "tests/test_duplicates.py::"
            "test_a_look_alike_pair_across_the_classes_is_kept_and_a_real_copy_is_left_out",
        ],
    ),
    Bug(
        "look_alikes_left_out",
        "a look-alike pair in both classes is left out as a label conflict, unconfirmed",
        "tutorial_plumbing/your_images.py",
        "    for group in groups:\n",
        "    for group in groups + [list(pair) for pair in found.lookalikes]:\n",
        [
            "tests/test_duplicates.py::"
            "test_a_look_alike_pair_across_the_classes_is_kept_and_a_real_copy_is_left_out",
        ],
    ),
    Bug(
        "colours_not_compared",
        "two colour photos alike in grey are called copies whatever their colours",
        "tutorial_plumbing/duplicates.py",
        "and colour_difference(first, second, trims) <= COLOUR_DIFFERENCE",
        "and True",
        [
            "tests/test_duplicates.py::"
            "test_colour_variants_are_two_photos_and_a_grey_copy_joins_its_own_original",
        ],
    ),
    Bug(
        "notebook_04_names_the_other_class",
        "notebook 04 names class 0 when the model says class 1",
        "notebooks/04_evaluate_and_explain.ipynb",
        "answer = class_1 if probability >= THRESHOLD else class_0",
        "answer = class_0 if probability >= THRESHOLD else class_1",
        [SERIES + "test_notebook_04_calls_a_new_red_photo_reds"],
    ),
    Bug(
        "imagenet_weights_left_random",
        "part 2 builds VGG16 without its ImageNet weights (random numbers)",
        "notebooks/02_feature_extraction.ipynb",
        "base = application(include_top=False, weights=weights, input_tensor=x, **options)",
        "base = application(include_top=False, weights=None, input_tensor=x, **options)",
        [WEIGHTS + "test_part_2_model_holds_the_files_numbers_layer_by_layer"],
    ),
    Bug(
        "preprocessing_with_weights",
        "the preprocessing as a layer with weights (as in c0a75b4): every VGG16 layer one off "
        "in Keras's loader, which refuses the file",
        "tutorial_plumbing/bases.py",
        "    return keras.Model(pixels, vgg16.preprocess_input(pixels), name=name)",
        "    layer = keras.layers.Conv2D(3, 1, name=name, trainable=False)\n"
        "    layer.build((None, None, None, 3))\n"
        "    kernel = np.zeros((1, 1, 3, 3), 'float32')\n"
        "    kernel[0, 0, [2, 1, 0], [0, 1, 2]] = 1.0\n"
        "    layer.set_weights([kernel, -np.array([103.939, 116.779, 123.68], 'float32')])\n"
        "    return layer",
        [WEIGHTS + "test_part_2_model_holds_the_files_numbers_layer_by_layer"],
    ),
    Bug(
        "preprocessing_in_the_pipeline",
        "VGG16's preprocessing moved out of the model into the input pipeline: the saved model "
        "no longer takes plain photos",
        "notebooks/02_feature_extraction.ipynb",
        "x = preprocessing()(inputs) if preprocessing else inputs",
        "x = inputs",
        ["tests/test_plumbing.py::test_the_model_feeds_vgg16_exactly_what_preprocess_input_makes"],
        also=(
            (
                "tutorial_plumbing/data_in.py",
                "    return tf.image.resize(image, (image_size, image_size), antialias=True)",
                "    resized = tf.image.resize(image, (image_size, image_size), antialias=True)\n"
                "    return keras.applications.vgg16.preprocess_input(resized)",
            ),
        ),
    ),
    Bug(
        "truncated_jpegs_accepted",
        "Pillow told to load truncated images: damaged photos go into training (the filter "
        "that leaves corrupt JPEGs out, dropped)",
        "tutorial_plumbing/your_images.py",
        "from PIL import Image, ImageOps\n",
        "from PIL import Image, ImageFile, ImageOps\n\nImageFile.LOAD_TRUNCATED_IMAGES = True\n",
        ["tests/test_own_images.py::test_scan_names_every_unusable_file_with_its_reason"],
    ),
    Bug(
        "cats_vs_dogs_test_overlaps_validation",
        "the test slice of cats_vs_dogs starts at 80%: validation images are tested again",
        "tutorial_plumbing/data_in.py",
        '"test": "train[90%:]",',
        '"test": "train[80%:]",',
        [SERIES + "test_tfds_builder_keeps_the_jpegs_skips_the_rest_and_splits_80_10_10"],
    ),
    Bug(
        "test_split_watched_in_part_3",
        "part 3's early stopping and checkpoint watch the test split instead of validation",
        "notebooks/03_fine_tuning.ipynb",
        "    validation_data=val_data,",
        "    validation_data=test_data,",
        [SERIES + "test_fine_tuning_keeps_the_best_epoch_on_the_validation_split"],
    ),
    Bug(
        "unfreeze_misses_its_first_layer",
        "unfreeze_from leaves UNFREEZE_FROM itself frozen (off by one)",
        "notebooks/03_fine_tuning.ipynb",
        "layer.trainable = index >= first",
        "layer.trainable = index > first",
        [SERIES + "test_fine_tuning_unfroze_block5_only"],
    ),
    Bug(
        "store_ignores_the_weights",
        "the frozen store's fingerprint leaves the weights out: a store of random weights is "
        "reused after switching to ImageNet's",
        "tutorial_plumbing/feature_store.py",
        '"weights": weights.hexdigest()[:16],',
        '"weights": "not checked",',
        ["tests/test_frozen_store.py::test_other_weights_rebuild_the_store"],
    ),
    Bug(
        "exports_from_the_16_bit_model",
        "part 4 exports the mixed-precision model itself instead of its float32 copy",
        "notebooks/04_evaluate_and_explain.ipynb",
        "export_model = float32_copy(model)",
        "export_model = model",
        [PRECISION + "test_the_model_learns_and_every_export_predicts_like_it"],
    ),
    Bug(
        "output_layer_in_16_bits",
        "the sigmoid output computes at the policy's precision instead of float32",
        "notebooks/02_feature_extraction.ipynb",
        'outputs = layers.Dense(1, activation="sigmoid", dtype="float32", name="probability")(x)',
        'outputs = layers.Dense(1, activation="sigmoid", name="probability")(x)',
        [PRECISION + "test_the_forced_policy_is_the_one_used_and_said"],
    ),
    Bug(
        "vgg16_gets_rgb",
        "the preprocessing flips the channels twice: VGG16 gets RGB where it learned BGR",
        "tutorial_plumbing/bases.py",
        "vgg16.preprocess_input(pixels), name=name)",
        "vgg16.preprocess_input(pixels[..., ::-1]), name=name)",
        ["tests/test_plumbing.py::test_the_model_feeds_vgg16_exactly_what_preprocess_input_makes"],
    ),
    Bug(
        "forced_precision_ignored",
        "TUTORIAL_PRECISION is read but the hardware decides anyway",
        "tutorial_plumbing/machine.py",
        "forced = os.environ.get(FORCE_PRECISION)",
        "forced = None",
        [PRECISION + "test_the_forced_policy_is_the_one_used_and_said"],
    ),
    Bug(
        "every_weights_error_called_a_download",
        "any error while building the model is reported as a failed weights download",
        "tutorial_plumbing/bases.py",
        'if weights == "imagenet" and download_failed(error):',
        "if True:",
        [
            "tests/test_plumbing.py::test_weights_download_failure_becomes_a_message_and_other_errors_pass"
        ],
    ),
    Bug(
        "cpp_notes_on_the_page",
        "the quiet start leaves the error stream on the page: TensorFlow's C++ notes show",
        "tutorial_plumbing/machine.py",
        "    os.dup2(kernel_log, 2)\n",
        "    pass  # the error stream stays on the page\n",
        ["tests/test_run_series.py::test_a_run_is_quiet"],
    ),
    Bug(
        "confusion_matrix_transposed",
        "the confusion matrix has predicted classes as rows and true classes as columns",
        "tutorial_plumbing/evaluation.py",
        "matrix = metrics.confusion_matrix(labels, predicted, labels=[0, 1])",
        "matrix = metrics.confusion_matrix(predicted, labels, labels=[0, 1])",
        ["tests/test_plumbing.py::test_binary_metrics_match_a_hand_computed_example"],
    ),
]


def scratch_copy() -> Path:
    """The working tree's files that git knows (tracked or not ignored), in a new folder."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\n")
    copy = Path(tempfile.mkdtemp(prefix="plausible_bug_"))
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    return copy


def edit(tree: Path, file: str, old: str, new: str, bug_name: str) -> None:
    """Replace `old` by `new` in one file of `tree`; fail when `old` is not there exactly once."""
    path = tree / file
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        cells = [cell for cell in notebook.cells if old in cell.source]
        count = sum(cell.source.count(old) for cell in cells)
        if count == 1:
            cells[0].source = cells[0].source.replace(old, new)
            nbformat.write(notebook, path)
    else:
        text = path.read_text()
        count = text.count(old)
        if count == 1:
            path.write_text(text.replace(old, new))
    if count != 1:
        raise SystemExit(f"{bug_name}: {old!r} occurs {count} times in {file}")


def apply(bug: Bug, tree: Path) -> None:
    """Make the bug's edits in `tree`."""
    for file, old, new in [(bug.file, bug.old, bug.new), *bug.also]:
        edit(tree, file, old, new, bug.name)


def try_bug(bug: Bug) -> tuple:
    """(caught, seconds, the tests that failed) for one bug."""
    tree = scratch_copy()
    try:
        apply(bug, tree)
        subprocess.run(  # a lesson cell edited: the model module follows, as after any edit
            [sys.executable, "tools/save_lesson_code.py"], cwd=tree, check=True, capture_output=True
        )
        start = time.time()
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *bug.tests],
            cwd=tree,
            capture_output=True,
            text=True,
        )
        failed = [
            line for line in result.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))
        ]
        return result.returncode != 0, time.time() - start, failed
    finally:
        shutil.rmtree(tree, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="bugs to try (default: all)")
    parser.add_argument("--list", action="store_true", help="list the bugs and their tests")
    args = parser.parse_args(argv)
    unknown = set(args.names) - {bug.name for bug in BUGS}
    if unknown:
        print(f"Unknown bug(s): {', '.join(sorted(unknown))}. See --list.")
        return 2
    bugs = [bug for bug in BUGS if not args.names or bug.name in args.names]
    if args.list:
        for bug in bugs:
            print(f"{bug.name}: {bug.what}\n    caught by: {', '.join(bug.tests)}")
        return 0
    survived = []
    for index, bug in enumerate(bugs, 1):
        print(f"[{index}/{len(bugs)}] {bug.name}: {bug.what} ...", flush=True)
        caught, seconds, failed = try_bug(bug)
        verdict = "caught" if caught else "SURVIVED"
        print(f"    {verdict} in {seconds:.0f} s" + "".join(f"\n    {line}" for line in failed))
        if not caught:
            survived.append(bug.name)
    print(f"\n{len(bugs) - len(survived)} of {len(bugs)} caught.")
    if survived:
        print("Survived: " + ", ".join(survived))
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
