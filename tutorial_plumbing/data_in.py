"""Data in: TFDS cats_vs_dogs or your two-class folder, split three ways, streamed with tf.data."""

import dataclasses
import shutil
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds

from .machine import fits_in_memory
from .messages import CannotContinue, num, say, split_name
from .your_images import (
    FolderScan,
    check_class_balance,
    load_image,
    prepare_image_folder,
    scan_image_folder,
    split_scan,
)

CATS_VS_DOGS_SPLITS = {
    "train": "train[:80%]",
    "validation": "train[80%:90%]",
    "test": "train[90%:]",
}


CATS_VS_DOGS_HOST = "download.microsoft.com"


SHUFFLE_BUFFER = 4096


def without_autotune(dataset):
    """`dataset` with tf.data's autotuner off.

    `python benchmarks/speed.py` times passes over the same pipeline with the autotuner off
    and on; README.md shows what it measured, and on which machine.
    """
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def resize_image(image, image_size: int):
    """Any uint8 image [H, W, 3] -> float32 [image_size, image_size, 3], still 0-255."""
    return tf.image.resize(image, (image_size, image_size), antialias=True)


@dataclasses.dataclass
class TwoClassData:
    """Two classes of images, split three ways, streamed with tf.data.

    `splits` hold unbatched (reference, label) pairs: a reference is an encoded image (TFDS) or
    a file path (your folder). `batches()` decodes and resizes them in parallel, then batches.
    """

    source: str
    class_names: list
    splits: dict
    counts: dict
    decode: Callable
    scan: object = None  # the FolderScan of your folder; None for TFDS

    def batches(
        self,
        split,
        image_size,
        batch_size,
        shuffle=False,
        seed=None,
        augmentation=None,
        keep_in_memory=False,
    ):
        """Batches of (images 0-255, labels); `augmentation` runs on each batch if given.

        keep_in_memory: decode and resize each image once, then keep it (as uint8) for the
        next epochs, if that takes at most half the free memory. Otherwise every epoch
        decodes again, as without it.
        """
        references = self.splits[split]
        count = sum(self.counts[split])
        buffer = min(count, SHUFFLE_BUFFER)

        def decoded(reference, label):
            return resize_image(self.decode(reference), image_size), label

        size_bytes = count * image_size * image_size * 3
        if keep_in_memory and fits_in_memory(size_bytes, split_name(split)):
            images = references.map(
                lambda reference, label: (
                    tf.cast(tf.round(decoded(reference, label)[0]), tf.uint8),
                    label,
                ),
                num_parallel_calls=tf.data.AUTOTUNE,
            ).cache()
            if shuffle:
                images = images.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            images = images.map(lambda image, label: (tf.cast(image, tf.float32), label))
        else:
            if shuffle:
                references = references.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
            images = references.map(decoded, num_parallel_calls=tf.data.AUTOTUNE)
        images = images.batch(batch_size)
        if augmentation is not None:
            images = images.map(
                lambda batch, labels: (augmentation(batch, training=True), labels),
                num_parallel_calls=tf.data.AUTOTUNE,
            )
        return without_autotune(images.prefetch(tf.data.AUTOTUNE))

    def image_sizes(self, limit=1000) -> list:
        """(width, height) of up to `limit` images as stored, before any resizing."""
        if self.scan is not None:
            return self.scan.sizes[:limit]
        shapes = (
            self.splits["train"]
            .take(limit)
            .map(lambda ref, _: tf.shape(self.decode(ref))[:2], num_parallel_calls=tf.data.AUTOTUNE)
        )
        return [(int(width), int(height)) for height, width in shapes.as_numpy_iterator()]

    def images(self, split, indices, image_size) -> list:
        """The images at these positions of a split (in batches() order), resized."""
        wanted, found = set(int(i) for i in indices), {}
        for index, (image, _) in enumerate(self.batches(split, image_size, 1).unbatch()):
            if index in wanted:
                found[index] = image.numpy()
        return [found[int(i)] for i in indices]

    def file_paths(self, split):
        """The split's file paths in batches() order (your folder), or None (TFDS)."""
        if self.scan is None:
            return None
        return [path.decode() for path, _ in self.splits[split].as_numpy_iterator()]

    def print_counts(self) -> None:
        first, second = self.class_names
        print(f"{say('split'):<12}{first:>10}{second:>10}{say('total'):>10}")
        for split, counts in self.counts.items():
            columns = (*counts, sum(counts))
            print(f"{split_name(split):<12}" + "".join(f"{num(column):>10,}" for column in columns))


def load_two_class_data(data_dir=None, seed=0) -> TwoClassData:
    """TFDS cats_vs_dogs when data_dir is None, else your folder or .zip of two class folders."""
    if data_dir is None:
        return load_cats_vs_dogs()
    folder = prepare_image_folder(data_dir)
    scan = scan_image_folder(folder)
    print(scan.summary())
    return data_from_scan(scan, seed)


def load_cats_vs_dogs() -> TwoClassData:
    """cats_vs_dogs from TFDS (downloaded once), sliced 80/10/10 into train/validation/test.

    TFDS publishes only a `train` split, so we slice it. The slices are fixed: every run sees
    the same images in each split. Images stay encoded until batches() decodes them.
    """
    builder = tfds.builder("cats_vs_dogs")
    if not builder.is_prepared():
        print(
            say(
                "Downloading cats_vs_dogs (once; TFDS keeps it in {folder}) ...",
                folder=builder.data_dir_root,
            )
        )
        if not host_reachable(CATS_VS_DOGS_HOST):
            raise CannotContinue(
                say(
                    "Cannot reach {host} to download cats_vs_dogs.\n"
                    "What to do: connect to the internet and run again, or set DATA_DIR to a "
                    "folder (or .zip) with two class folders of your own images.",
                    host=CATS_VS_DOGS_HOST,
                )
            )
        started = time.time()
        try:
            builder.download_and_prepare()
        except Exception as error:
            remove_half_written_download(builder, started)
            raise CannotContinue(
                say(
                    "The cats_vs_dogs download failed: {error}\n"
                    "What to do: check the internet connection and run again, or set DATA_DIR "
                    "to a folder (or .zip) with two class folders of your own images.",
                    error=error,
                )
            ) from None
    splits = builder.as_dataset(
        split=list(CATS_VS_DOGS_SPLITS.values()),
        as_supervised=True,
        decoders={"image": tfds.decode.SkipDecoding()},
    )
    splits = dict(zip(CATS_VS_DOGS_SPLITS, splits))
    counts = {name: count_labels(dataset) for name, dataset in splits.items()}
    return TwoClassData(
        source="TFDS cats_vs_dogs",
        class_names=builder.info.features["label"].names,
        splits=splits,
        counts=counts,
        decode=lambda encoded: tf.io.decode_image(encoded, channels=3, expand_animations=False),
    )


def remove_half_written_download(builder, started: float) -> None:
    """Delete what a failed download left in TFDS's folder since `started` (never your files).

    TFDS keeps a failed download's partial file in downloads/<name>.tmp.<id>/ and may leave an
    empty dataset folder behind. The next run would warn about them, and partial downloads of
    a 787 MiB file fill the disk.
    """
    dataset_dir = Path(builder.data_dir)  # <TFDS folder>/cats_vs_dogs/<version>
    downloads = dataset_dir.parents[1] / "downloads"
    partials = downloads.glob("*.tmp.*") if downloads.is_dir() else []
    for partial in partials:
        if partial.stat().st_mtime >= started - 1:
            shutil.rmtree(partial) if partial.is_dir() else partial.unlink()
    for folder in (dataset_dir, dataset_dir.parent):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


def host_reachable(host: str, port: int = 443, timeout: float = 5.0) -> bool:
    """Answer in seconds whether a download server can be reached (downloads retry for minutes)."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
        return True
    except OSError:
        return False


def count_labels(dataset) -> list:
    """Images per class in an unbatched (reference, label) dataset."""
    counts = np.zeros(2, dtype=int)
    for labels in dataset.map(lambda _, label: label).batch(8192):
        counts += np.bincount(labels.numpy(), minlength=2)
    return counts.tolist()


def data_from_scan(scan: FolderScan, seed: int) -> TwoClassData:
    splits = split_scan(scan, seed)
    for warning in check_class_balance(scan, splits):
        print(say("Warning: {warning}", warning=warning))

    def read(path):
        return load_image(np.asarray(path).item().decode(), draft_size=512)  # eager or not

    def decode(path):
        image = tf.numpy_function(read, [path], tf.uint8, stateful=False)
        return tf.ensure_shape(image, [None, None, 3])

    return TwoClassData(
        source=str(scan.root),
        class_names=scan.class_names,
        splits={
            name: tf.data.Dataset.from_tensor_slices(
                ([path for path, _ in pairs], np.array([label for _, label in pairs], np.int64))
            )
            for name, pairs in splits.items()
        },
        counts={
            name: [sum(1 for _, label in pairs if label == c) for c in (0, 1)]
            for name, pairs in splits.items()
        },
        decode=decode,
        scan=scan,
    )
