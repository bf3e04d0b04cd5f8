"""Copies, blank images and tiny images: what a careful look at a photo collection finds.

The same photo twice, once in train and once in test, makes the test score look better than
it is. The same photo in both classes is a label conflict. So every image gets a fingerprint:

- `content`: the SHA-256 of the file's bytes. Equal only for byte-identical copies.
- `perceptual`: a perceptual hash (pHash). The picture is shrunk to a 32 x 32 grey thumbnail,
  a 2-D discrete cosine transform (DCT) splits it into frequencies, and the 8 x 8 lowest ones
  are kept: the broad shapes of the photo, not its fine detail. Leaving out the first one (the
  mean brightness), each of the other 63 gives one bit: 1 when it is above their median.
  `centre` is the same hash of the middle of the picture (3.5% left out on each side), so that a
  copy cropped by a few percent on each side still lands near its original.
- `thumbnail`: a 64 x 64 grey thumbnail (4 KB), `colour`: a 16 x 16 map of its colours,
  and `grey`: True when the picture has no colour at all. The pixel check below compares them.
- `spread`: the standard deviation of the thumbnail's pixels (0-255). Near 0 means a blank or
  nearly uniform image, which teaches the network nothing.

Finding copies takes two steps:

1. The hash, fast, over every pair: two images are *candidates* when their hashes (full or
   centre) differ in at most NEAR_DUPLICATE_BITS of 63 bits. Copies of a photo land there, but
   so do different photos that look alike: aligned faces, X-rays, screenshots of one app.
2. The pixel check, on candidates only: the two thumbnails are lined up (a crop of up to 6% a
   side is undone by matching their row and column averages), and their grey pixels compared.
   The difference is the root mean square of the pixel differences, over the pictures'
   contrast (their standard deviation, at least CONTRAST_FLOOR so that near-uniform pictures
   are not judged on noise). A pair is a copy only when it is at most SAME_PHOTO_DIFFERENCE,
   and, when both are in colour, their colours agree too. Resizing, saving again as a JPEG,
   turning grey and small crops change a photo's pixels by less than that; different photos
   of the same kind differ by more. benchmarks/duplicate_pairs.py measures both, on folders of
   similar pictures (results in benchmarks/duplicate_pairs.json).

Confirmed copies join one group (union-find): copies of copies too. Blank images have no shapes
to compare, so they are grouped only when byte-identical.

Why not the `imagehash` package (or imagededup, fastdup): the split of your folder depends on
these groups, so every notebook that reads your folder would need it, and so an extra install
in Colab. The hash and the pixel check are a few lines of numpy (which Colab has), tested in
tests/test_duplicates.py.
"""

import concurrent.futures
import dataclasses
import functools
import hashlib
import io
import itertools
import time
from pathlib import Path

import numpy as np
from PIL import Image

from .messages import say, split_name

HASH_SIDE = 32


HASH_FREQUENCIES = 8


NEAR_DUPLICATE_BITS = 12


CENTRE_TRIM = 0.035  # the centre hash leaves out 3.5% of the picture on each side


LARGEST_TRIM = 0.06  # the pixel check undoes crops of up to 6% on a side ...


TRIM_STEP = 0.005  # ... tried in steps of half a percent


CONTRAST_FLOOR = 10.0  # the contrast the pixel check divides by is at least this (of 255)


SAME_PHOTO_DIFFERENCE = 0.10  # the most a copy's pixels differ (see the module's docstring)


GREY_COPY_DIFFERENCE = 0.05  # the most a grey copy differs from its colour original (see below)


COLOUR_DIFFERENCE = 0.15  # the most two colour copies' colours differ, relative to their colour


BLANK_SPREAD = 4.0


TOO_SMALL_FRACTION = 4  # too small: shorter side under IMG_SIZE / 4


@dataclasses.dataclass(frozen=True)
class Fingerprint:
    """What the duplicate check knows of one image (see the module's docstring)."""

    content: str  # SHA-256 of the file's bytes
    perceptual: int  # 63-bit perceptual hash of the whole picture
    spread: float  # standard deviation of the thumbnail's pixels, 0-255
    seconds: float = 0.0  # time spent computing this fingerprint
    centre: int = 0  # the same hash of the picture's centre
    thumbnail: np.ndarray | None = dataclasses.field(default=None, repr=False)  # grey, uint8
    colour: np.ndarray | None = dataclasses.field(default=None, repr=False)  # 16 x 16 x 2
    grey: bool = False  # grey all over: R = G = B in every pixel of the thumbnail
    side: int = HASH_SIDE  # the picture's shorter side, in pixels

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


@functools.cache
def box_weights(size: int, source: int, start: float = 0.0, end: float = 1.0) -> np.ndarray:
    """A (size, source) matrix that resamples the span [start, end] of a row of `source` pixels.

    start and end are fractions of the row. Each new pixel averages the source pixels it covers,
    in proportion to how much of each it covers: `weights @ image @ weights.T` shrinks an
    image, crops it, or both.
    """
    edges = (start + (end - start) * np.arange(size + 1) / size) * source
    pixels = np.arange(source)
    covered = np.minimum(edges[1:, None], pixels + 1) - np.maximum(edges[:-1, None], pixels)
    covered = np.clip(covered, 0, None)
    return covered / covered.sum(axis=1, keepdims=True)


def perceptual_hash(grey: np.ndarray) -> int:
    """The 63-bit pHash of a HASH_SIDE x HASH_SIDE grey thumbnail."""
    transform = cosine_transform_matrix(HASH_SIDE)
    lowest = (transform @ grey @ transform.T)[:HASH_FREQUENCIES, :HASH_FREQUENCIES]
    frequencies = lowest.ravel()[1:]  # without the mean brightness
    bits = frequencies > np.partition(frequencies, 31)[31]  # their median (63 of them)
    return int.from_bytes(np.packbits(bits).tobytes(), "big")  # 63 bits, then a 0


GREY_WEIGHTS = np.array([0.299, 0.587, 0.114], np.float32)  # how Pillow turns RGB grey


def fingerprint_image(image: Image.Image, content: bytes) -> Fingerprint:
    """The fingerprint of an RGB image whose file holds `content`."""
    started = time.perf_counter()
    large = 2 * HASH_SIDE
    rgb = np.asarray(image.resize((large, large), Image.Resampling.BILINEAR, reducing_gap=2.0))
    channels = rgb.transpose(2, 0, 1).astype(np.float32)  # 3 x 64 x 64
    whole = box_weights(HASH_SIDE, large).astype(np.float32)
    spread = float((whole @ channels @ whole.T).std(axis=(1, 2)).max())  # of the 32 x 32
    grey_large = np.tensordot(GREY_WEIGHTS, channels, axes=1)
    middle = box_weights(HASH_SIDE, large, CENTRE_TRIM, 1 - CENTRE_TRIM).astype(np.float32)
    sixteenth = box_weights(16, large).astype(np.float32)
    small = sixteenth @ channels @ sixteenth.T  # 3 x 16 x 16
    brightness = np.tensordot(GREY_WEIGHTS, small, axes=1)
    chroma = np.stack([small[0] - brightness, small[2] - brightness], axis=-1)  # red, blue
    unequal = max(np.abs(channels[0] - channels[1]).max(), np.abs(channels[1] - channels[2]).max())
    grey = bool(unequal <= 1)  # R = G = B everywhere (1 of 255 for rounding)
    return Fingerprint(
        content=hashlib.sha256(content).hexdigest(),
        perceptual=perceptual_hash(whole @ grey_large @ whole.T),
        spread=spread,
        centre=perceptual_hash(middle @ grey_large @ middle.T),
        thumbnail=np.round(grey_large).astype(np.uint8),
        colour=chroma,
        grey=grey,
        side=min(image.size),
        seconds=time.perf_counter() - started,
    )


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


def candidate_pairs(fingerprints, block: int = 256) -> list:
    """Pairs (i, j), i < j, of images whose hashes are near: whole to whole, or centre to whole.

    Blank images are left out: they have no shapes to hash.
    """
    shaped = [index for index, fingerprint in enumerate(fingerprints) if not fingerprint.blank]
    whole = np.array([fingerprints[index].perceptual for index in shaped], dtype=np.uint64)
    centre = np.array([fingerprints[index].centre for index in shaped], dtype=np.uint64)
    pairs = []
    for start in range(0, len(shaped), block):
        rows = slice(start, start + block)
        distances = np.minimum.reduce(
            [
                bit_differences(whole[rows], whole[start:]),
                bit_differences(centre[rows], whole[start:]),
                bit_differences(whole[rows], centre[start:]),
            ]
        )
        for row, column in zip(*np.nonzero(distances <= NEAR_DUPLICATE_BITS)):
            if column > row:
                pairs.append((shaped[start + row], shaped[start + column]))
    return pairs


@functools.cache
def trim_weights(size: int, source: int) -> tuple:
    """For one axis, every way to line up two pictures when either was cropped a little.

    Returns (first, second, trims): trims[k] = (left, right) as fractions of the picture,
    positive when the first picture is trimmed on that side, negative when the second is;
    first[k] and second[k] resample each picture's kept span to `size` pixels. The trims go
    up to LARGEST_TRIM in steps of 2 x TRIM_STEP: photo_difference refines them after.
    """
    count = round(LARGEST_TRIM / (2 * TRIM_STEP))
    steps = np.arange(-count, count + 1) * 2 * TRIM_STEP
    first, second, trims = [], [], []
    for left in steps:
        for right in steps:
            first_weights, second_weights = crop_weights(size, source, (left, right))
            first.append(first_weights)
            second.append(second_weights)
            trims.append((round(float(left), 4), round(float(right), 4)))
    return np.stack(first), np.stack(second), trims


def crop_weights(size: int, source: int, trims) -> tuple:
    """The two resampling matrices of one axis for trims (left, right) (see trim_weights)."""
    left, right = (round(float(trim), 4) for trim in trims)
    return trimmed_weights(size, source, left, right)


@functools.cache
def trimmed_weights(size: int, source: int, left: float, right: float) -> tuple:
    """crop_weights, kept: float32, as the pixel check uses them."""
    return (
        box_weights(size, source, max(left, 0.0), 1 - max(right, 0.0)).astype(np.float32),
        box_weights(size, source, max(-left, 0.0), 1 - max(-right, 0.0)).astype(np.float32),
    )


def standardised(rows: np.ndarray) -> np.ndarray:
    """Each row minus its mean, over its length: dot products of two rows are correlations."""
    centred = rows - rows.mean(axis=-1, keepdims=True)
    return centred / np.maximum(np.linalg.norm(centred, axis=-1, keepdims=True), 1e-9)


@dataclasses.dataclass
class Prepared:
    """What the pixel check works out once per image (and comparison size), for many pairs."""

    thumbnail: np.ndarray  # the grey thumbnail, float32
    unmoved: np.ndarray  # the same at the comparison size
    projections: list  # [(as first, as second)] for columns, then rows (see prepare)


def prepare(fingerprint: Fingerprint, size: int, known=None) -> Prepared:
    """An image made ready for the pixel check at `size` pixels.

    Its projections are its column and row averages resampled under every trim (see
    trim_weights), standardised: the trims that line up two images are where their projections
    correlate best. `known`: a dict that keeps what is prepared, so that an image met in many
    pairs is prepared once.
    """
    key = (id(fingerprint), size)
    if known is not None and key in known:
        return known[key]
    thumbnail = fingerprint.thumbnail.astype(np.float32)
    first_weights, second_weights, _ = trim_weights(size, len(thumbnail))
    unmoved, _ = crop_weights(size, len(thumbnail), (0.0, 0.0))
    ready = Prepared(
        thumbnail=thumbnail,
        unmoved=unmoved @ thumbnail @ unmoved.T,
        projections=[
            (standardised(first_weights @ profile), standardised(second_weights @ profile))
            for profile in (thumbnail.mean(axis=0), thumbnail.mean(axis=1))
        ],
    )
    if known is not None:
        known[key] = ready
    return ready


def matching_trims(first: Prepared, second: Prepared, size: int) -> list:
    """For each axis, the trims (left, right) under which the two images' averages correlate
    best: [[left, right], [top, bottom]]."""
    _, _, trims = trim_weights(size, len(first.thumbnail))
    found = []
    for (as_first, _), (_, as_second) in zip(first.projections, second.projections):
        found.append(list(trims[int(np.argmax((as_first * as_second).sum(axis=-1)))]))
    return found


def pixel_difference(first: np.ndarray, second: np.ndarray) -> float:
    """Root mean square difference of two grey pictures, over their contrast (see the top)."""
    first, second = first.ravel().astype(np.float64), second.ravel().astype(np.float64)
    count = len(first)
    variances = [(x @ x - x.sum() ** 2 / count) / count for x in (first, second)]
    contrast = np.sqrt(max(sum(variances), 0.0) / 2 + CONTRAST_FLOOR**2)
    difference = first - second
    return float(np.sqrt(difference @ difference / count) / contrast)


# Lined up, the cropped copies that the last step (moving each side) finds come under 2.5 times
# the threshold, and 25% or more closer than as they were (benchmarks/duplicate_pairs.py). Pairs
# that lining up brings less than 15% closer are not refined: two screenshots of one app that
# show other words, say, which would otherwise cost most of the check's time.
HOPELESS_DIFFERENCE = 2.5 * SAME_PHOTO_DIFFERENCE
CROP_GAIN = 0.85


def line_up(first: Fingerprint, second: Fingerprint, known=None) -> tuple:
    """(difference, trims): how much two images' grey pixels differ once lined up (0: same).

    Compared at the smaller picture's own size when it is under HASH_SIDE (a 25-pixel photo has
    no more detail than that, however large its thumbnail). First the trims of each side that
    best line up the pictures' column and row averages are found (trims: see trim_weights).
    The pictures are compared as they are, then, when that is not close enough, with those
    trims, then, when that helped as undoing a crop does (HOPELESS_DIFFERENCE, CROP_GAIN), with
    each side moved by one TRIM_STEP while that helps. This stops as soon as
    the pictures are close enough to be copies, so a copy's value can be above its best
    possible alignment; the decision is the same. `known`: see prepare.
    """
    size = min(HASH_SIDE, first.side, second.side)
    first, second = prepare(first, size, known), prepare(second, size, known)
    trims = matching_trims(first, second, size)
    a, b = first.thumbnail, second.thumbnail

    def difference(trims) -> float:
        (a_x, b_x), (a_y, b_y) = (crop_weights(size, len(a), axis) for axis in trims)
        return pixel_difference(a_y @ a @ a_x.T, b_y @ b @ b_x.T)

    unmoved = pixel_difference(first.unmoved, second.unmoved)
    if unmoved <= SAME_PHOTO_DIFFERENCE or not any(trims[0] + trims[1]):
        return unmoved, trims  # close enough as they are, or nothing to undo
    lined_up = difference(trims)
    best = min(unmoved, lined_up)
    if best <= SAME_PHOTO_DIFFERENCE or lined_up > HOPELESS_DIFFERENCE:
        return best, trims
    if lined_up > CROP_GAIN * unmoved:
        return best, trims  # lining up hardly helped: not a crop
    for _ in range(2):  # move one side at a time by a step, while it helps
        improved = False
        for axis, side, step in itertools.product((0, 1), (0, 1), (-TRIM_STEP, TRIM_STEP)):
            moved = [list(trims[0]), list(trims[1])]
            moved[axis][side] = round(moved[axis][side] + step, 4)
            if abs(moved[axis][side]) <= LARGEST_TRIM:
                score = difference(moved)
                if score < best:
                    best, trims, improved = score, moved, True
                    if best <= SAME_PHOTO_DIFFERENCE:
                        return best, trims
        if not improved:
            break
    return best, trims


def photo_difference(first: Fingerprint, second: Fingerprint) -> float:
    """How much two images' grey pixels differ once lined up (see line_up)."""
    return line_up(first, second)[0]


def colour_difference(first: Fingerprint, second: Fingerprint, trims=((0, 0), (0, 0))) -> float:
    """How much two images' colours differ, relative to how colourful they are (0 = same).

    The colour maps are lined up with `trims` (see line_up) and compared at 8 x 8. 0 when
    either image is grey all over (R = G = B): a grey copy has no colours to compare. A photo
    of a grey thing still has a little colour, so it is compared.
    """
    if first.grey or second.grey:
        return 0.0
    (a_x, b_x), (a_y, b_y) = (crop_weights(8, len(first.colour), axis) for axis in trims)
    a = np.einsum("ij,jkc,lk->ilc", a_y, first.colour.astype(np.float64), a_x, optimize=True)
    b = np.einsum("ij,jkc,lk->ilc", b_y, second.colour.astype(np.float64), b_x, optimize=True)
    colourful = np.sqrt((np.mean(a**2) + np.mean(b**2)) / 2 + CONTRAST_FLOOR**2)
    return float(np.sqrt(np.mean((a - b) ** 2)) / colourful)


def same_photo(first: Fingerprint, second: Fingerprint, known=None) -> bool:
    """The pixel check: the two images are copies of one photo (see the module's docstring).

    When one is grey and the other in colour, the colours cannot be compared, and only a grey
    copy is possible: turning a photo grey changes its grey pixels by almost nothing, so they
    must agree within GREY_COPY_DIFFERENCE. Otherwise a grey copy of one colour photo would join
    another photo whose grey pixels look alike but whose colours do not. `known`: see
    prepare.
    """
    difference, trims = line_up(first, second, known)
    if first.grey != second.grey:
        return difference <= GREY_COPY_DIFFERENCE
    return (
        difference <= SAME_PHOTO_DIFFERENCE
        and colour_difference(first, second, trims) <= COLOUR_DIFFERENCE
    )


@dataclasses.dataclass
class CopyGroups:
    """What group_copies found: groups of copies, and look-alikes that are not copies."""

    groups: list  # lists of 2 or more image indices, largest first
    lookalikes: list  # pairs (i, j) that the hash put near but the pixel check told apart


def group_copies(fingerprints, block: int = 256) -> CopyGroups:
    """Byte-identical files, and candidate pairs that pass the pixel check, joined in groups."""
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
    lookalikes, known = [], {}
    for first, second in candidate_pairs(fingerprints, block):
        if root(first) == root(second):
            continue  # already one group: no need to look
        if same_photo(fingerprints[first], fingerprints[second], known):
            join(first, second)
        else:
            lookalikes.append((first, second))
    members = {}
    for index in range(len(fingerprints)):
        members.setdefault(root(index), []).append(index)
    groups = [group for group in members.values() if len(group) > 1]
    groups = sorted(groups, key=lambda group: (-len(group), group[0]))
    together = {index: number for number, group in enumerate(groups) for index in group}
    lookalikes = [
        pair for pair in lookalikes if together.get(pair[0], -1) != together.get(pair[1], -2)
    ]
    return CopyGroups(groups, lookalikes)


def group_duplicates(fingerprints, block: int = 256) -> list:
    """Groups of 2 or more image indices that are copies of one photo, largest first."""
    return group_copies(fingerprints, block).groups


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
    lookalikes: list = dataclasses.field(default_factory=list)  # index pairs: not copies

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
            "lookalike_pairs": len(self.lookalikes),
            "lookalike_pairs_spanning_classes": sum(map(self.spans_classes, self.lookalikes)),
            "blank": len(self.blank),
            "too_small": len(self.too_small),
        }

    def describe(self, index, separator=" ") -> str:
        """An image's name, class and split (or "left out"), for a list or a plot title."""
        image = self.images[index]
        split = split_name(image.split) if image.split else say("left out")
        where = f"({self.class_names[image.label]}, {split})"
        return f"{image.name}{separator}{where}"

    def summary(self, listed: int = 10) -> str:
        counts = self.counts()
        smallest = self.image_size // TOO_SMALL_FRACTION
        lines = [
            say(
                "Checked {images:,} images in {seconds:.1f} s.",
                images=counts["images_checked"],
                seconds=self.seconds,
            ),
            say(
                "  copies: {groups:,} group(s) of the same photo, {images:,} images ({exact:,} "
                "group(s) byte-identical)",
                groups=counts["groups"],
                images=counts["images_in_groups"],
                exact=sum(self.exact),
            ),
            say(
                "  groups spanning both classes (label conflicts): {count:,}",
                count=counts["groups_spanning_classes"],
            ),
            say(
                "  groups spanning splits (a test image also seen in training): {count:,}",
                count=counts["groups_spanning_splits"],
            ),
            say(
                "  look-alikes that are not copies (near in the hash, told apart by the pixel "
                "check; kept): {pairs:,} pair(s), {across:,} of them across the classes",
                pairs=counts["lookalike_pairs"],
                across=counts["lookalike_pairs_spanning_classes"],
            ),
            say(
                "  blank or nearly uniform (pixel spread under {spread} of 255): {count:,}",
                spread=BLANK_SPREAD,
                count=counts["blank"],
            ),
            say(
                "  too small for IMG_SIZE {size} (shorter side under {smallest} pixels; scaled "
                "up, each pixel becomes a blur of {blur} x {blur} or more): {count:,}",
                size=self.image_size,
                smallest=smallest,
                blur=TOO_SMALL_FRACTION,
                count=counts["too_small"],
            ),
        ]
        for number, group in enumerate(self.groups[:listed], start=1):
            members = "; ".join(self.describe(index) for index in group[:6])
            if len(group) > 6:
                members += say("; and {more:,} more", more=len(group) - 6)
            kind = say("byte-identical") if self.exact[number - 1] else say("near copies")
            if self.spans_classes(group):
                kind += say(", LABEL CONFLICT")
            lines.append(
                say(
                    "  group {number} ({kind}): {members}",
                    number=number,
                    kind=kind,
                    members=members,
                )
            )
        if len(self.groups) > listed:
            more = len(self.groups) - listed
            lines.append(say("  ... and {more:,} more groups", more=more))
        for index in self.blank[:listed]:
            lines.append(say("  blank or uniform: {image}", image=self.describe(index)))
        if len(self.blank) > listed:
            more = len(self.blank) - listed
            lines.append(say("  ... and {more:,} more blank or uniform", more=more))
        for index in self.too_small[:listed]:
            size = self.images[index].size
            if size:
                lines.append(
                    say(
                        "  too small: {image}, {width} x {height}",
                        image=self.describe(index),
                        width=size[0],
                        height=size[1],
                    )
                )
            else:
                lines.append(say("  too small: {image}", image=self.describe(index)))
        if len(self.too_small) > listed:
            more = len(self.too_small) - listed
            lines.append(say("  ... and {more:,} more too small", more=more))
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
    images, fingerprints, class_names, image_size, seconds, groups=None, exact=None, lookalikes=()
) -> DuplicateReport:
    """A DuplicateReport of `images` (CheckedImage) and their fingerprints (None: not hashed).

    `groups`, `exact` and `lookalikes`, when given, are what an earlier grouping found (your
    folder's scan).
    """
    started = time.perf_counter()
    if groups is None:
        hashed = [index for index, fingerprint in enumerate(fingerprints) if fingerprint]
        found = group_copies([fingerprints[index] for index in hashed])
        groups = [[hashed[member] for member in group] for group in found.groups]
        exact = [len({fingerprints[index].content for index in group}) == 1 for group in groups]
        lookalikes = [(hashed[first], hashed[second]) for first, second in found.lookalikes]
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
        lookalikes=list(lookalikes),
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
    lookalikes = [
        (position[first], position[second]) for (first, _), (second, _) in scan.lookalike_pairs
    ]
    return duplicate_report(
        images,
        fingerprints,
        scan.class_names,
        image_size,
        scan.check_seconds,
        groups,
        scan.exact_groups,
        lookalikes,
    )


def check_fixed_splits(data, image_size, workers: int = 4, every_seconds: float = 10.0):
    """Decode every image of fixed splits (TFDS) once more, hash it, and report copies.

    Prints its progress. Nothing changes: the splits stay as TFDS made them, and the report
    says which groups of copies span splits.
    """
    started = time.perf_counter()
    total = sum(sum(counts) for counts in data.counts.values())
    images, fingerprints, last_print = [], [], started
    print(say("Hashing {total:,} images (each is decoded once more) ...", total=total))
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
                    print(
                        say(
                            "  {done:,} of {total:,} images ({seconds:.0f} s)",
                            done=len(images),
                            total=total,
                            seconds=now - started,
                        )
                    )
                    last_print = now
    return duplicate_report(
        images, fingerprints, data.class_names, image_size, time.perf_counter() - started
    )


def find_duplicates(data, image_size) -> DuplicateReport:
    """Your folder: the report of what its scan found. Fixed splits (TFDS): check_fixed_splits."""
    if data.scan is not None:
        return folder_duplicate_report(data, image_size)
    return check_fixed_splits(data, image_size)
