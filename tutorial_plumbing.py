"""Plumbing shared by the notebooks: data in, checks, precision, feature caches, plots.

The teaching code (build, freeze, compile, fit, unfreeze) stays visible in the notebooks.
What several notebooks need is written once, here, and tested in tests/. The script
tools/carry_plumbing.py copies into each notebook's hidden "Plumbing" cell the definitions
that notebook uses, so a notebook runs in Colab with nothing but itself. Edit this file,
then run `python tools/carry_plumbing.py`; a test fails when a notebook's copy differs.
"""

import concurrent.futures
import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import socket
import sys
import tempfile
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import keras
import matplotlib.pyplot as plt
import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from keras.applications import vgg16
from PIL import Image, ImageOps

# ---------------------------------------------------------------------------------------------
# Messages instead of tracebacks, and the machine we run on


class CannotContinue(Exception):
    """A problem you can fix. Notebooks show its message alone, without a wall of traceback."""

    def _render_traceback_(self):
        # IPython (Jupyter, Colab) calls this instead of printing the traceback.
        return [f"{type(self).__name__}: {self}"]


def running_in_colab() -> bool:
    return "google.colab" in sys.modules


def check_gpu() -> bool:
    """Say which GPU TensorFlow sees, or how to get one."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        print(f"GPU found: {details.get('device_name', gpus[0].name)}.")
        return True
    if running_in_colab():
        print(
            "No GPU found. In the menu choose Runtime > Change runtime type, pick a GPU "
            "(for example T4), save, then run the notebook again from the top."
        )
    else:
        print("No GPU found: TensorFlow runs on the CPU. Everything works, only slower.")
    return False


def cpu_supports_bfloat16() -> bool:
    """True when the CPU does bfloat16 math in hardware (AVX512-BF16 or AMX), as Linux reports."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def choose_precision() -> str:
    """Set Keras's global dtype policy to the fastest safe one for this machine and say why."""
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        details = tf.config.experimental.get_device_details(gpus[0])
        major, minor = details.get("compute_capability") or (0, 0)
        if major >= 7:
            policy = "mixed_float16"
            reason = f"the GPU has Tensor Cores (compute capability {major}.{minor})"
        else:
            policy, reason = "float32", "this GPU has no Tensor Cores"
    elif cpu_supports_bfloat16():
        policy = "mixed_bfloat16"
        reason = "the CPU does bfloat16 math in hardware"
    else:
        policy, reason = "float32", "the CPU has no fast 16-bit math"
    keras.mixed_precision.set_global_policy(policy)
    print(f"Precision: {policy}, because {reason}.")
    return policy


GOOGLE_DRIVE = "/content/drive"  # where Colab mounts Google Drive


def mount_drive_if_needed(*paths) -> None:
    """In Colab, mount Google Drive when a path lives on it (/content/drive/...)."""
    if running_in_colab() and any(str(p).startswith(GOOGLE_DRIVE) for p in paths if p):
        from google.colab import drive

        drive.mount(GOOGLE_DRIVE)


# ---------------------------------------------------------------------------------------------
# Data in: TFDS cats_vs_dogs, or your own two-class folder or .zip

CATS_VS_DOGS_SPLITS = {
    "train": "train[:80%]",
    "validation": "train[80%:90%]",
    "test": "train[90%:]",
}
CATS_VS_DOGS_HOST = "download.microsoft.com"
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
SHUFFLE_BUFFER = 4096


def without_autotune(dataset):
    """`dataset` with tf.data's autotuner off.

    With it on, TensorFlow often held the end of a pass over our datasets until the
    autotuner's next wake-up, whose period keeps doubling: a pass that was done after 3.0 s
    returned after 5.1 s. Our pipelines decode as fast without it (benchmarks/speed.py).
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

        if keep_in_memory and fits_in_memory(count * image_size * image_size * 3, split):
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
        names = self.class_names
        print(f"{'split':<12}{names[0]:>10}{names[1]:>10}{'total':>10}")
        for split, counts in self.counts.items():
            print(f"{split:<12}{counts[0]:>10}{counts[1]:>10}{sum(counts):>10}")


def fits_in_memory(size_bytes: int, what: str) -> bool:
    """True (and says so) when size_bytes takes at most half the memory that is free now."""
    try:
        meminfo = Path("/proc/meminfo").read_text().split("MemAvailable:")[1]
        free = int(meminfo.split()[0]) * 1024
    except (OSError, IndexError, ValueError):
        free = 0
    fits = size_bytes <= free / 2
    decision = "keeping them in memory" if fits else "too large: decoding every epoch instead"
    print(
        f"Decoded {what} images need {size_bytes / 2**30:.2f} GiB "
        f"({free / 2**30:.1f} GiB free): {decision}."
    )
    return fits


def make_augmentation(seed=None):
    """Random flips, small turns and small zooms: a slightly different image every epoch."""
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(0.1, seed=seed),
            keras.layers.RandomZoom(0.1, seed=seed),
        ],
        name="augmentation",
    )


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
        print("Downloading cats_vs_dogs (once; TFDS keeps it in ~/tensorflow_datasets) ...")
        if not host_reachable(CATS_VS_DOGS_HOST):
            raise CannotContinue(
                f"Cannot reach {CATS_VS_DOGS_HOST} to download cats_vs_dogs.\n"
                "What to do: connect to the internet and run again, or set DATA_DIR to a "
                "folder (or .zip) with two class folders of your own images."
            )
        try:
            builder.download_and_prepare()
        except Exception as error:
            raise CannotContinue(
                f"The cats_vs_dogs download failed: {error}\n"
                "What to do: check the internet connection and run again, or set DATA_DIR "
                "to a folder (or .zip) with two class folders of your own images."
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


# Your own images --------------------------------------------------------------------------------

# What Keras's image_dataset_from_directory reads too. MPO is how Pillow names many camera JPEGs.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "GIF"}
# Files and folders that operating systems and tools leave behind: ignored without a word.
OS_LITTER = {".DS_Store", "Thumbs.db", "desktop.ini", "__MACOSX", ".ipynb_checkpoints"}
# Formats people try often that the pipeline does not read, found by content, not by name.
UNSUPPORTED_SIGNATURES = [
    (b"II*\x00", 0, "TIFF"),
    (b"MM\x00*", 0, "TIFF"),
    (b"WEBP", 8, "WebP"),
    (b"ftypheic", 4, "HEIC"),
    (b"ftypheix", 4, "HEIC"),
    (b"ftypmif1", 4, "HEIC"),
    (b"ftypavif", 4, "AVIF"),
]
IMBALANCE_WARNING_RATIO = 3.0
SCRATCH_DIR = Path(tempfile.gettempdir()) / "two_class_images"


def is_os_litter(name: str) -> bool:
    return name in OS_LITTER or name.startswith(".")


def prepare_image_folder(data_dir) -> Path:
    """DATA_DIR -> a local folder to read. Your files are only ever read, never changed.

    - a folder: used where it is;
    - a .zip: unpacked into a scratch folder (a zip on Google Drive is first copied to local
      disk, which is much faster than reading many small files from Drive);
    - "upload" (Colab): asks you for a .zip, then as above.
    """
    if str(data_dir).strip().lower() == "upload":
        data_dir = upload_zip_in_colab()
    path = Path(data_dir).expanduser()
    mount_drive_if_needed(path)
    if not path.exists():
        raise CannotContinue(
            f"DATA_DIR does not exist: {path}\n"
            "What to do: check the path. In Colab, paths on Google Drive start with "
            "/content/drive/MyDrive/."
        )
    if path.is_dir():
        if str(path.resolve()).startswith(GOOGLE_DRIVE):
            print("Tip: reading many small files from Google Drive is slow. A .zip of this folder")
            print("on Drive is faster: it is copied to local disk once and unpacked there.")
        return path
    if zipfile.is_zipfile(path):
        return unpack_zip(path)
    raise CannotContinue(
        f"DATA_DIR is a file but not a .zip: {path}\n"
        "What to do: point DATA_DIR at a folder with two class folders, or at a .zip of it."
    )


def upload_zip_in_colab() -> Path:
    if not running_in_colab():
        raise CannotContinue(
            'DATA_DIR="upload" works in Colab only. Here, set DATA_DIR to a folder or .zip path.'
        )
    from google.colab import files

    print("Choose one .zip with your two class folders inside.")
    names = [name for name in files.upload() if name.lower().endswith(".zip")]
    if not names:
        raise CannotContinue("No .zip was uploaded. Run the cell again and choose a .zip file.")
    return Path(names[0]).resolve()


def unpack_zip(zip_path: Path) -> Path:
    """Unpack a zip once into SCRATCH_DIR (reused while the zip is unchanged); skip OS litter."""
    stat = zip_path.stat()
    key = f"{zip_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    target = SCRATCH_DIR / f"{zip_path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    done_marker = target / ".unpacked"
    if done_marker.exists():
        print(f"Using {zip_path.name} unpacked earlier in {target}")
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = zip_path
    if str(zip_path.resolve()).startswith(GOOGLE_DRIVE):
        print(f"Copying {zip_path.name} from Google Drive to local disk ...")
        source = Path(shutil.copy2(zip_path, SCRATCH_DIR / zip_path.name))
    print(f"Unpacking {zip_path.name} into {target} ...")
    with zipfile.ZipFile(source) as archive:
        for member in archive.infolist():
            if not any(is_os_litter(part) for part in Path(member.filename).parts):
                archive.extract(member, target)
    if source != zip_path:
        source.unlink()
    done_marker.touch()
    return target


def find_class_root(folder: Path) -> Path:
    """Step into a single wrapping folder (pets.zip -> pets/ -> cats/, dogs/)."""
    while True:
        entries = [entry for entry in folder.iterdir() if not is_os_litter(entry.name)]
        subfolders = [entry for entry in entries if entry.is_dir()]
        if len(entries) != 1 or len(subfolders) != 1:
            return folder
        inner = [e for e in subfolders[0].iterdir() if e.is_dir() and not is_os_litter(e.name)]
        if len(inner) < 2:
            return folder
        folder = subfolders[0]


def sniff_unsupported_format(path: Path):
    """The name of a known unsupported format if the file's first bytes say so, else None."""
    with open(path, "rb") as file:
        head = file.read(16)
    for signature, offset, name in UNSUPPORTED_SIGNATURES:
        if head[offset : offset + len(signature)] == signature:
            return name
    return None


def open_rgb_image(path, draft_size=None) -> Image.Image:
    """Open an image file as RGB: the first frame, upright (EXIF), transparency on white.

    draft_size lets JPEG decoding skip detail that a resize to that size would drop anyway.
    """
    image = Image.open(path)
    if draft_size and image.format in ("JPEG", "MPO"):
        image.draft("RGB", (draft_size, draft_size))
    image.seek(0)
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit: scale to 0-255 (a plain convert would clip almost everything to white).
        pixels = np.asarray(image, dtype=np.float32) / 257.0
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def load_image(path, draft_size=None) -> np.ndarray:
    """An image file as a uint8 array [H, W, 3]; the same reading for training and prediction."""
    with open_rgb_image(path, draft_size) as image:
        return np.asarray(image)


def inspect_image(path: Path):
    """Decode a file once: (problem, conversion, (width, height)); problem is None if usable."""
    if path.stat().st_size == 0:
        return "empty file (0 bytes)", None, None
    unsupported = sniff_unsupported_format(path)
    if unsupported:
        return f"unsupported format: {unsupported} (convert it to JPEG or PNG)", None, None
    try:
        with Image.open(path) as image:
            image_format, mode = image.format, image.mode
            frames = getattr(image, "n_frames", 1)
            if image_format not in SUPPORTED_FORMATS:
                return f"unsupported format: {image_format} (convert it to JPEG or PNG)", None, None
            image.load()
            size = image.size
    except Image.UnidentifiedImageError:
        return "not an image", None, None
    except Image.DecompressionBombError:
        return "too large to decode safely", None, None
    except Exception as error:
        return f"truncated or damaged: {error}", None, None
    notes = []
    if mode != "RGB":
        notes.append(mode_description(mode))
    if frames > 1 and image_format != "MPO":  # MPO: a camera JPEG with extra (depth) images
        notes.append(f"animated ({frames} frames), the first frame is used")
    return None, "; ".join(notes) or None, size


def mode_description(mode: str) -> str:
    """What reading does to an image of this Pillow mode, in words."""
    if mode in ("RGBA", "LA", "PA"):
        return "transparent, put on a white background"
    if mode.startswith("I"):
        return "16-bit, scaled to 8-bit RGB"
    names = {
        "L": "grayscale",
        "P": "palette colours",
        "CMYK": "CMYK colours",
        "1": "black and white",
    }
    return f"{names.get(mode, f'mode {mode}')}, converted to RGB"


@dataclasses.dataclass
class FolderScan:
    """What scan_image_folder found: usable images per class and everything it left out."""

    root: Path
    class_names: list
    images: list  # (path, class index) for each usable image
    sizes: list  # (width, height) of each usable image, in the same order
    skipped: list  # (path relative to root, reason)
    converted: list  # (path relative to root, what is done to it when read)
    ignored: int  # OS litter, left out quietly

    def class_counts(self) -> list:
        counts = Counter(label for _, label in self.images)
        return [counts[index] for index in range(len(self.class_names))]

    def summary(self) -> str:
        seen = len(self.images) + len(self.skipped)
        lines = [
            f"Scanned {self.root}",
            f"  files seen: {seen} | used: {len(self.images)} | skipped: {len(self.skipped)} "
            f"| converted: {len(self.converted)} | OS files ignored: {self.ignored}",
            "  per class: "
            + ", ".join(f"{n}: {c}" for n, c in zip(self.class_names, self.class_counts())),
        ]
        reasons = Counter(reason.split(":")[0].split(" (")[0] for _, reason in self.skipped)
        if reasons:
            lines.append(
                "  skipped by reason: " + ", ".join(f"{r}: {n}" for r, n in reasons.items())
            )
        for title, entries in (("Skipped", self.skipped), ("Converted", self.converted)):
            for relative, why in entries[:20]:
                lines.append(f"  {title}: {relative} ({why})")
            if len(entries) > 20:
                lines.append(f"  ... and {len(entries) - 20} more {title.lower()}")
        return "\n".join(lines)


def scan_image_folder(folder, workers: int = 4) -> FolderScan:
    """Check every file under the two class folders before anything trains.

    Each file is decoded once. Unusable files are listed with their reason and left out; they
    are never deleted, moved or rewritten. OS litter (.DS_Store, __MACOSX/, ._* ...) is ignored.
    """
    root = find_class_root(Path(folder))
    class_dirs = sorted(e for e in root.iterdir() if e.is_dir() and not is_os_litter(e.name))
    if len(class_dirs) != 2:
        found = ", ".join(f"{d.name}/" for d in class_dirs) or "no folders"
        raise CannotContinue(
            f"Expected exactly 2 class folders in {root}, found {len(class_dirs)}: {found}.\n"
            "The layout must be:\n"
            f"  {root}/\n    <class_a>/  image files\n    <class_b>/  image files\n"
            "What to do: keep exactly two class folders there (move the others out)."
        )
    candidates, skipped, ignored = [], [], 0
    for entry in root.iterdir():
        if entry.is_file():
            if is_os_litter(entry.name):
                ignored += 1
            else:
                skipped.append((entry.name, "outside the class folders"))
    for label, class_dir in enumerate(class_dirs):
        for directory, subdirs, files in os.walk(class_dir):
            subdirs[:] = sorted(d for d in subdirs if not is_os_litter(d))
            for name in sorted(files):
                if is_os_litter(name):
                    ignored += 1
                else:
                    candidates.append((Path(directory) / name, label))

    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda candidate: inspect_image(candidate[0]), candidates))
    images, sizes, converted = [], [], []
    for (path, label), (problem, conversion, size) in zip(candidates, results):
        relative = str(path.relative_to(root))
        if problem:
            skipped.append((relative, problem))
            continue
        images.append((str(path), label))
        sizes.append(size)
        if conversion:
            converted.append((relative, conversion))
    scan = FolderScan(
        root, [d.name for d in class_dirs], images, sizes, skipped, converted, ignored
    )
    empty = [name for name, count in zip(scan.class_names, scan.class_counts()) if count == 0]
    if empty:
        raise CannotContinue(
            f"No usable image in class folder(s) {', '.join(empty)} under {root}.\n"
            f"{scan.summary()}\nWhat to do: add JPEG or PNG images to each class folder."
        )
    return scan


def split_scan(scan: FolderScan, seed: int, fractions=None) -> dict:
    """A seeded split per class (stratified): each image in exactly one of train/validation/test."""
    fractions = fractions or SPLIT_FRACTIONS
    rng = np.random.default_rng(seed)
    splits = {name: [] for name in fractions}
    for label, class_name in enumerate(scan.class_names):
        paths = sorted(path for path, image_label in scan.images if image_label == label)
        if len(paths) < len(fractions):
            raise CannotContinue(
                f"Class '{class_name}' has {len(paths)} usable image(s): too few to split into "
                f"{', '.join(fractions)}.\nWhat to do: add images to {scan.root / class_name}."
            )
        paths = [paths[i] for i in rng.permutation(len(paths))]
        held_out = {
            name: max(1, round(len(paths) * fraction))
            for name, fraction in fractions.items()
            if name != "train"
        }
        start = 0
        for name in held_out:
            splits[name] += [(path, label) for path in paths[start : start + held_out[name]]]
            start += held_out[name]
        splits["train"] += [(path, label) for path in paths[start:]]
    return splits


def check_class_balance(scan: FolderScan, splits: dict) -> list:
    """Warnings a reader should see before training: strong imbalance, tiny held-out sets."""
    warnings = []
    counts = scan.class_counts()
    if max(counts) > IMBALANCE_WARNING_RATIO * min(counts):
        big, small = np.argmax(counts), np.argmin(counts)
        warnings.append(
            f"Classes are imbalanced: '{scan.class_names[big]}' has {counts[big]} images, "
            f"'{scan.class_names[small]}' {counts[small]} ({counts[big] / counts[small]:.1f}:1). "
            "Accuracy can look good while the small class is mostly wrong: check per-class "
            "recall, or add images to the small class."
        )
    for split, pairs in splits.items():
        per_class = Counter(label for _, label in pairs)
        for label, name in enumerate(scan.class_names):
            if split != "train" and per_class[label] < 5:
                warnings.append(
                    f"The {split} split has only {per_class[label]} image(s) of '{name}': "
                    "its accuracy will jump around. More images make it trustworthy."
                )
    return warnings


def data_from_scan(scan: FolderScan, seed: int) -> TwoClassData:
    splits = split_scan(scan, seed)
    for warning in check_class_balance(scan, splits):
        print(f"Warning: {warning}")

    def read(path):
        return load_image(path.decode(), draft_size=512)

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


# ---------------------------------------------------------------------------------------------
# Training: parameter counts, feature caches, histories, saved models


def count_parameters(model) -> tuple:
    """(trainable, frozen) parameter counts."""
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable, frozen


def print_trainable_counts(model) -> None:
    trainable, frozen = count_parameters(model)
    layers = [layer.name for layer in model.layers if layer.trainable_weights]
    print(f"Trainable parameters: {trainable:,}   frozen: {frozen:,}")
    print(f"Layers that will learn: {', '.join(layers) or 'none'}")


class FeatureFile:
    """Cached features stored row after row in a file; reads only the rows asked for.

    The operating system keeps the file in memory when it fits and reads it from disk when it
    does not, so a large cache never has to fit in this process's memory.
    """

    def __init__(self, path, row_shape, rows):
        self.path, self.row_shape, self.rows = str(path), tuple(row_shape), rows
        self.row_bytes = int(np.prod(row_shape)) * 2  # float16
        self.shape = (rows, *self.row_shape)
        self.nbytes = rows * self.row_bytes

    def __len__(self):
        return self.rows

    def __getitem__(self, indices):
        with open(self.path, "rb", buffering=0) as file:
            rows = []
            for index in np.atleast_1d(indices):
                file.seek(int(index) * self.row_bytes)
                rows.append(np.frombuffer(file.read(self.row_bytes), dtype=np.float16))
        return np.stack(rows).reshape(-1, *self.row_shape)


def cache_features(extractor, batches, cache_file=None):
    """Run `extractor` once over `batches`; return (features as float16, labels).

    Without cache_file the features stay in memory (fine for 512 numbers per image). With
    cache_file they go to that file and come back as a FeatureFile (for large feature maps).
    """
    labels, chunks = [], []
    output = open(cache_file, "wb") if cache_file else None
    try:
        for images, batch_labels in batches:
            features = np.asarray(extractor.predict_on_batch(images), dtype=np.float16)
            if output:
                output.write(features.tobytes())
            else:
                chunks.append(features)
            labels.append(batch_labels.numpy())
    finally:
        if output:
            output.close()
    labels = np.concatenate(labels)
    row_shape = tuple(extractor.output.shape[1:])
    if output:
        return FeatureFile(cache_file, row_shape, len(labels)), labels
    return np.concatenate(chunks), labels


def cached_batches(features, labels, batch_size, shuffle=False, seed=None):
    """Batches of (cached features, label) for fit(), reading only the rows each batch needs."""
    feature_shape = [None, *features.shape[1:]]
    label_dtype = tf.as_dtype(labels.dtype)

    def take(indices):
        indices = np.sort(indices)  # reading in file order is faster
        return np.asarray(features[indices], dtype=np.float16), labels[indices]

    def read(indices):
        batch, batch_labels = tf.numpy_function(take, [indices], (tf.float16, label_dtype))
        return tf.ensure_shape(batch, feature_shape), tf.ensure_shape(batch_labels, [None])

    order = tf.data.Dataset.range(len(labels))
    if shuffle:
        order = order.shuffle(len(labels), seed=seed, reshuffle_each_iteration=True)
    batches = order.batch(batch_size).map(read, num_parallel_calls=tf.data.AUTOTUNE)
    return without_autotune(batches.prefetch(tf.data.AUTOTUNE))


def save_json(data, path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(data, indent=2))


def load_json(path):
    return json.loads(Path(path).read_text())


def history_dict(history) -> dict:
    """A Keras History as plain lists of floats, ready for JSON."""
    return {name: [float(value) for value in values] for name, values in history.history.items()}


VGG16_WEIGHTS_URL = (
    "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
    "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"
)


@contextlib.contextmanager
def explain_weights_download():
    """Turn a failed download of the ImageNet weights into a message that says what to do."""
    try:
        yield
    except Exception as error:
        if not isinstance(error, OSError) and "URL fetch failure" not in str(error):
            raise
        file_name = VGG16_WEIGHTS_URL.rsplit("/", 1)[1]
        raise CannotContinue(
            f"Could not download the ImageNet weights for VGG16: {error}\n"
            "What to do, one of:\n"
            "  - connect to the internet and run the cell again;\n"
            "  - set WEIGHTS = None for a dry run with random weights (it runs, learns little);\n"
            f"  - download {VGG16_WEIGHTS_URL} by hand and put it in ~/.keras/models/"
            f" (Keras looks there first), or set WEIGHTS to the path of {file_name}."
        ) from None


def load_model_from(path, made_by: str):
    """Load a model the series saved, or say which notebook makes it."""
    path = Path(path)
    if not path.exists():
        raise CannotContinue(
            f"No model at {path}.\nWhat to do: run {made_by} first with the same ARTIFACTS_DIR. "
            "In Colab, put ARTIFACTS_DIR on Google Drive so it survives between sessions."
        )
    # The model applies vgg16.preprocess_input in a Lambda layer: tell Keras what that name is.
    return keras.models.load_model(
        path, custom_objects={"preprocess_input": vgg16.preprocess_input}
    )


# ---------------------------------------------------------------------------------------------
# Pictures


def show_images(images, titles, columns=4, path=None) -> None:
    """A grid of images (0-255 values) with a title under each."""
    rows = int(np.ceil(len(images) / columns))
    plt.figure(figsize=(3 * columns, 3.2 * rows))
    for index, (image, title) in enumerate(zip(images, titles)):
        plt.subplot(rows, columns, index + 1)
        plt.imshow(np.clip(np.asarray(image), 0, 255).astype("uint8"))
        plt.title(title, fontsize=10)
        plt.axis("off")
    plt.tight_layout()
    if path:
        plt.savefig(path, dpi=80, bbox_inches="tight")
    plt.show()


def plot_history(phases, path=None) -> None:
    """Accuracy and loss per epoch for one or more training phases, one after the other.

    `phases` is a list of (name, history dict). A dashed line marks where each later phase
    (for example fine-tuning) starts.
    """
    figure, axes = plt.subplots(1, 2, figsize=(12, 4))
    for axis, metric in zip(axes, ("accuracy", "loss")):
        start = 0
        for index, (name, history) in enumerate(phases):
            epochs = np.arange(start + 1, start + len(history[metric]) + 1)
            axis.plot(epochs, history[metric], "o-", label=f"train ({name})")
            axis.plot(epochs, history[f"val_{metric}"], "s--", label=f"validation ({name})")
            if index > 0:
                axis.axvline(start + 0.5, color="gray", linestyle=":")
                axis.text(
                    start + 0.6,
                    0.98,
                    f"{name} starts",
                    va="top",
                    transform=axis.get_xaxis_transform(),
                )
            start += len(history[metric])
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    if path:
        figure.savefig(path, dpi=80, bbox_inches="tight")
    plt.show()


# ---------------------------------------------------------------------------------------------
# Evaluation, explanation, export


def binary_metrics(labels, probabilities, threshold=0.5) -> dict:
    """Accuracy, precision, recall, F1 (for class 1), ROC AUC and the confusion matrix."""
    from sklearn import metrics

    labels = np.asarray(labels).astype(int)
    predicted = (np.asarray(probabilities) >= threshold).astype(int)
    matrix = metrics.confusion_matrix(labels, predicted, labels=[0, 1])
    both_classes = len(np.unique(labels)) == 2
    return {
        "threshold": float(threshold),
        "accuracy": float(metrics.accuracy_score(labels, predicted)),
        "precision": float(metrics.precision_score(labels, predicted, zero_division=0)),
        "recall": float(metrics.recall_score(labels, predicted, zero_division=0)),
        "f1": float(metrics.f1_score(labels, predicted, zero_division=0)),
        "roc_auc": float(metrics.roc_auc_score(labels, probabilities)) if both_classes else None,
        "confusion_matrix": matrix.tolist(),  # rows: true class, columns: predicted class
    }


def grad_cam(model, images, layer_name="block5_conv3"):
    """Grad-CAM heatmaps (0-1, one per image, at the layer's resolution) and probabilities.

    Each heatmap shows where `layer_name`'s features pushed the model towards the class it
    predicted. It needs the layer in `model` itself, not inside a nested model: the series
    builds VGG16 on the model's own input (input_tensor=...) for exactly this reason.
    """
    explainer = keras.Model(model.inputs, [model.get_layer(layer_name).output, model.output])
    images = tf.convert_to_tensor(images, tf.float32)
    with tf.GradientTape() as tape:
        feature_maps, probabilities = explainer(images, training=False)
        probabilities = tf.cast(probabilities[:, 0], tf.float32)
        # The score of the predicted class: p for class 1, 1 - p for class 0.
        scores = tf.where(probabilities >= 0.5, probabilities, 1.0 - probabilities)
    gradients = tf.cast(tape.gradient(scores, feature_maps), tf.float32)
    feature_maps = tf.cast(feature_maps, tf.float32)
    channel_weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    heatmaps = tf.nn.relu(tf.reduce_sum(feature_maps * channel_weights, axis=-1))
    peak = tf.reduce_max(heatmaps, axis=(1, 2), keepdims=True)
    heatmaps = tf.math.divide_no_nan(heatmaps, peak)
    return heatmaps.numpy(), probabilities.numpy()


def overlay_heatmap(image, heatmap, opacity=0.45) -> np.ndarray:
    """An image (0-255) with a heatmap (0-1) laid over it in colour, as uint8."""
    image = np.asarray(image, dtype=np.float32)
    resized = tf.image.resize(heatmap[..., None], image.shape[:2]).numpy()[..., 0]
    colours = plt.get_cmap("jet")(np.clip(resized, 0, 1))[..., :3] * 255
    return np.clip((1 - opacity) * image + opacity * colours, 0, 255).astype(np.uint8)


def predict_file(model, path, image_size):
    """(probability of class 1, the image as the model saw it) for one image file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CannotContinue(f"No file at {path}. What to do: check IMAGE_PATH.")
    problem, _, _ = inspect_image(path)
    if problem:
        raise CannotContinue(f"Cannot use {path.name}: {problem}.")
    image = resize_image(load_image(path), image_size)
    probability = float(model.predict(image[None], verbose=0)[0, 0])
    return probability, image.numpy()


def float32_copy(model):
    """The same model and weights, computing in float32: what SavedModel and TFLite need.

    Mixed-precision layers (bfloat16 on CPUs, float16 on GPUs) do not convert to TFLite.
    """

    def to_float32(config):
        if isinstance(config, dict):
            if str(config.get("class_name", "")).endswith("DTypePolicy"):
                return "float32"
            return {key: to_float32(value) for key, value in config.items()}
        if isinstance(config, list):
            return [to_float32(value) for value in config]
        return config

    copy = keras.Model.from_config(
        to_float32(model.get_config()),
        custom_objects={"preprocess_input": vgg16.preprocess_input},
    )
    copy.set_weights(model.get_weights())
    return copy
