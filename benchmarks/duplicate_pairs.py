"""Does the copy check call copies copies, and nothing else? Labelled pairs from similar folders.

Folders of similar-looking images are where a copy check goes wrong: aligned faces, X-rays,
product shots on white, screenshots. Distinct photos there are close, and a check tuned on a
few very different photos calls them "the same photo". This benchmark writes such folders,
made offline, each of distinct pictures of one kind (the "distinct" set), plus copies of some of
them made as people make them, and asks tutorial_plumbing's check which files are copies.

Folder kinds (each picture distinct, all of one layout; see the functions below):

  faces         the 100 aligned LFW face crops scikit-image ships (25 x 25, grey): real photos
  patches       the 100 LFW non-face crops shipped with them (25 x 25, grey, many dark and flat)
  digits        handwritten 1s and 7s of scikit-learn's load_digits, 8 x 8 scaled to 28 x 28
  textures      non-overlapping 100 x 100 crops of brick, grass, gravel and moon (scikit-image)
  x-rays        chest-X-ray-like grey images: one layout, the anatomy and nodules jittered
  microscope    cell-like blobs on a stained background, one stain, cells at other places
  products      one object on a white background: a bottle, mug or box, each another product
                (size, proportions, colour), in a slightly different pose
  screenshots   one application window, the same layout and fonts, other words and numbers

Copy kinds, each of its own originals (20 per kind and folder by default; each original
copied once at most):

  byte copy     the same file again
  resized       scaled to 60% (pictures under 64 pixels are doubled instead), saved as JPEG 90
  JPEG q75      saved again as a JPEG of quality 75 (Pillow's default)
  grey          turned grey (for grey folders, the same pixels in another format)
  crop 2-5%     cropped by 2 to 5% on each side (drawn per side), saved as PNG
  JPEG q50, q30, q10   saved again at lower qualities: reported, not targets (a second folder)

A pair is "called a copy" when the check puts both files in one group (union-find, as the
folder scan does). Precision: of the pairs called copies, the share that are copies of one
original. Every pair of a folder counts, not just the pairs the hash looks at. Recall: of the
copies of a kind, the share called copies of their original; pairs where either picture is
blank (the scan's BLANK_SPREAD) are counted apart, since the check groups blank pictures only
when byte-identical. The targets: precision 1.0, recall 0.95 or more for each target kind.
The run also reports, per folder, what the hash alone (the check before the pixel check) calls
copies, and how close each of the pixel check's thresholds came to a wrong decision.

    python benchmarks/duplicate_pairs.py --json benchmarks/duplicate_pairs.json
    python benchmarks/duplicate_pairs.py --per-kind 20 --copies 4   # a quick run

It writes the folders to a temporary directory and scans each with scan_image_folder, exactly
as the notebooks do. About two and a half minutes on a 2-core CPU.
"""

import argparse
import io
import itertools
import json
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tutorial_plumbing import duplicates, your_images  # noqa: E402

COPY_KINDS = ["byte copy", "resized", "JPEG q10", "grey", "crop 2-5%"]


# ---------------------------------------------------------------------------------------------
# Folders of similar pictures: each function returns `count` distinct PIL images of one kind.


def lfw(count: int, faces: bool) -> list:
    """scikit-image's LFW subset: 100 face crops, then 100 non-face crops, 25 x 25 grey."""
    from skimage import data

    crops = data.lfw_subset()[:100] if faces else data.lfw_subset()[100:]
    return [Image.fromarray((crop * 255).round().astype(np.uint8)) for crop in crops[:count]]


def digits(count: int) -> list:
    """Handwritten 1s and 7s (the most alike digits), 8 x 8 at 17 levels, scaled to 28 x 28."""
    from sklearn.datasets import load_digits

    loaded = load_digits()
    ones = loaded.images[loaded.target == 1]
    sevens = loaded.images[loaded.target == 7]
    chosen = np.concatenate([ones[: (count + 1) // 2], sevens[: count // 2]])
    return [
        Image.fromarray((image * 255 / 16).round().astype(np.uint8)).resize(
            (28, 28), Image.Resampling.BILINEAR
        )
        for image in chosen
    ]


def textures(count: int) -> list:
    """Crops of 100 x 100 from a 5 x 5 grid (no overlap) of four 512 x 512 texture photos."""
    from skimage import data

    images = []
    for name in ("brick", "grass", "gravel", "moon"):
        pixels = getattr(data, name)()
        for row in range(5):
            for column in range(5):
                crop = pixels[
                    row * 100 + 6 : row * 100 + 106, column * 100 + 6 : column * 100 + 106
                ]
                images.append(Image.fromarray(crop))
    order = np.random.default_rng(0).permutation(len(images))
    return [images[index] for index in order[:count]]


def smooth_noise(rng, shape, scale: float) -> np.ndarray:
    """Noise smoothed over about `scale` pixels, mean 0, standard deviation about 1."""
    coarse = rng.normal(size=(max(2, int(shape[0] / scale)), max(2, int(shape[1] / scale))))
    image = Image.fromarray(coarse.astype(np.float32)).resize(
        (shape[1], shape[0]), Image.Resampling.BICUBIC
    )
    return np.asarray(image, np.float64)


def x_rays(count: int, side: int = 160) -> list:
    """Chest-X-ray-like grey images: body, lungs, spine, ribs, heart, nodules; all jittered."""
    rng = np.random.default_rng(1)
    y, x = np.mgrid[0:side, 0:side] / side
    images = []
    for _ in range(count):
        jitter = lambda spread: rng.normal(0, spread)  # noqa: E731
        body = ((x - 0.5 - jitter(0.01)) / (0.42 + jitter(0.01))) ** 2 + (
            (y - 0.55) / (0.55 + jitter(0.02))
        ) ** 2 < 1
        pixels = np.where(body, 150.0, 25.0)
        for side_x in (0.3, 0.7):
            lung = ((x - side_x - jitter(0.015)) / (0.15 + jitter(0.01))) ** 2 + (
                (y - 0.5 - jitter(0.015)) / (0.3 + jitter(0.015))
            ) ** 2 < 1
            pixels = np.where(lung, 70.0, pixels)
        ribs = np.sin((y + 0.15 * np.abs(x - 0.5) + jitter(0.01)) * 2 * np.pi * (9 + jitter(0.3)))
        pixels += 25 * (ribs > 0.6) * body
        pixels += 60 * (np.abs(x - 0.5 - jitter(0.005)) < 0.04 + jitter(0.003))  # spine
        heart = ((x - 0.56 - jitter(0.015)) / 0.13) ** 2 + ((y - 0.62 - jitter(0.015)) / 0.12) ** 2
        pixels += 50 * (heart < 1)
        for _ in range(rng.integers(1, 4)):  # nodules
            cx, cy, radius = rng.uniform(0.2, 0.8), rng.uniform(0.3, 0.8), rng.uniform(0.01, 0.04)
            pixels += 40 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2))
        pixels += 12 * smooth_noise(rng, pixels.shape, 12) + rng.normal(0, 4, pixels.shape)
        image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
        images.append(image.filter(ImageFilter.GaussianBlur(1)))
    return images


def microscope(count: int, side: int = 128) -> list:
    """Stained-slide-like colour images: the same stain and cell size, cells at other places."""
    rng = np.random.default_rng(2)
    y, x = np.mgrid[0:side, 0:side]
    images = []
    for _ in range(count):
        stain = np.zeros((side, side))
        for _ in range(rng.integers(12, 20)):
            cx, cy = rng.uniform(0, side, 2)
            radius = rng.uniform(5, 9)
            stain += np.exp(-((((x - cx) ** 2 + (y - cy) ** 2) / (2 * radius**2)) ** 2))
        stain = np.clip(stain, 0, 1) + 0.08 * smooth_noise(rng, stain.shape, 6)
        background = np.array([235.0, 225.0, 240.0])
        cell = np.array([120.0, 60.0, 150.0])
        pixels = background + stain[..., None] * (cell - background)
        pixels += rng.normal(0, 3, pixels.shape)
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images


def products(count: int, side: int = 160) -> list:
    """Product shots: one bottle, mug or box on white, centred, lit the same way.

    Each picture is another product (its size, proportions and colour drawn anew; grey,
    black and white products included), in a slightly different pose.
    """
    rng = np.random.default_rng(3)
    images = []
    for index in range(count):
        shape = ("bottle", "mug", "box")[index % 3]
        hue, saturation, value = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.15, 0.95)
        hsv = np.array([[[hue * 255, saturation * 255, value * 255]]], np.uint8)
        colour = tuple(int(c) for c in Image.fromarray(hsv, "HSV").convert("RGB").getpixel((0, 0)))
        half, top = rng.uniform(18, 34), rng.uniform(30, 60)
        bottom = 136
        canvas = Image.new("RGB", (side, side), (255, 255, 255))
        draw = ImageDraw.Draw(canvas)
        draw.ellipse((80 - half - 10, 131, 80 + half + 10, 141), fill=(225, 225, 225))  # shadow
        if shape == "bottle":
            neck = rng.uniform(5, 10)
            draw.rounded_rectangle((80 - half, top + 30, 80 + half, bottom), 8, fill=colour)
            draw.rectangle((80 - neck, top, 80 + neck, top + 32), fill=colour)
        elif shape == "mug":
            handle = rng.uniform(14, 26)
            box = (80 + half - 12, top + 25, 80 + half + handle, top + 70)
            draw.ellipse(box, outline=colour, width=7)
            draw.rounded_rectangle((80 - half, top + 15, 80 + half, bottom), 4, fill=colour)
        else:
            band = rng.uniform(25, 55)
            draw.rectangle((80 - half - 6, top + 10, 80 + half + 6, bottom), fill=colour)
            white = (255, 255, 255)
            draw.line((80 - half - 6, top + band, 80 + half + 6, top + band), fill=white, width=3)
        highlight = tuple(min(255, channel + 60) for channel in colour)
        draw.rectangle((80 - half + 6, top + 35, 80 - half + 12, bottom - 10), fill=highlight)
        canvas = canvas.rotate(rng.uniform(-6, 6), Image.Resampling.BICUBIC, fillcolor=(255,) * 3)
        pixels = np.asarray(canvas, np.float64) + rng.normal(0, 2, (side, side, 3))
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images


WORDS = (
    "invoice order total amount customer account status pending shipped paid open closed "
    "report summary date time name email phone address city country notes item price tax "
    "discount balance due overdue review approve reject export import settings profile"
).split()


def screenshots(count: int, width: int = 320, height: int = 200) -> list:
    """One application window: title bar, menu, a table of words and numbers; other contents."""
    rng = np.random.default_rng(4)
    font = ImageFont.load_default(11)
    images = []
    for _ in range(count):
        canvas = Image.new("RGB", (width, height), (250, 250, 250))
        draw = ImageDraw.Draw(canvas)
        draw.rectangle((0, 0, width, 22), fill=(40, 90, 160))
        draw.text((8, 5), " ".join(rng.choice(WORDS, 2)).title(), fill="white", font=font)
        draw.rectangle((0, 22, 70, height), fill=(230, 232, 236))
        for row in range(8):
            draw.text((6, 30 + row * 20), str(rng.choice(WORDS)), fill=(60, 60, 60), font=font)
        for row in range(9):
            y = 30 + row * 18
            draw.line((78, y + 15, width - 8, y + 15), fill=(220, 220, 220))
            draw.text((80, y), str(rng.choice(WORDS)), fill=(20, 20, 20), font=font)
            draw.text((160, y), f"{rng.integers(1, 9999):,}", fill=(20, 20, 20), font=font)
            draw.text((230, y), str(rng.choice(WORDS)), fill=(20, 20, 20), font=font)
        images.append(canvas)
    return images


FOLDER_KINDS = {
    "faces": lambda count: lfw(count, faces=True),
    "patches": lambda count: lfw(count, faces=False),
    "digits": digits,
    "textures": textures,
    "x-rays": x_rays,
    "microscope": microscope,
    "products": products,
    "screenshots": screenshots,
}


# ---------------------------------------------------------------------------------------------
# Copies, as people make them

COPY_KINDS = ["byte copy", "resized", "JPEG q75", "grey", "crop 2-5%"]  # the targets
HARDER_KINDS = ["JPEG q50", "JPEG q30", "JPEG q10"]  # reported, not targets


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def make_copy(kind: str, image: Image.Image, original: bytes, rng) -> tuple:
    """(file suffix, bytes) of a copy of `image`, whose file holds `original` (PNG)."""
    width, height = image.size
    if kind == "byte copy":
        return ".png", original
    if kind == "resized":
        factor = 0.6 if min(width, height) >= 64 else 2.0
        size = (round(width * factor), round(height * factor))
        resized = image.resize(size, Image.Resampling.LANCZOS)
        return ".jpg", encode(resized.convert("RGB"), "JPEG", quality=90)
    if kind.startswith("JPEG q"):
        return ".jpg", encode(image.convert("RGB"), "JPEG", quality=int(kind[len("JPEG q") :]))
    if kind == "grey":
        return ".png", encode(image.convert("L"), "PNG")
    if kind == "crop 2-5%":
        left, top, right, bottom = rng.uniform(0.02, 0.05, 4)
        box = (
            round(width * left),
            round(height * top),
            width - round(width * right),
            height - round(height * bottom),
        )
        return ".png", encode(image.crop(box), "PNG")
    raise ValueError(kind)


def write_folder(root: Path, originals: list, copy_kinds: list, copies: int, seed: int) -> list:
    """Originals (as PNG) and `copies` copies of each kind, each of another original.

    The files go into two class folders, a/ and b/, each copy next to its original. Returns
    [(path, original number, "original" or the copy kind)].
    """
    rng = np.random.default_rng(seed)
    if copies * len(copy_kinds) > len(originals):
        raise ValueError("each original gets one copy at most: ask for fewer copies")
    files = []
    for number, image in enumerate(originals):
        path = root / ("a", "b")[number % 2] / f"{number:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encode(image, "PNG"))
        files.append((path, number, "original"))
    order = rng.permutation(len(originals))
    for position, kind in enumerate(copy_kinds):
        for number in order[position * copies : (position + 1) * copies]:
            number = int(number)
            original = files[number][0]
            suffix, content = make_copy(kind, originals[number], original.read_bytes(), rng)
            name = kind.replace(" ", "_").replace("%", "")
            path = original.with_name(f"{number:03d} {name}{suffix}")
            path.write_bytes(content)
            files.append((path, number, kind))
    return files


# ---------------------------------------------------------------------------------------------
# Scoring: every pair of files in a folder

# The settings of tutorial_plumbing/duplicates.py that decide what is a copy, kept in the results.
CHECK_SETTINGS = [
    "NEAR_DUPLICATE_BITS",
    "CENTRE_TRIM",
    "BLANK_SPREAD",
    "LARGEST_TRIM",
    "TRIM_STEP",
    "CONTRAST_FLOOR",
    "SAME_PHOTO_DIFFERENCE",
    "GREY_COPY_DIFFERENCE",
    "COLOUR_DIFFERENCE",
    "HOPELESS_DIFFERENCE",
    "CROP_GAIN",
]


def hash_alone_groups(fingerprints) -> list:
    """What the check did before the pixel check: every pair within NEAR_DUPLICATE_BITS."""
    parent = list(range(len(fingerprints)))

    def root(index):
        while parent[index] != index:
            index = parent[index]
        return index

    hashes = np.array([fingerprint.perceptual for fingerprint in fingerprints], np.uint64)
    distances = duplicates.bit_differences(hashes, hashes)
    for first, second in zip(*np.nonzero(distances <= duplicates.NEAR_DUPLICATE_BITS)):
        blank = fingerprints[first].blank or fingerprints[second].blank
        same_bytes = fingerprints[first].content == fingerprints[second].content
        if first < second and (same_bytes or not blank):
            parent[root(first)] = root(second)
    return [root(index) for index in range(len(fingerprints))]


def score_folder(files: list, group_of: dict, blank: set) -> dict:
    """Pairs called copies (same group) against pairs that are copies (same original).

    Precision counts every pair of files. Recall counts each copy with its original, leaving
    out pairs where the original or the copy is blank (`blank`: their paths; a crop can leave
    nothing but a flat part of a picture): the check groups those only when
    byte-identical, by design, and they are counted apart.
    """
    called_true = called_false = 0
    for (first, number, _), (second, other, _) in itertools.combinations(files, 2):
        called = group_of.get(first) is not None and group_of.get(first) == group_of.get(second)
        if called and number == other:
            called_true += 1
        elif called:
            called_false += 1
    originals = {number: path for path, number, kind in files if kind == "original"}
    found, of_blank = {}, {}
    for path, number, kind in files:
        if kind != "original":
            group = group_of.get(path)
            hit = group is not None and group == group_of.get(originals[number])
            either_blank = path in blank or originals[number] in blank
            (of_blank if either_blank else found).setdefault(kind, []).append(hit)
    called = called_true + called_false
    return {
        "pairs_called_copies": called,
        "distinct_pairs_called_copies": called_false,
        "precision": round(called_true / called, 4) if called else None,
        "recall": {kind: round(float(np.mean(hits)), 4) for kind, hits in found.items()},
        "copies": {kind: len(hits) for kind, hits in found.items()},
        "copies_found": {kind: int(np.sum(hits)) for kind, hits in found.items()},
        "copies_of_blank_pictures": {kind: len(hits) for kind, hits in of_blank.items()},
        "copies_of_blank_pictures_found": {
            kind: int(np.sum(hits)) for kind, hits in of_blank.items()
        },
    }


def margins(files: list, fingerprint_of: dict) -> dict:
    """How close the decisions were: the pixel check's values for the hash's candidates.

    Each threshold decides some pairs (tutorial_plumbing.same_photo): pairs where one picture is
    grey and the other in colour are judged by GREY_COPY_DIFFERENCE alone; the others by
    SAME_PHOTO_DIFFERENCE on their grey pixels, then, when both are in colour, by
    COLOUR_DIFFERENCE. For each, the closest distinct pictures (the smallest value between two
    distinct pictures that the check looks at) and the farthest copies (the largest value
    between a copy and its original, neither blank, per copy kind). line_up stops once a
    pair is close enough, so values under the threshold are upper bounds.
    """
    paths = list(fingerprint_of)
    prints = [fingerprint_of[path] for path in paths]
    number_of = {path: number for path, number, _ in files}
    closest = {"grey": None, "grey copy": None, "colour": None}

    def lower(key, value):
        closest[key] = (
            round(value, 4) if closest[key] is None else min(closest[key], round(value, 4))
        )

    for first, second in duplicates.candidate_pairs(prints):
        a, b = prints[first], prints[second]
        if number_of[paths[first]] != number_of[paths[second]]:
            difference, trims = duplicates.line_up(a, b)
            if a.grey != b.grey:
                lower("grey copy", difference)
                continue
            colour = duplicates.colour_difference(a, b, trims)
            if colour <= duplicates.COLOUR_DIFFERENCE:
                lower("grey", difference)
            if difference <= duplicates.SAME_PHOTO_DIFFERENCE and not a.grey:
                lower("colour", colour)
    originals = {number: path for path, number, kind in files if kind == "original"}
    farthest = {"grey": {}, "grey copy": {}, "colour": {}}
    for path, number, kind in files:
        original, copy = fingerprint_of[originals[number]], fingerprint_of[path]
        if kind not in ("original", "byte copy") and not (original.blank or copy.blank):
            difference, trims = duplicates.line_up(original, copy)
            rule = "grey copy" if original.grey != copy.grey else "grey"
            farthest[rule][kind] = round(max(farthest[rule].get(kind, 0.0), difference), 4)
            if not (original.grey or copy.grey):
                colour = duplicates.colour_difference(original, copy, trims)
                farthest["colour"][kind] = round(max(farthest["colour"].get(kind, 0.0), colour), 4)
    return {"closest_distinct": closest, "farthest_copy": farthest}


def run_kind(kind: str, count: int, copies: int, scratch: Path, seed: int) -> dict:
    """Write and scan one folder kind, twice: the target copies, then the harder JPEGs."""
    originals = FOLDER_KINDS[kind](count)
    result = {"originals": len(originals), "image_size": list(originals[0].size)}
    for name, kinds in (("targets", COPY_KINDS), ("harder", HARDER_KINDS)):
        root = scratch / kind / name
        files = write_folder(root, originals, kinds, copies, seed)
        started = time.perf_counter()
        scan = your_images.scan_image_folder(root)
        seconds = time.perf_counter() - started
        group_of = {
            Path(path): number
            for number, group in enumerate(scan.duplicate_groups)
            for path, _ in group
        }
        # The scan keeps no fingerprint of a file it left out (a label conflict): read them all.
        fingerprint_of = {path: your_images.inspect_image(path)[3] for path, _, _ in files}
        blank = {path for path, _, _ in files if fingerprint_of[path].blank}
        scored = score_folder(files, group_of, blank)
        scored["scan_seconds"] = round(seconds, 2)
        scored["candidate_pairs"] = len(duplicates.candidate_pairs(scan.fingerprints))
        scored.update(margins(files, fingerprint_of))
        if name == "targets":
            result["blank_originals"] = sum(
                kind == "original" and path in blank for path, _, kind in files
            )
            roots = hash_alone_groups(list(fingerprint_of.values()))
            alone = score_folder(files, dict(zip(fingerprint_of, roots)), blank)
            scored["hash_alone"] = {
                key: alone[key]
                for key in ("pairs_called_copies", "distinct_pairs_called_copies", "precision")
            }
        result[name] = scored
    return result


def totals(results: dict, name: str) -> dict:
    """Precision over every folder, recall of each copy kind over every folder."""
    called = sum(result[name]["pairs_called_copies"] for result in results.values())
    wrong = sum(result[name]["distinct_pairs_called_copies"] for result in results.values())
    recall = {}
    for kind in COPY_KINDS if name == "targets" else HARDER_KINDS:
        copies = sum(result[name]["copies"][kind] for result in results.values())
        found = sum(result[name]["copies_found"][kind] for result in results.values())
        recall[kind] = round(found / copies, 4)
    of_blank = [result[name]["copies_of_blank_pictures"] for result in results.values()]
    found_of_blank = [result[name]["copies_of_blank_pictures_found"] for result in results.values()]
    return {
        "pairs_called_copies": called,
        "distinct_pairs_called_copies": wrong,
        "precision": round((called - wrong) / called, 4) if called else None,
        "recall": recall,
        "copies_of_blank_pictures": dict(sum(map(Counter, of_blank), Counter())),
        "copies_of_blank_pictures_found": dict(sum(map(Counter, found_of_blank), Counter())),
    }


def table(results: dict, name: str, kinds: list) -> str:
    """A plain-text table: one row per folder kind, one column per copy kind."""
    header = f"{'folder':<12} {'precision':>9} {'false':>5}  " + "  ".join(
        f"{kind:>9}" for kind in kinds
    )
    lines = [header]
    for folder, result in results.items():
        scored = result[name]
        precision = "-" if scored["precision"] is None else f"{scored['precision']:.3f}"
        recall = "  ".join(f"{scored['recall'][kind]:>9.2f}" for kind in kinds)
        lines.append(
            f"{folder:<12} {precision:>9} {scored['distinct_pairs_called_copies']:>5}  {recall}"
        )
    total = totals(results, name)
    precision = "-" if total["precision"] is None else f"{total['precision']:.3f}"
    recall = "  ".join(f"{total['recall'][kind]:>9.2f}" for kind in kinds)
    lines.append(f"{'all':<12} {precision:>9} {total['distinct_pairs_called_copies']:>5}  {recall}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-kind", type=int, default=100, help="distinct pictures per folder")
    parser.add_argument("--copies", type=int, default=20, help="copies of each kind per folder")
    parser.add_argument("--kinds", nargs="*", default=list(FOLDER_KINDS), help="folder kinds")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as scratch:
        results = {
            kind: run_kind(kind, args.per_kind, args.copies, Path(scratch), args.seed)
            for kind in args.kinds
        }
    summary = {
        "settings": {
            "distinct_pictures_per_folder": args.per_kind,
            "copies_per_kind_and_folder": args.copies,
            "seed": args.seed,
            **{name: getattr(duplicates, name) for name in CHECK_SETTINGS},
        },
        "targets": totals(results, "targets"),
        "harder": totals(results, "harder"),
        "hash_alone": {
            "pairs_called_copies": sum(
                r["targets"]["hash_alone"]["pairs_called_copies"] for r in results.values()
            ),
            "distinct_pairs_called_copies": sum(
                r["targets"]["hash_alone"]["distinct_pairs_called_copies"] for r in results.values()
            ),
        },
        "folders": results,
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {
            "python": platform.python_version(),
            "pillow": Image.__version__,
            "numpy": np.__version__,
        },
    }
    print("Copies (pixel check on the hash's candidates), precision and recall per folder kind:")
    print(table(results, "targets", COPY_KINDS))
    print("\nHarder JPEGs (not targets):")
    print(table(results, "harder", HARDER_KINDS))
    print("\nThe hash alone (before the pixel check), distinct pairs called copies:")
    for folder, result in results.items():
        alone = result["targets"]["hash_alone"]
        print(f"  {folder:<12} {alone['distinct_pairs_called_copies']}")
    thresholds = {
        "grey": duplicates.SAME_PHOTO_DIFFERENCE,
        "grey copy": duplicates.GREY_COPY_DIFFERENCE,
        "colour": duplicates.COLOUR_DIFFERENCE,
    }
    for rule, threshold in thresholds.items():
        print(
            f"\nThe pixel check's {rule} rule (copy when at most {threshold}): "
            "closest distinct pictures | farthest copies"
        )
        for folder, result in results.items():
            scored = result["targets"]
            farthest = scored["farthest_copy"][rule]
            far = ", ".join(f"{kind} {value:.3f}" for kind, value in farthest.items())
            print(f"  {folder:<12} {scored['closest_distinct'][rule]}  | {far}")
    blank = summary["targets"]["copies_of_blank_pictures"]
    if blank:
        found = summary["targets"]["copies_of_blank_pictures_found"]
        listed = ", ".join(f"{kind} {found.get(kind, 0)} of {n}" for kind, n in blank.items())
        print(
            "\nCopies with a blank picture (not in the recall; grouped when byte-identical): "
            + listed
        )
    print(f"\n{summary['seconds']} s")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return summary


if __name__ == "__main__":
    main()
