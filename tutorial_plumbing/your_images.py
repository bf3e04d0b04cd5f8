"""Your own images: a folder, a .zip or an upload, each file checked once, never changed."""

import concurrent.futures
import dataclasses
import hashlib
import io
import os
import shutil
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .duplicates import fingerprint_image, group_copies
from .machine import GOOGLE_DRIVE, mount_drive_if_needed, running_in_colab
from .messages import CannotContinue, num, say, split_name

SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}


# What Keras's image_dataset_from_directory reads too. MPO is how Pillow names many camera JPEGs.
SUPPORTED_FORMATS = {"JPEG", "MPO", "PNG", "BMP", "GIF"}


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


NAMED_EXAMPLES = 3  # files named in the one line that counts a repeated conversion


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
            say(
                "DATA_DIR does not exist: {path}\n"
                "What to do: check the path. In Colab, paths on Google Drive start with "
                "/content/drive/MyDrive/.",
                path=path,
            )
        )
    if path.is_dir():
        if str(path.resolve()).startswith(GOOGLE_DRIVE):
            print(
                say(
                    "Tip: reading many small files from Google Drive is slow. A .zip of this "
                    "folder\non Drive is faster: it is copied to local disk once and unpacked "
                    "there."
                )
            )
        return path
    if zipfile.is_zipfile(path):
        return unpack_zip(path)
    raise CannotContinue(
        say(
            "DATA_DIR is a file but not a .zip: {path}\n"
            "What to do: point DATA_DIR at a folder with two class folders, or at a .zip of it.",
            path=path,
        )
    )


def upload_zip_in_colab() -> Path:
    if not running_in_colab():
        raise CannotContinue(
            say(
                'DATA_DIR="upload" works in Colab only. Here, set DATA_DIR to a folder or .zip '
                "path."
            )
        )
    from google.colab import files

    print(say("Choose one .zip with your two class folders inside."))
    names = [name for name in files.upload() if name.lower().endswith(".zip")]
    if not names:
        raise CannotContinue(
            say("No .zip was uploaded. Run the cell again and choose a .zip file.")
        )
    return Path(names[0]).resolve()


def unpack_zip(zip_path: Path) -> Path:
    """Unpack a zip once into SCRATCH_DIR (reused while the zip is unchanged); skip OS litter."""
    stat = zip_path.stat()
    key = f"{zip_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    target = SCRATCH_DIR / f"{zip_path.stem}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"
    done_marker = target / ".unpacked"
    if done_marker.exists():
        print(say("Using {zip} unpacked earlier in {target}", zip=zip_path.name, target=target))
        return target
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = zip_path
    if str(zip_path.resolve()).startswith(GOOGLE_DRIVE):
        print(say("Copying {zip} from Google Drive to local disk ...", zip=zip_path.name))
        source = Path(shutil.copy2(zip_path, SCRATCH_DIR / zip_path.name))
    print(say("Unpacking {zip} into {target} ...", zip=zip_path.name, target=target))
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
    return as_rgb(image)


def as_rgb(image: Image.Image) -> Image.Image:
    """An opened image as RGB, read as open_rgb_image reads it."""
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
    """Decode a file once: (problem, conversion, (width, height), fingerprint).

    problem is None if the image is usable; the fingerprint (duplicates.py) finds its copies.
    """
    if path.stat().st_size == 0:
        return say("empty file (0 bytes)"), None, None, None
    unsupported = sniff_unsupported_format(path)
    if unsupported:
        return unsupported_format(unsupported), None, None, None
    content = path.read_bytes()
    try:
        with Image.open(io.BytesIO(content)) as image:
            image_format, mode = image.format, image.mode
            frames = getattr(image, "n_frames", 1)
            if image_format not in SUPPORTED_FORMATS:
                return unsupported_format(image_format), None, None, None
            image.load()
            size = image.size
            fingerprint = fingerprint_image(as_rgb(image), content)
    except Image.UnidentifiedImageError:
        return say("not an image"), None, None, None
    except Image.DecompressionBombError:
        return say("too large to decode safely"), None, None, None
    except Exception as error:
        return say("truncated or damaged: {error}", error=error), None, None, None
    notes = []
    if mode != "RGB":
        notes.append(mode_description(mode))
    if frames > 1 and image_format != "MPO":  # MPO: a camera JPEG with extra (depth) images
        notes.append(say("animated ({frames} frames), the first frame is used", frames=frames))
    return None, "; ".join(notes) or None, size, fingerprint


def unsupported_format(name: str) -> str:
    return say("unsupported format: {name} (convert it to JPEG or PNG)", name=name)


def mode_description(mode: str) -> str:
    """What reading does to an image of this Pillow mode, in words."""
    if mode in ("RGBA", "LA", "PA"):
        return say("transparent, put on a white background")
    if mode.startswith("I"):
        return say("16-bit, scaled to 8-bit RGB")
    names = {
        "L": say("grayscale, converted to RGB"),
        "P": say("palette colours, converted to RGB"),
        "CMYK": say("CMYK colours, converted to RGB"),
        "1": say("black and white, converted to RGB"),
    }
    return names.get(mode) or say("mode {mode}, converted to RGB", mode=mode)


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
    fingerprints: list = dataclasses.field(default_factory=list)  # of each usable image
    # Copies (duplicates.py): lists of (path, class index), left-out label conflicts included.
    duplicate_groups: list = dataclasses.field(default_factory=list)
    exact_groups: list = dataclasses.field(default_factory=list)  # each group byte-identical?
    # Pairs of (path, class index) near in the hash that the pixel check told apart: not copies.
    lookalike_pairs: list = dataclasses.field(default_factory=list)
    check_seconds: float = 0.0  # spent hashing (summed over images) and grouping

    def class_counts(self) -> list:
        counts = Counter(label for _, label in self.images)
        return [counts[index] for index in range(len(self.class_names))]

    def summary(self) -> str:
        seen = len(self.images) + len(self.skipped)
        per_class = zip(self.class_names, self.class_counts())
        lines = [
            say("Scanned {folder}", folder=self.root),
            say(
                "  files seen: {seen:,} | used: {used:,} | skipped: {skipped:,} "
                "| converted: {converted:,} | OS files ignored: {ignored:,}",
                seen=seen,
                used=len(self.images),
                skipped=len(self.skipped),
                converted=len(self.converted),
                ignored=self.ignored,
            ),
            say("  per class: ") + ", ".join(f"{n}: {num(c):,}" for n, c in per_class),
        ]
        reasons = Counter(reason_kind(reason) for _, reason in self.skipped)
        if reasons:
            lines.append(
                say("  skipped by reason: ")
                + ", ".join(f"{r}: {num(n):,}" for r, n in reasons.items())
            )
        if self.duplicate_groups:
            lines.append(
                say(
                    "  copies: {groups:,} group(s) of the same photo ({images:,} images), each "
                    "group kept in one split",
                    groups=len(self.duplicate_groups),
                    images=sum(len(group) for group in self.duplicate_groups),
                )
            )
        blank = sum(fingerprint.blank for fingerprint in self.fingerprints)
        if blank:
            lines.append(
                say("  blank or nearly uniform: {blank:,} (used; part 1 lists them)", blank=blank)
            )
        # Every file left out is named; a note repeated on many used files is counted.
        for why, paths in files_by_note(self.skipped).items():
            if len(paths) == 1:
                lines.append(say("  Skipped: {file} ({why})", file=paths[0], why=why))
            else:
                lines.append(say("  Skipped ({why}): {count:,} files", why=why, count=len(paths)))
                lines += wrapped_names(paths)
        for why, paths in files_by_note(self.converted).items():
            if len(paths) == 1:
                lines.append(say("  Converted: {file} ({why})", file=paths[0], why=why))
            elif len(paths) <= NAMED_EXAMPLES:
                lines.append(
                    say(
                        "  Converted ({why}): {count:,} files: {examples}",
                        why=why,
                        count=len(paths),
                        examples=", ".join(paths),
                    )
                )
            else:
                lines.append(
                    say(
                        "  Converted ({why}): {count:,} files, such as {examples} and {more:,} "
                        "more",
                        why=why,
                        count=len(paths),
                        examples=", ".join(paths[:NAMED_EXAMPLES]),
                        more=len(paths) - NAMED_EXAMPLES,
                    )
                )
        return "\n".join(lines)


def reason_kind(reason: str) -> str:
    """The kind of a skip reason, without its details: "truncated or damaged", "empty file"."""
    return reason.split(":")[0].split(" (")[0].split(";")[0]


def files_by_note(pairs) -> dict:
    """(file, note) pairs as {note: [files]}, notes in the order they first come."""
    grouped = {}
    for relative, note in pairs:
        grouped.setdefault(note, []).append(relative)
    return grouped


def wrapped_names(names, width: int = 100) -> list:
    """File names, comma-separated, on indented lines of at most about `width` characters."""
    lines, line = [], "    "
    for number, name in enumerate(names):
        piece = name + ("," if number < len(names) - 1 else "")
        if len(line) + len(piece) > width and line.strip():
            lines.append(line.rstrip())
            line = "    "
        line += piece + " "
    return lines + [line.rstrip()]


def scan_image_folder(folder, workers: int = 4) -> FolderScan:
    """Check every file under the two class folders before anything trains.

    Each file is decoded once. Unusable files are listed with their reason and left out; they
    are never deleted, moved or rewritten. OS litter (.DS_Store, __MACOSX/, ._* ...) is ignored.
    Copies of the same photo are grouped (duplicates.py); a group in both classes is a label
    conflict: its images are left out, with that reason, since one of the labels is wrong.
    """
    root = find_class_root(Path(folder))
    class_dirs = sorted(e for e in root.iterdir() if e.is_dir() and not is_os_litter(e.name))
    if len(class_dirs) != 2:
        found = ", ".join(f"{d.name}/" for d in class_dirs) or say("no folders")
        raise CannotContinue(
            say(
                "Expected exactly 2 class folders in {root}, found {count}: {found}.\n"
                "The layout must be:\n"
                "  {root}/\n    <class_a>/  image files\n    <class_b>/  image files\n"
                "What to do: keep exactly two class folders there (move the others out).",
                root=root,
                count=len(class_dirs),
                found=found,
            )
        )
    candidates, skipped, ignored = [], [], 0
    for entry in root.iterdir():
        if entry.is_file():
            if is_os_litter(entry.name):
                ignored += 1
            else:
                skipped.append((entry.name, say("outside the class folders")))
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
    images, sizes, converted, fingerprints = [], [], [], []
    for (path, label), (problem, conversion, size, fingerprint) in zip(candidates, results):
        relative = str(path.relative_to(root))
        if problem:
            skipped.append((relative, problem))
            continue
        images.append((str(path), label))
        sizes.append(size)
        fingerprints.append(fingerprint)
        if conversion:
            converted.append((relative, conversion))
    class_names = [d.name for d in class_dirs]
    started = time.perf_counter()
    found = group_copies(fingerprints)
    groups = found.groups
    check_seconds = time.perf_counter() - started + sum(f.seconds for f in fingerprints)
    left_out = set()
    for group in groups:
        if len({images[index][1] for index in group}) > 1:
            for index in group:
                others = ", ".join(
                    str(Path(images[other][0]).relative_to(root))
                    for other in group
                    if images[other][1] != images[index][1]
                )
                reason = say(
                    "label conflict: the same photo is in the other class ({others})",
                    others=others,
                )
                skipped.append((str(Path(images[index][0]).relative_to(root)), reason))
                left_out.add(index)
    kept = [index for index in range(len(images)) if index not in left_out]
    scan = FolderScan(
        root,
        class_names,
        [images[index] for index in kept],
        [sizes[index] for index in kept],
        skipped,
        converted,
        ignored,
        fingerprints=[fingerprints[index] for index in kept],
        duplicate_groups=[[images[index] for index in group] for group in groups],
        exact_groups=[len({fingerprints[i].content for i in group}) == 1 for group in groups],
        lookalike_pairs=[(images[first], images[second]) for first, second in found.lookalikes],
        check_seconds=check_seconds,
    )
    empty = [name for name, count in zip(scan.class_names, scan.class_counts()) if count == 0]
    if empty:
        raise CannotContinue(
            say(
                "No usable image in class folder(s) {empty} under {root}.\n{summary}\n"
                "What to do: add JPEG or PNG images to each class folder.",
                empty=", ".join(empty),
                root=root,
                summary=scan.summary(),
            )
        )
    return scan


def split_scan(scan: FolderScan, seed: int, fractions=None, keep_duplicates_together=True):
    """A seeded split per class (stratified): each image in exactly one of train/validation/test.

    keep_duplicates_together: copies of the same photo (scan.duplicate_groups) go to one split
    as a whole, so the test split never holds a photo that training has seen. The held-out
    splits then get whole groups, and can be a few images larger than their fraction.
    """
    fractions = fractions or SPLIT_FRACTIONS
    rng = np.random.default_rng(seed)
    together = {}  # path -> the copies of that photo, itself included
    if keep_duplicates_together:
        for group in scan.duplicate_groups:
            for path, _ in group:
                together[path] = sorted(copy for copy, _ in group)
    splits = {name: [] for name in fractions}
    for label, class_name in enumerate(scan.class_names):
        paths = sorted(path for path, image_label in scan.images if image_label == label)
        units = sorted({tuple(together.get(path, [path])) for path in paths})
        if len(units) < len(fractions):
            if len(units) < len(paths):
                too_few = say(
                    "Class '{name}' has {count:,} usable image(s) ({distinct:,} once copies "
                    "count as one): too few to split into {splits}.",
                    name=class_name,
                    count=len(paths),
                    distinct=len(units),
                    splits=", ".join(map(split_name, fractions)),
                )
            else:
                too_few = say(
                    "Class '{name}' has {count:,} usable image(s): too few to split into {splits}.",
                    name=class_name,
                    count=len(paths),
                    splits=", ".join(map(split_name, fractions)),
                )
            raise CannotContinue(
                too_few
                + "\n"
                + say("What to do: add images to {folder}.", folder=scan.root / class_name)
            )
        units = [units[i] for i in rng.permutation(len(units))]
        paths = [path for unit in units for path in unit]
        unit_ends = set(np.cumsum([len(unit) for unit in units]).tolist())
        held_out = {
            name: max(1, round(len(paths) * fraction))
            for name, fraction in fractions.items()
            if name != "train"
        }
        start = 0
        for name in held_out:
            end = min(start + held_out[name], len(paths))
            while end not in unit_ends and end < len(paths):  # never cut a group of copies in two
                end += 1
            splits[name] += [(path, label) for path in paths[start:end]]
            start = end
        if start >= len(paths):
            raise CannotContinue(
                say(
                    "Class '{name}' has too few distinct photos to split: the held-out "
                    "splits took them all, since copies of a photo stay together.\n"
                    "What to do: add different photos to {folder}.",
                    name=class_name,
                    folder=scan.root / class_name,
                )
            )
        splits["train"] += [(path, label) for path in paths[start:]]
    return splits


def check_class_balance(scan: FolderScan, splits: dict) -> list:
    """Warnings a reader should see before training: strong imbalance, tiny held-out sets."""
    warnings = []
    counts = scan.class_counts()
    if max(counts) > IMBALANCE_WARNING_RATIO * min(counts):
        big, small = np.argmax(counts), np.argmin(counts)
        warnings.append(
            say(
                "Classes are imbalanced: '{big}' has {big_count:,} images, '{small}' "
                "{small_count:,} ({ratio:.1f}:1). Accuracy can look good while the small class "
                "is mostly wrong: check per-class recall, or add images to the small class.",
                big=scan.class_names[big],
                big_count=counts[big],
                small=scan.class_names[small],
                small_count=counts[small],
                ratio=counts[big] / counts[small],
            )
        )
    for split, pairs in splits.items():
        per_class = Counter(label for _, label in pairs)
        for label, name in enumerate(scan.class_names):
            if split != "train" and per_class[label] < 5:
                warnings.append(
                    say(
                        "The {split} split has only {count} image(s) of '{name}': its accuracy "
                        "will jump around. More images make it trustworthy.",
                        split=split_name(split),
                        count=per_class[label],
                        name=name,
                    )
                )
    return warnings
