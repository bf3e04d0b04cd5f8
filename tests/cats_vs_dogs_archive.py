"""A small cats_vs_dogs archive in the real one's layout, where TFDS's download manager finds it.

TFDS's cats_vs_dogs builder (tensorflow_datasets/image_classification/cats_vs_dogs.py, TFDS
4.9.10, version 4.0.1 of the dataset) downloads kagglecatsanddogs_5340.zip and reads it
with `dl_manager.iter_archive`. Its `_generate_examples` keeps the files named
`PetImages/Cat/<number>.jpg` and `PetImages/Dog/<number>.jpg`, skips everything else (the
licence, a readme, Windows' Thumbs.db), skips every .jpg without "JFIF" in its first 10 bytes
(1,738 in the real archive: empty files, other formats, JPEGs with an Exif header only), and
stops with an error unless it skipped exactly 1,738. The label is the folder: cat 0, dog 1.

This archive has the same layout: the licence and readme at the top, Thumbs.db in both class
folders, exactly 1,738 files that the JFIF check must skip, and a few dozen real JPEGs per
class. Cats are reddish and dogs bluish, so a model can learn them and a swapped label shows.

The archive is put where TFDS keeps a finished download: under downloads/ in TFDS's data folder,
named as TFDS names the file of that URL and checksum, with the .INFO file TFDS writes next to
it. TFDS's download manager then skips the download and reads the archive; everything after
that (reading the zip, the filter, the labels, recoding, writing the dataset) is TFDS's own
code, unchanged. Only our own check that download.microsoft.com answers needs the network:
`PRETEND_HOST_ANSWERS` stubs that one check.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

CORRUPT_IN_REAL_ARCHIVE = 1738  # tensorflow_datasets/image_classification/cats_vs_dogs.py
URL = (
    "https://download.microsoft.com/download/3/E/1/"
    "3E1C3F21-ECDB-4869-8368-6DEBA77B919F/kagglecatsanddogs_5340.zip"
)
COLOURS = {"Cat": 0, "Dog": 2}  # the channel raised: cats red, dogs blue
PER_CLASS = 60  # real JPEGs per class


def jpeg_bytes(rng, channel: int) -> bytes:
    height, width = rng.integers(40, 90, size=2)
    pixels = rng.integers(0, 90, size=(height, width, 3))
    pixels[..., channel] += 150
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8)).save(buffer, format="JPEG", quality=90)
    return buffer.getvalue()  # Pillow writes a JFIF header (APP0) after the start marker


def without_jfif(jpeg: bytes) -> bytes:
    """The same picture without its JFIF segment, as cameras write JPEGs with only Exif."""
    assert jpeg[2:4] == b"\xff\xe0" and jpeg[6:10] == b"JFIF"
    length = int.from_bytes(jpeg[4:6], "big")
    return jpeg[:2] + jpeg[4 + length :]


def corrupt_files(rng, count: int):
    """`count` .jpg contents that TFDS's JFIF check skips, of the kinds the real archive has."""
    png = io.BytesIO()
    Image.new("RGB", (30, 20), (120, 120, 120)).save(png, format="PNG")
    kinds = [
        lambda: b"",  # an empty file (the real archive has one)
        lambda: without_jfif(jpeg_bytes(rng, 1)),  # a JPEG without JFIF
        lambda: png.getvalue(),  # another format with a .jpg name
        lambda: b"GIF89a" + bytes(rng.integers(0, 256, 40, dtype=np.uint8)),
        lambda: bytes(rng.integers(0, 256, 64, dtype=np.uint8)),  # garbage
    ]
    for index in range(count):
        yield kinds[index % len(kinds)]()


def write_archive(path: Path, per_class: int = PER_CLASS, seed: int = 0) -> dict:
    """Write the archive; {"Cat": [file names kept], "Dog": [...], "skipped": n}."""
    rng = np.random.default_rng(seed)
    kept = {"Cat": [], "Dog": []}
    corrupt = corrupt_files(rng, CORRUPT_IN_REAL_ARCHIVE)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("CDLA-Permissive-2.0.pdf", b"%PDF-1.4 licence text")
        archive.writestr("readme[1].txt", "Cats and dogs, a test copy.\n")
        number = 0
        for folder in ("Cat", "Dog"):
            archive.writestr(f"PetImages/{folder}/Thumbs.db", b"\xd0\xcf\x11\xe0 thumbnails")
            share = CORRUPT_IN_REAL_ARCHIVE // 2 + (folder == "Cat") * (CORRUPT_IN_REAL_ARCHIVE % 2)
            for _ in range(share):
                archive.writestr(f"PetImages/{folder}/{number}.jpg", next(corrupt))
                number += 1
            for _ in range(per_class):
                name = f"PetImages/{folder}/{number}.jpg"
                archive.writestr(name, jpeg_bytes(rng, COLOURS[folder]))
                kept[folder].append(name)
                number += 1
    return {**kept, "skipped": CORRUPT_IN_REAL_ARCHIVE}


def put_in_tfds_download_cache(archive: Path, data_dir: Path) -> Path:
    """Place `archive` where TFDS keeps its finished download of cats_vs_dogs; return the path."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.core.download import checksums, resource

    builder = tfds.builder("cats_vs_dogs", data_dir=str(data_dir))
    manager = builder._make_download_manager(None, tfds.download.DownloadConfig())
    registered = checksums.get_all_url_infos()[URL]  # size and sha256 of the real archive
    target = Path(manager._get_dl_path(resource.Resource(url=URL), registered.checksum))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(Path(archive).read_bytes())
    resource.write_info_file(
        url=URL,
        path=target,
        dataset_name=builder.info.full_name,
        original_fname=registered.filename,
        url_info=registered,
    )
    return target


# Kernel start-up code: our reachability check (socket.create_connection to the download host)
# succeeds; any other connection, and any real download, still fails (no network).
PRETEND_HOST_ANSWERS = """
import socket

_create_connection = socket.create_connection


class _Answered:
    def close(self):
        pass


def _pretend(address, *args, **kwargs):
    if address[0] == "download.microsoft.com":
        return _Answered()
    return _create_connection(address, *args, **kwargs)


socket.create_connection = _pretend
"""
