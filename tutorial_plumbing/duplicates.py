"""Copies, blank images and tiny images: what a careful look at a photo collection finds.

The same photo twice, once in train and once in test, makes the test score look better than
it is. The same photo in both classes is a label conflict. So every image gets a fingerprint:

- `content`: the SHA-256 of the file's bytes. Equal only for byte-identical copies.
- `perceptual`: a perceptual hash (pHash). The picture is shrunk to a 32 x 32 grey thumbnail,
  a 2-D discrete cosine transform (DCT) splits it into frequencies, and the 8 x 8 lowest ones
  are kept: the broad shapes of the photo, not its fine detail. Leaving out the first one (the
  mean brightness), each of the other 63 gives one bit: 1 when it is above their median. The
  same photo resized, saved again as a low-quality JPEG, turned grey or cropped by about 2% on
  each side keeps almost the same bits (tests/test_duplicates.py checks this on scikit-image's
  sample photos); two different photos differ in about half of them. Larger crops are missed.
- `spread`: the standard deviation of the thumbnail's pixels (0-255). Near 0 means a blank or
  nearly uniform image, which teaches the network nothing.

Two images are near-duplicates when their hashes differ in at most NEAR_DUPLICATE_BITS bits;
near-duplicates of near-duplicates join the same group (union-find). Blank images have no shapes
to hash, so they are grouped only when byte-identical.

Why not the `imagehash` package: the split of your folder depends on these groups, so every
notebook that reads your folder would need it, and so an extra install in Colab. The hash is a
few lines of numpy (which Colab has), tested in tests/test_duplicates.py.
"""

import concurrent.futures
import dataclasses
import functools
import hashlib
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

HASH_SIDE = 32


HASH_FREQUENCIES = 8


NEAR_DUPLICATE_BITS = 12


BLANK_SPREAD = 4.0


TOO_SMALL_FRACTION = 4  # too small: shorter side under IMG_SIZE / 4


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What the duplicate check knows of one image (see the module's docstring)."""

    content: str  # SHA-256 of the file's bytes
    perceptual: int  # 63-bit perceptual hash
    spread: float  # standard deviation of the thumbnail's pixels, 0-255
    seconds: float = 0.0  # time spent computing this fingerprint

    @property
    def blank(self) -> bool:
        return self.spread < BLANK_SPREAD


@functools.cache
def cosine_transform_matrix(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix: `matrix @ pixels @ matrix.T` gives the 2-D frequencies."""
    frequencies, positions = np.meshgrid(np.arange(size), np.arange(size), indexing="ij")
    matrix = np.sqrt(2 / size) * np.cos(np.pi * (2 * positions + 1) * frequencies / (2 * size))
    matrix[0] /= np.sqrt(2)
    return matrix


def fingerprint_image(image: Image.Image, content: bytes) -> Fingerprint:
    """The fingerprint of an RGB image whose file holds `content`."""
    started = time.perf_counter()
    thumbnail = image.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BILINEAR, reducing_gap=2.0)
    spread = float(np.asarray(thumbnail, dtype=np.float64).std(axis=(0, 1)).max())
    grey = np.asarray(thumbnail.convert("L"), dtype=np.float64)
    transform = cosine_transform_matrix(HASH_SIDE)
    lowest = (transform @ grey @ transform.T)[:HASH_FREQUENCIES, :HASH_FREQUENCIES]
    frequencies = lowest.ravel()[1:]  # without the mean brightness
    bits = frequencies > np.median(frequencies)
    perceptual = int.from_bytes(np.packbits(bits).tobytes(), "big")  # 63 bits, then a 0
    digest = hashlib.sha256(content).hexdigest()
    return Fingerprint(digest, perceptual, spread, time.perf_counter() - started)


def fingerprint_encoded(content: bytes):
    """(fingerprint, (width, height)) of an encoded image (TFDS); JPEGs decode at low detail."""
    with Image.open(io.BytesIO(content)) as image:
        size = image.size
        if image.format in ("JPEG", "MPO"):
            image.draft("RGB", (2 * HASH_SIDE, 2 * HASH_SIDE))
        return fingerprint_image(image.convert("RGB"), content), size


def bit_differences(hashes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Hamming distances between each hash in `hashes` and each in `others` (uint64 arrays)."""
    different = hashes[:, None] ^ others[None, :]
    if hasattr(np, "bitwise_count"):  # numpy 2
        return np.bitwise_count(different)
    bits_per_byte = np.array([bin(value).count("1") for value in range(256)], np.uint8)
    return bits_per_byte[different.view(np.uint8)].reshape(*different.shape, 8).sum(axis=-1)


def group_duplicates(fingerprints, block: int = 256) -> list:
    """Groups of 2 or more image indices that are copies or near copies, largest first."""
    parent = list(range(len(fingerprints)))

    def root(index):
        while parent[index] != index:
            parent[index] = parent[parent[index]]
            index = parent[index]
        return index

    def join(first, second):
        parent[root(first)] = root(second)

    first_with_content = {}
    for index, fingerprint in enumerate(fingerprints):
        join(index, first_with_content.setdefault(fingerprint.content, index))
    shaped = [index for index, fingerprint in enumerate(fingerprints) if not fingerprint.blank]
    hashes = np.array([fingerprints[index].perceptual for index in shaped], dtype=np.uint64)
    for start in range(0, len(hashes), block):
        distances = bit_differences(hashes[start : start + block], hashes[start:])
        for row, column in zip(*np.nonzero(distances <= NEAR_DUPLICATE_BITS)):
            if column > row:
                join(shaped[start + row], shaped[start + column])
    members = {}
    for index in range(len(fingerprints)):
        members.setdefault(root(index), []).append(index)
    groups = [group for group in members.values() if len(group) > 1]
    return sorted(groups, key=lambda group: (-len(group), group[0]))


@dataclasses.dataclass
class CheckedImage:
    """One image the duplicate check looked at."""

    name: str  # path relative to your folder, or "<split> #<position>" for TFDS
    label: int
    split: str | None  # None: left out of every split (a label conflict)
    path: str | None = None  # the file (your folder)
    index: int | None = None  # position in its split (TFDS)
    size: tuple | None = None  # (width, height) as stored


@dataclasses.dataclass
class DuplicateReport:
    """Copies, blank images and images too small for image_size, found among `images`."""

    images: list  # CheckedImage for each image checked
    groups: list  # lists of indices into images: the same photo, 2 or more times
    exact: list  # for each group: True when all its files are byte-identical
    blank: list  # indices of blank or nearly uniform images
    too_small: list  # indices of images whose shorter side is under image_size / 4
    class_names: list
    image_size: int
    seconds: float  # how long the check took

    def spans_classes(self, group) -> bool:
        return len({self.images[index].label for index in group}) > 1

    def spans_splits(self, group) -> bool:
        splits = {self.images[index].split for index in group} - {None}
        return len(splits) > 1

    def counts(self) -> dict:
        return {
            "images_checked": len(self.images),
            "groups": len(self.groups),
            "images_in_groups": sum(len(group) for group in self.groups),
            "groups_spanning_classes": sum(map(self.spans_classes, self.groups)),
            "groups_spanning_splits": sum(map(self.spans_splits, self.groups)),
            "blank": len(self.blank),
            "too_small": len(self.too_small),
        }

    def describe(self, index, separator=" ") -> str:
        """An image's name, class and split (or "left out"), for a list or a plot title."""
        image = self.images[index]
        where = f"({self.class_names[image.label]}, {image.split or 'left out'})"
        return f"{image.name}{separator}{where}"

    def summary(self, listed: int = 10) -> str:
        counts = self.counts()
        smallest = self.image_size // TOO_SMALL_FRACTION
        lines = [
            f"Checked {counts['images_checked']} images in {self.seconds:.1f} s.",
            f"  copies: {counts['groups']} group(s) of the same photo, "
            f"{counts['images_in_groups']} images ({sum(self.exact)} group(s) byte-identical)",
            f"  groups spanning both classes (label conflicts): "
            f"{counts['groups_spanning_classes']}",
            f"  groups spanning splits (a test image also seen in training): "
            f"{counts['groups_spanning_splits']}",
            f"  blank or nearly uniform (pixel spread under {BLANK_SPREAD} of 255): "
            f"{counts['blank']}",
            f"  too small for IMG_SIZE {self.image_size} (shorter side under {smallest} pixels; "
            f"scaled up, each pixel becomes a blur of {TOO_SMALL_FRACTION} x "
            f"{TOO_SMALL_FRACTION} or more): {counts['too_small']}",
        ]
        for number, group in enumerate(self.groups[:listed], start=1):
            kind = "byte-identical" if self.exact[number - 1] else "near copies"
            conflict = ", LABEL CONFLICT" if self.spans_classes(group) else ""
            members = "; ".join(self.describe(index) for index in group[:6])
            more = f"; and {len(group) - 6} more" if len(group) > 6 else ""
            lines.append(f"  group {number} ({kind}{conflict}): {members}{more}")
        if len(self.groups) > listed:
            lines.append(f"  ... and {len(self.groups) - listed} more groups")
        for title, indices in (("blank or uniform", self.blank), ("too small", self.too_small)):
            for index in indices[:listed]:
                size = self.images[index].size
                shown = f", {size[0]} x {size[1]}" if indices is self.too_small and size else ""
                lines.append(f"  {title}: {self.describe(index)}{shown}")
            if len(indices) > listed:
                lines.append(f"  ... and {len(indices) - listed} more {title}")
        return "\n".join(lines)

    def pictures(self, group, data, limit: int = 8) -> list:
        """The images of a group as uint8 arrays, as the pipeline reads them, for a plot."""
        pictures = []
        for index in group[:limit]:
            image = self.images[index]
            if image.path is not None:
                reference = image.path.encode()
            else:
                reference, _ = next(iter(data.splits[image.split].skip(image.index).take(1)))
            pictures.append(np.asarray(data.decode(reference)))
        return pictures


def duplicate_report(
    images, fingerprints, class_names, image_size, seconds, groups=None, exact=None
) -> DuplicateReport:
    """A DuplicateReport of `images` (CheckedImage) and their fingerprints (None: not hashed).

    `groups` and `exact`, when given, are what an earlier grouping found (your folder's scan).
    """
    started = time.perf_counter()
    if groups is None:
        hashed = [index for index, fingerprint in enumerate(fingerprints) if fingerprint]
        found = group_duplicates([fingerprints[index] for index in hashed])
        groups = [[hashed[member] for member in group] for group in found]
        exact = [len({fingerprints[index].content for index in group}) == 1 for group in groups]
    smallest = image_size / TOO_SMALL_FRACTION
    return DuplicateReport(
        images=images,
        groups=groups,
        exact=exact,
        blank=[index for index, f in enumerate(fingerprints) if f is not None and f.blank],
        too_small=[
            index for index, image in enumerate(images) if image.size and min(image.size) < smallest
        ],
        class_names=class_names,
        image_size=image_size,
        seconds=seconds + time.perf_counter() - started,
    )


def folder_duplicate_report(data, image_size) -> DuplicateReport:
    """The report for your folder, from what its scan found (the scan hashed every image).

    Its `seconds` is the scan's time spent on the check: hashing (summed over the images,
    though the scan hashes several at once) and grouping.
    """
    scan = data.scan
    split_of = {}
    for split in data.splits:
        split_of.update(dict.fromkeys(data.file_paths(split), split))
    images, fingerprints, position = [], [], {}
    for (path, label), size, fingerprint in zip(scan.images, scan.sizes, scan.fingerprints):
        position[path] = len(images)
        name = str(Path(path).relative_to(scan.root))
        images.append(CheckedImage(name, label, split_of.get(path), path=path, size=size))
        fingerprints.append(fingerprint)
    for group in scan.duplicate_groups:
        for path, label in group:
            if path not in position:  # left out of every split: a label conflict
                position[path] = len(images)
                name = str(Path(path).relative_to(scan.root))
                images.append(CheckedImage(name, label, None, path=path))
                fingerprints.append(None)
    groups = [[position[path] for path, _ in group] for group in scan.duplicate_groups]
    return duplicate_report(
        images,
        fingerprints,
        scan.class_names,
        image_size,
        scan.check_seconds,
        groups,
        scan.exact_groups,
    )


def check_fixed_splits(data, image_size, workers: int = 4, every_seconds: float = 10.0):
    """Decode every image of fixed splits (TFDS) once more, hash it, and report copies.

    Prints its progress. Nothing changes: the splits stay as TFDS made them, and the report
    says which groups of copies span splits.
    """
    started = time.perf_counter()
    total = sum(sum(counts) for counts in data.counts.values())
    images, fingerprints, last_print = [], [], started
    print(f"Hashing {total:,} images (each is decoded once more) ...")
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        for split, dataset in data.splits.items():
            position = 0
            for encoded, labels in dataset.batch(256).as_numpy_iterator():
                hashed = pool.map(fingerprint_encoded, encoded)
                for (fingerprint, size), label in zip(hashed, labels):
                    name = f"{split} #{position}"
                    images.append(CheckedImage(name, int(label), split, index=position, size=size))
                    fingerprints.append(fingerprint)
                    position += 1
                now = time.perf_counter()
                if now - last_print >= every_seconds:
                    print(f"  {len(images):,} of {total:,} images ({now - started:.0f} s)")
                    last_print = now
    return duplicate_report(
        images, fingerprints, data.class_names, image_size, time.perf_counter() - started
    )


def find_duplicates(data, image_size) -> DuplicateReport:
    """Your folder: the report of what its scan found. Fixed splits (TFDS): check_fixed_splits."""
    if data.scan is not None:
        return folder_duplicate_report(data, image_size)
    return check_fixed_splits(data, image_size)
