"""Your own two-class folder: messy files are named, skipped or converted; the folder untouched."""

import hashlib
import io
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from conftest import TINY, notebook_text, run_notebooks
from PIL import Image
from skimage import data as samples

from tutorial_plumbing import your_images
from tutorial_plumbing.data_in import load_two_class_data
from tutorial_plumbing.messages import CannotContinue, use_language
from tutorial_plumbing.your_images import (
    check_class_balance,
    load_image,
    prepare_image_folder,
    scan_image_folder,
    split_scan,
)


def jpeg_bytes(colour=(200, 40, 40), size=(64, 48), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, "JPEG")
    return buffer.getvalue()


def save(path: Path, image: Image.Image, image_format=None, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, image_format, **options)


def write_messy_folder(root: Path) -> dict:
    """Every case a real folder throws at the pipeline; returns what the scan must say of each.

    Returns {"skipped": {relative path: reason start}, "converted": {relative path: note part},
    "litter": [relative paths ignored quietly]}.
    """
    rng = np.random.default_rng(0)
    for index in range(12):  # the good images: enough per class for an 80/10/10 split
        for name, colour in (("cats", (200, 40, 40)), ("dogs", (40, 40, 200))):
            pixels = np.clip(rng.normal(colour, 20, (48, 64, 3)), 0, 255).astype(np.uint8)
            save(root / name / f"{name}_{index:02d}.jpg", Image.fromarray(pixels))
    cats, dogs = root / "cats", root / "dogs"
    skipped = {}

    (cats / "empty.jpg").write_bytes(b"")
    skipped["cats/empty.jpg"] = "empty file"
    (cats / "truncated.jpg").write_bytes(jpeg_bytes()[:300])
    skipped["cats/truncated.jpg"] = "truncated or damaged"
    # Cut off in its pixel data, like a photo whose download stopped: only a reader that
    # accepts truncated images (and fills the rest with grey) would use it.
    whole = io.BytesIO()
    pixels = np.clip(rng.normal((200, 40, 40), 20, (48, 64, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(pixels).save(whole, "JPEG")
    (cats / "half_downloaded.jpg").write_bytes(whole.getvalue()[: len(whole.getvalue()) * 2 // 3])
    skipped["cats/half_downloaded.jpg"] = "truncated or damaged"
    (cats / "garbage.jpg").write_bytes(bytes(rng.integers(0, 256, 500, dtype=np.uint8)))
    skipped["cats/garbage.jpg"] = "not an image"
    (dogs / "notes.txt").write_text("my dog photos, 2024")
    skipped["dogs/notes.txt"] = "not an image"
    save(dogs / "scan.tiff", Image.new("RGB", (20, 20)), "TIFF")
    skipped["dogs/scan.tiff"] = "unsupported format: TIFF"
    save(dogs / "web.webp", Image.new("RGB", (20, 20)), "WEBP")
    skipped["dogs/web.webp"] = "unsupported format: WebP"
    save(dogs / "really_webp.jpg", Image.new("RGB", (20, 20)), "WEBP")  # the extension lies
    skipped["dogs/really_webp.jpg"] = "unsupported format: WebP"
    save(dogs / "phone.avif", Image.new("RGB", (20, 20)), "AVIF")
    skipped["dogs/phone.avif"] = "unsupported format: AVIF"
    (cats / "IMG_0042.HEIC").write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(200))
    skipped["cats/IMG_0042.HEIC"] = "unsupported format: HEIC"
    (root / "labels.csv").write_text("file,label\n")
    skipped["labels.csv"] = "outside the class folders"
    # The same photo in both classes: one of the labels is wrong, so both copies are left out.
    (dogs / "cats_01_in_dogs.jpg").write_bytes((cats / "cats_01.jpg").read_bytes())
    skipped["dogs/cats_01_in_dogs.jpg"] = "label conflict"
    skipped["cats/cats_01.jpg"] = "label conflict"
    (cats / "cats_00_again.jpg").write_bytes((cats / "cats_00.jpg").read_bytes())  # kept
    # Two different faces that look alike (near in the hash), one in each class: both are kept.
    faces = samples.lfw_subset()
    for relative, index in (("cats/face.png", 6), ("dogs/face.png", 65)):
        face = Image.fromarray((faces[index] * 255).round().astype(np.uint8)).convert("RGB")
        save(root / relative, face)

    converted = {}
    save(cats / "gray.jpg", Image.new("L", (40, 30), 128))
    converted["cats/gray.jpg"] = "grayscale"
    save(cats / "transparent.png", Image.new("RGBA", (40, 30), (200, 40, 40, 128)))
    converted["cats/transparent.png"] = "transparent, put on a white background"
    save(dogs / "palette.png", Image.new("RGB", (40, 30), (40, 40, 200)).convert("P"))
    converted["dogs/palette.png"] = "palette colours"
    save(dogs / "print.jpg", Image.new("CMYK", (40, 30), (200, 150, 0, 0)))
    converted["dogs/print.jpg"] = "CMYK colours"
    frames = [Image.new("RGB", (30, 30), (40, 40, 200)), Image.new("RGB", (30, 30), (0, 255, 0))]
    save(dogs / "wag.gif", frames[0], save_all=True, append_images=frames[1:], duration=100)
    converted["dogs/wag.gif"] = "animated (2 frames), the first frame is used"
    deep = np.full((30, 40), 32896, dtype=np.uint16)  # 16-bit mid grey
    save(cats / "deep.png", Image.fromarray(deep))  # mode I;16
    converted["cats/deep.png"] = "16-bit, scaled to 8-bit RGB"
    save(cats / "png_named.jpg", Image.new("RGB", (40, 30), (200, 40, 40)), "PNG")  # fine

    litter = [
        ".DS_Store",
        "cats/.DS_Store",
        "dogs/Thumbs.db",
        "dogs/desktop.ini",
        "cats/._cats_00.jpg",
        "__MACOSX/cats/._cats_01.jpg",
        "cats/.ipynb_checkpoints/cats_00-checkpoint.jpg",
        "dogs/.thumbnails/dogs_00.jpg",
    ]
    for relative in litter:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_bytes(jpeg_bytes() if relative.endswith(".jpg") else b"\x00junk")
    return {"skipped": skipped, "converted": converted, "litter": litter}


def folder_fingerprint(root: Path) -> dict:
    """Every entry under root with its bytes' hash, size and modification time."""
    fingerprint = {}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "dir"
        fingerprint[str(path.relative_to(root))] = (digest, stat.st_size, stat.st_mtime_ns)
    return fingerprint


@pytest.fixture(scope="module")
def messy(tmp_path_factory):
    root = tmp_path_factory.mktemp("messy") / "pets"
    return root, write_messy_folder(root)


@pytest.fixture(scope="module")
def scan(messy):
    """The messy folder scanned once: scanning decodes every file, so the tests share it."""
    root, _ = messy
    return scan_image_folder(root)


def used_paths(scan, root) -> set:
    """The images the scan kept, as paths relative to the folder."""
    return {str(Path(path).relative_to(root)) for path, _ in scan.images}


def test_scan_names_every_unusable_file_with_its_reason(messy, scan):
    root, expected = messy
    reasons = dict(scan.skipped)
    assert set(reasons) == set(expected["skipped"])
    for relative, reason in expected["skipped"].items():
        assert reasons[relative].startswith(reason), (relative, reasons[relative])
    used = used_paths(scan, root)
    assert not used & set(expected["skipped"])


def test_scan_lists_conversions_and_uses_those_images(messy, scan):
    root, expected = messy
    notes = dict(scan.converted)
    assert set(notes) == set(expected["converted"])
    for relative, note in expected["converted"].items():
        assert note in notes[relative], (relative, notes[relative])
    used = used_paths(scan, root)
    assert set(expected["converted"]) <= used
    assert {"cats/png_named.jpg", "cats/face.png", "dogs/face.png"} <= used


def test_os_litter_is_ignored_quietly(messy, scan):
    root, expected = messy
    mentioned = {relative for relative, _ in scan.skipped + scan.converted}
    used = used_paths(scan, root)
    for relative in expected["litter"]:
        assert relative not in mentioned | used, relative
    assert scan.class_names == ["cats", "dogs"]  # __MACOSX is not a third class
    # Litter files directly in the root or a class folder are counted; litter folders
    # (__MACOSX/, .ipynb_checkpoints/, .thumbnails/) are skipped whole.
    assert scan.ignored == 5


def test_summary_counts_what_was_seen_used_skipped_and_converted(messy, scan):
    root, expected = messy
    summary = scan.summary()
    seen = len(scan.images) + len(expected["skipped"])
    assert (
        f"files seen: {seen} | used: {len(scan.images)} | skipped: {len(scan.skipped)}" in summary
    )
    assert f"converted: {len(expected['converted'])}" in summary
    assert "unsupported format: 5" in summary  # TIFF, WebP twice, AVIF, HEIC
    assert "Skipped: cats/truncated.jpg (truncated or damaged" in summary
    # One reason for two files: one line that counts them, then their names.
    webp = "Skipped (unsupported format: WebP (convert it to JPEG or PNG)): 2 files\n"
    assert webp + "    dogs/really_webp.jpg, dogs/web.webp" in summary
    for relative in expected["skipped"]:
        assert relative in summary, f"every file left out is named: {relative}"


def test_a_repeated_note_is_one_line_that_counts_and_every_skipped_file_is_named(tmp_path):
    """200 grey photos make one line, not 200; 30 empty files are still named, each of them."""
    root = tmp_path / "faces"
    rng = np.random.default_rng(5)
    for index in range(200):
        pixels = rng.integers(0, 256, size=(16, 16), dtype=np.uint8)
        save(root / ("faces", "other")[index % 2] / f"{index:03d}.png", Image.fromarray(pixels))
    empty = [f"other/empty_{index:02d}.jpg" for index in range(30)]
    for relative in empty:
        (root / relative).write_bytes(b"")
    summary = scan_image_folder(root).summary()
    converted = [line for line in summary.splitlines() if "Converted" in line]
    assert converted == [
        "  Converted (grayscale, converted to RGB): 200 files, such as faces/000.png, "
        "faces/002.png, faces/004.png and 197 more"
    ]
    assert "  Skipped (empty file (0 bytes)): 30 files" in summary
    for relative in empty:
        assert relative in summary


def test_every_used_image_reads_as_rgb_of_the_right_size(messy):
    root, _ = messy
    data = load_two_class_data(str(root), seed=0)
    total = 0
    for split in ("train", "validation", "test"):
        for images, labels in data.batches(split, 32, 8):
            assert images.shape[1:] == (32, 32, 3)
            pixels = images.numpy()
            assert 0 <= pixels.min() and pixels.max() <= 255
            assert pixels.max() > 100, "pixels must stay 0-255 (VGG16's preprocessing expects it)"
            total += len(labels)
    assert total == len(data.scan.images)
    deep = load_image(root / "cats" / "deep.png")
    assert deep.shape == (30, 40, 3) and abs(int(deep.mean()) - 128) <= 1  # not clipped to white
    gif = load_image(root / "dogs" / "wag.gif")
    assert tuple(gif[0, 0]) == (40, 40, 200)  # the first frame, not the green one
    transparent = load_image(root / "cats" / "transparent.png")
    assert tuple(transparent[0, 0]) == (227, 147, 147)  # half red over white


def test_split_is_seeded_stratified_and_without_overlap(scan):
    splits = split_scan(scan, seed=3)
    paths = {name: {path for path, _ in pairs} for name, pairs in splits.items()}
    assert not paths["train"] & paths["validation"]
    assert not paths["train"] & paths["test"]
    assert not paths["validation"] & paths["test"]
    assert set.union(*paths.values()) == {path for path, _ in scan.images}
    for name in ("validation", "test"):
        assert {label for _, label in splits[name]} == {0, 1}, "both classes in each split"
    assert split_scan(scan, seed=3) == splits
    assert split_scan(scan, seed=4) != splits


def test_reading_the_folder_changes_nothing_in_it(messy):
    root, _ = messy
    before = folder_fingerprint(root)
    data = load_two_class_data(str(root), seed=0)
    for _ in data.batches("train", 32, 8):
        pass
    assert folder_fingerprint(root) == before


def test_notebook_01_runs_on_the_messy_folder_and_leaves_it_as_it_was(messy, tmp_path):
    root, expected = messy
    before = folder_fingerprint(root)
    executed = run_notebooks(tmp_path / "run", ["01"], dict(TINY, DATA_DIR=str(root)))
    text = notebook_text(executed["01"])
    assert f"Scanned {root}" in text
    assert "Skipped (unsupported format: WebP (convert it to JPEG or PNG)): 2 files" in text
    assert "dogs/really_webp.jpg, dogs/web.webp" in text
    assert "Converted: dogs/print.jpg (CMYK colours, converted to RGB)" in text
    assert "groups spanning both classes (label conflicts): 1" in text
    assert "group 2 (byte-identical, LABEL CONFLICT): cats/cats_01.jpg (cats, left out)" in text
    assert "Label conflict 1 of 1: 2 copies, both classes" in text  # shown side by side
    assert "Look-alikes across the classes: 1 pair(s), kept" in text  # the two faces
    assert folder_fingerprint(root) == before


def make_class_folders(root: Path, names, per_class=3) -> Path:
    """Class folders of distinct images (copies of one image would be grouped as one photo)."""
    for name in names:
        (root / name).mkdir(parents=True)
        rng = np.random.default_rng(zlib.crc32(name.encode()))
        for index in range(per_class):
            pixels = rng.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
            save(root / name / f"{index}.jpg", Image.fromarray(pixels))
    return root


def test_not_two_class_folders_lists_what_was_found_and_the_layout(tmp_path):
    root = make_class_folders(tmp_path / "three", ["cats", "dogs", "birds"])
    with pytest.raises(CannotContinue) as error:
        scan_image_folder(root)
    message = str(error.value)
    assert (
        "Expected exactly 2 class folders" in message and "found 3: birds/, cats/, dogs/" in message
    )
    assert "<class_a>/" in message and "<class_b>/" in message
    one = make_class_folders(tmp_path / "one", ["cats"])
    with pytest.raises(CannotContinue, match="found 1: cats/"):
        scan_image_folder(one)


def test_a_class_without_usable_images_or_too_small_to_split_stops_with_a_message(tmp_path):
    root = make_class_folders(tmp_path / "bad", ["cats", "dogs"])
    for path in (root / "dogs").iterdir():
        path.write_bytes(b"")
    with pytest.raises(CannotContinue, match="No usable image in class folder"):
        scan_image_folder(root)
    small = make_class_folders(tmp_path / "small", ["cats", "dogs"], per_class=2)
    scan = scan_image_folder(small)
    with pytest.raises(CannotContinue, match="Class 'cats' has 2 usable image"):
        split_scan(scan, seed=0)


def test_imbalance_and_tiny_held_out_splits_are_warned(tmp_path):
    root = tmp_path / "imbalanced"
    make_class_folders(root, ["cats"], per_class=40)
    make_class_folders(root, ["dogs"], per_class=10)
    scan = scan_image_folder(root)
    warnings = check_class_balance(scan, split_scan(scan, seed=0))
    assert any("imbalanced: 'cats' has 40 images, 'dogs' 10 (4.0:1)" in w for w in warnings)
    assert any("validation split has only 1 image(s) of 'dogs'" in w for w in warnings)
    balanced = make_class_folders(tmp_path / "balanced", ["cats", "dogs"], per_class=60)
    scan = scan_image_folder(balanced)
    assert check_class_balance(scan, split_scan(scan, seed=0)) == []


def zip_folder(folder: Path, zip_path: Path, top: str | None) -> Path:
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            relative = path.relative_to(folder)
            archive.write(path, str(Path(top) / relative) if top else str(relative))
    return zip_path


@pytest.mark.parametrize("top", [None, "pets"], ids=["flat", "one-top-folder"])
def test_zip_is_unpacked_outside_the_users_folder_and_reused(messy, tmp_path, monkeypatch, top):
    root, expected = messy
    monkeypatch.setattr(your_images, "SCRATCH_DIR", tmp_path / "scratch")
    archive = zip_folder(root, tmp_path / "pets.zip", top)
    archive_bytes = archive.read_bytes()
    folder = prepare_image_folder(str(archive))
    assert folder.is_relative_to(tmp_path / "scratch")
    scan = scan_image_folder(folder)
    assert scan.class_names == ["cats", "dogs"]
    assert dict(scan.skipped).keys() == expected["skipped"].keys()
    assert not (folder / "__MACOSX").exists()
    assert prepare_image_folder(str(archive)) == folder  # unpacked once
    assert archive.read_bytes() == archive_bytes


def test_zip_on_google_drive_is_copied_to_local_disk_first(messy, tmp_path, monkeypatch, capsys):
    root, _ = messy
    drive = tmp_path / "drive"
    drive.mkdir()
    monkeypatch.setattr(your_images, "GOOGLE_DRIVE", str(drive))
    monkeypatch.setattr(your_images, "SCRATCH_DIR", tmp_path / "scratch")
    archive = zip_folder(root, drive / "pets.zip", "pets")
    folder = prepare_image_folder(str(archive))
    assert "Copying pets.zip from Google Drive to local disk" in capsys.readouterr().out
    assert scan_image_folder(folder).class_names == ["cats", "dogs"]
    assert sorted(p.name for p in drive.iterdir()) == ["pets.zip"]


def test_bad_data_dir_says_what_is_wrong(tmp_path):
    with pytest.raises(CannotContinue, match="DATA_DIR does not exist"):
        prepare_image_folder(str(tmp_path / "nowhere"))
    not_zip = tmp_path / "photos.rar"
    not_zip.write_bytes(b"Rar!")
    with pytest.raises(CannotContinue, match="not a .zip"):
        prepare_image_folder(str(not_zip))
    with pytest.raises(CannotContinue, match="works in Colab only"):
        prepare_image_folder("upload")


def test_a_portuguese_summary_counts_each_kind_of_skip_once(messy):
    """Reasons carry details (Pillow's own words, the format's name): the count by reason
    counts kinds, in English and in Portuguese alike."""
    root, expected = messy
    damaged = sum(reason == "truncated or damaged" for reason in expected["skipped"].values())
    use_language("pt-BR")
    try:
        summary = scan_image_folder(root).summary()
    finally:
        use_language("en")
    (line,) = [line for line in summary.splitlines() if "pulados por motivo" in line]
    counts = line.split("pulados por motivo: ")[1].split(", ")
    assert f"truncado ou danificado: {damaged}" in counts
    assert "Pillow" not in line
    assert "Pasta verificada" in summary
