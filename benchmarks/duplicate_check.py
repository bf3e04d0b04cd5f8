"""What the duplicate check (tutorial_plumbing/duplicates.py) costs, next to one feature-cache pass.

On N generated JPEGs of cats_vs_dogs-like sizes (about 500 x 375), in two class folders, with
one image in 20 saved again as a smaller, lower-quality copy (so the grouping has work to do):

  scan with the check      scan_image_folder as the notebooks run it: decode, check, hash, group
  scan without the check   the same scan with hashing and grouping replaced by no-ops
  check                    the difference: what the check adds to the scan, wall clock
  hashing, grouping        the scan's own account: hashing summed over images (the scan hashes
                           on several threads at once), grouping wall clock (the hash's
                           candidate pairs, and the pixel check on each of them)

Against: one feature-cache pass, VGG16's convolutional base (weights=None: the same
arithmetic as the ImageNet weights) over the same N images at --image-size, at the precision
choose_precision() picks here. It is an EXTRAPOLATION: a few batches of random images are timed
after a warm-up batch, and the seconds per image are multiplied by N. Decoding and resizing are
left out of the pass, which makes it look cheaper, so the check's share is if anything
overstated.

    python benchmarks/duplicate_check.py --images 3000 --json benchmarks/duplicate_check.json
    python benchmarks/duplicate_check.py --images 60 --image-size 64 --batches 1   # smoke test

Run it on a quiet machine: other work on the cores skews both sides.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tutorial_plumbing import your_images  # noqa: E402
from tutorial_plumbing.duplicates import CopyGroups, Fingerprint, candidate_pairs, group_copies
from tutorial_plumbing.machine import choose_precision
from tutorial_plumbing.your_images import scan_image_folder

SIZES = [(500, 375), (375, 500), (500, 333), (320, 240), (500, 500)]
COPY_EVERY = 20


def write_folder(folder: Path, count: int, seed: int = 0) -> int:
    """`count` smooth, slightly noisy JPEGs in cats/ and dogs/; returns how many are copies."""
    rng = np.random.default_rng(seed)
    copies = 0
    for index in range(count):
        path = folder / ("cats", "dogs")[index % 2] / f"{index:06d}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        if index % COPY_EVERY == COPY_EVERY - 1:  # the image before it in the same class
            with Image.open(path.parent / f"{index - 2:06d}.jpg") as original:
                smaller = original.resize((original.width // 2, original.height // 2))
                smaller.save(path, quality=40)
            copies += 1
            continue
        width, height = SIZES[rng.integers(len(SIZES))]
        coarse = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        smooth = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
        pixels = np.asarray(smooth, np.int16) + rng.integers(-4, 5, (height, width, 1))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(path, quality=90)
    return copies


def timed_scan(folder: Path, with_check: bool):
    """(seconds, scan) of one scan of the folder, with or without the duplicate check."""
    module = your_images
    saved = module.fingerprint_image, module.group_copies
    if not with_check:
        module.fingerprint_image = lambda image, content: Fingerprint("", 0, 255.0)
        module.group_copies = lambda fingerprints: CopyGroups([], [])
    try:
        started = time.perf_counter()
        scan = scan_image_folder(folder)
        return time.perf_counter() - started, scan
    finally:
        module.fingerprint_image, module.group_copies = saved


def vgg16_seconds_per_image(image_size: int, batch_size: int, batches: int) -> float:
    """VGG16's base on random batches: seconds per image after one warm-up batch."""
    keras.mixed_precision.set_global_policy(choose_precision())
    base = keras.applications.VGG16(
        include_top=False, weights=None, input_shape=(image_size, image_size, 3), pooling="avg"
    )
    images = np.random.default_rng(0).uniform(0, 255, (batch_size, image_size, image_size, 3))
    images = tf.constant(images, tf.float32)
    base.predict_on_batch(images)  # warm-up: the first call traces the graph
    started = time.perf_counter()
    for _ in range(batches):
        base.predict_on_batch(images)
    return (time.perf_counter() - started) / (batches * batch_size)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=3000)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--batches", type=int, default=3, help="VGG16 batches timed")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args(argv)
    load_at_start = os.getloadavg()[0]

    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "photos"
        copies = write_folder(folder, args.images)
        timed_scan(folder, with_check=False)  # warm the file cache for both timed scans
        without, _ = timed_scan(folder, with_check=False)
        with_check, scan = timed_scan(folder, with_check=True)
    started = time.perf_counter()
    found = group_copies(scan.fingerprints)
    grouping = time.perf_counter() - started
    candidates = len(candidate_pairs(scan.fingerprints))
    hashing = sum(fingerprint.seconds for fingerprint in scan.fingerprints)
    per_image = vgg16_seconds_per_image(args.image_size, args.batch_size, args.batches)
    feature_pass = per_image * args.images
    check = max(with_check - without, 0.0)
    result = {
        "images": args.images,
        "copies_written": copies,
        "groups_found": len(scan.duplicate_groups),
        "candidate_pairs": candidates,
        "lookalike_pairs": len(found.lookalikes),
        "scan_seconds_with_check": round(with_check, 3),
        "scan_seconds_without_check": round(without, 3),
        "check_seconds": round(check, 3),
        "hashing_seconds_summed_over_images": round(hashing, 3),
        "grouping_seconds": round(grouping, 3),
        "feature_pass": {
            "image_size": args.image_size,
            "policy": keras.mixed_precision.global_policy().name,
            "seconds_per_image": round(per_image, 5),
            "images_timed": args.batches * args.batch_size,
            "extrapolated_seconds": round(feature_pass, 1),
            "note": "extrapolated from the timed batches; decoding and resizing left out",
        },
        "check_share_of_feature_pass": round(check / feature_pass, 4),
        "machine": {
            "cores": len(os.sched_getaffinity(0)),
            "load_average_at_start": round(load_at_start, 2),
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "pillow": Image.__version__,
            "numpy": np.__version__,
        },
    }
    print(f"{args.images} images ({copies} of them copies), {len(scan.duplicate_groups)} groups")
    print(
        f"  candidate pairs (hash): {candidates}, look-alikes told apart: {len(found.lookalikes)}"
    )
    print(f"  scan with the check:    {with_check:.2f} s")
    print(f"  scan without the check: {without:.2f} s")
    print(f"  the check adds:         {check:.2f} s (hashing {hashing:.2f} s summed over images,")
    print(f"                          grouping {grouping:.3f} s)")
    print(
        f"  one feature-cache pass: {feature_pass:.0f} s, EXTRAPOLATED from "
        f"{args.batches * args.batch_size} images at {args.image_size} px "
        f"({per_image * 1000:.0f} ms per image)"
    )
    print(f"  the check is {check / feature_pass:.1%} of that pass")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        print(f"Wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
