"""benchmarks/speed.py runs end to end and writes every figure it promises.

This is a smoke test, not a speed test: `--quick` uses 32-pixel images and a few dozen
files, so its timings mean nothing and none is compared with a target here. What it checks
is that the benchmark still measures what the README's Performance section reports: both
recipes, both phases, the cache sizes, and peak memory in a fresh process per dataset size.
"""

import importlib.util
import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from conftest import build_notebook_02_model

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ROOT / "benchmarks" / "speed.py"
QUICK_RSS_SIZES = ["24", "96"]  # speed.QUICK["rss_sizes"]
# VGG16 at 32 px: block4_pool is 2 x 2 x 512 values per image, cached as float16.
BLOCK4_BYTES_PER_IMAGE_AT_32_PX = 2 * 2 * 512 * 2


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    path = tmp_path_factory.mktemp("benchmark") / "speed.json"
    finished = subprocess.run(
        [sys.executable, str(BENCHMARK), "--quick", "--json", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    return json.loads(path.read_text()), finished.stdout


def test_json_has_the_keys_the_issue_names(report):
    data, _ = report
    for key in ("phase1_speedup", "phase2_speedup", "extraction_efficiency"):
        assert math.isfinite(data[key]) and data[key] > 0, key
    assert sorted(data["peak_rss_mb"]) == sorted(QUICK_RSS_SIZES)
    assert all(mb > 100 for mb in data["peak_rss_mb"].values())  # TensorFlow alone is more
    machine = data["machine"]
    assert machine["cores"] >= 1 and machine["tensorflow"] and machine["cpu"]
    assert machine["policy"] in {"float32", "mixed_bfloat16", "mixed_float16"}
    assert {"naive", "project"} <= set(data["timings"])


def test_both_recipes_time_both_phases(report):
    data, _ = report
    naive, project = data["timings"]["naive"], data["timings"]["project"]
    for rate in (naive["phase1_fit"], naive["phase2_fit"], project["phase1_extraction"]):
        assert rate["images_per_s"] > 0
    # The naive recipe is timed on whole batches after its warm-up step.
    batch_size = data["settings"]["batch_size"]
    assert naive["phase1_fit"]["timed_images"] == data["settings"]["naive_steps"] * batch_size
    assert len(project["phase1_head"]["epoch_seconds"]) == 10  # notebook 02's EPOCHS
    assert len(project["phase2_epochs"]["epoch_seconds"]) == data["settings"]["fine_tune_epochs"]
    # Every image of train and validation went through the extractor exactly once.
    images = data["images"]
    assert project["phase1_extraction"]["images"] == images["train"] + images["validation"]
    assert project["phase2_caching"]["images"] == sum(images.values())


def test_caches_hold_every_image_and_phase_1_features_stay_small(report):
    data, _ = report
    project = data["timings"]["project"]
    # 512 pooled features per image in float16: 1 KiB, within the issue's 2 KiB.
    assert project["phase1_cache_bytes_per_image"] == 512 * 2
    for size, child in data["rss_children"].items():
        expected_mb = int(size) * BLOCK4_BYTES_PER_IMAGE_AT_32_PX / 2**20
        assert child["block4_cache_mb"] == pytest.approx(expected_mb), size


def test_the_printed_report_labels_the_t4_figures_as_estimates(report):
    _, printed = report
    assert "Colab T4, NOT measured" in printed
    assert "Peak RSS" in printed and "phase 1: 10 epochs" in printed


def layer_summary(model) -> list:
    return [
        (type(layer).__name__, layer.name, tuple(layer.output.shape), layer.count_params())
        for layer in model.layers
    ]


def test_the_benchmark_times_the_model_notebook_02_builds(restore_policy):
    """The benchmark keeps its own copy of the model; it must not drift from the notebook's."""
    keras.mixed_precision.set_global_policy("float32")
    spec = importlib.util.spec_from_file_location("speed", BENCHMARK)
    speed = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(speed)
    assert layer_summary(speed.build_model(32)) == layer_summary(build_notebook_02_model(32))
