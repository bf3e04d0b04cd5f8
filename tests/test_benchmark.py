"""benchmarks/speed.py runs end to end and writes every figure it promises.

This is a smoke test, not a speed test: `--quick` uses 32-pixel images and a few dozen
files, so its timings mean nothing and none is compared with a target here. What it checks
is that the benchmark still measures what the README's Performance section reports: both
recipes, both phases, the cache sizes, the autotuner off and on, and peak memory in a fresh
process per dataset size; and that the README's speed sections are exactly what the
committed results in benchmarks/results/ render (`speed_report.py --check-readme`, no timing).
"""

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import keras
import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARK = ROOT / "benchmarks" / "speed.py"
REPORT = ROOT / "benchmarks" / "speed_report.py"
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
    machine, versions = data["machine"], data["versions"]
    assert machine["cores"] >= 1 and machine["cpu"]
    assert machine["policy"] in {"float32", "mixed_bfloat16", "mixed_float16"}
    assert set(versions) == {"python", "tensorflow", "keras", "numpy"}
    assert versions["keras"] == keras.__version__
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", data["date"])
    assert data["quick"] is True  # a --quick result says so, and the README says it too
    assert {"naive", "project", "without_cache", "autotune"} <= set(data["timings"])


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


def test_the_series_runs_the_frozen_layers_once_per_image(report):
    data, printed = report
    for key in ("series_speedup", "series_ideal_speedup"):
        assert math.isfinite(data[key]) and data[key] > 0, key
    # A property of the path, not a timing: blocks 1 to 4 run once per image for parts 2 to 4.
    assert data["frozen_passes_per_image"] <= 1.05
    assert data["frozen_passes_per_image"] == pytest.approx(1.0)
    series = data["timings"]["series"]
    assert len(series["part2_head"]["epoch_seconds"]) == 10  # notebook 02's EPOCHS
    assert len(series["part3_epochs"]["epoch_seconds"]) == 3
    assert series["seconds"] == pytest.approx(
        series["part2_s"] + series["part3_s"] + series["part4_s"]
    )
    assert f"frozen_passes_per_image {data['frozen_passes_per_image']:.3f}" in printed
    # Where the series' seconds went beyond its ideal adds up to what was measured.
    summary = data["summary"]
    pieces = ("series_ideal_s", "series_gap_fine_tuning_s", "series_gap_other_s")
    assert sum(summary[key] for key in pieces) == pytest.approx(summary["project_series_s"])
    assert summary["series_ideal_s"] > 0 and summary["series_fine_tune_efficiency"] > 0


def test_caches_hold_every_image_and_phase_1_features_stay_small(report):
    data, _ = report
    project = data["timings"]["project"]
    # 512 pooled features per image in float16: 1 KiB, within the issue's 2 KiB.
    assert project["phase1_cache_bytes_per_image"] == 512 * 2
    for size, child in data["rss_children"].items():
        expected_mb = int(size) * BLOCK4_BYTES_PER_IMAGE_AT_32_PX / 2**20
        assert child["block4_cache_mb"] == pytest.approx(expected_mb), size


def test_the_autotuner_is_timed_off_and_on_over_the_same_passes(report):
    data, printed = report
    autotune = data["timings"]["autotune"]
    assert len(autotune["off_s"]) == len(autotune["on_s"]) == autotune["passes"] >= 2
    assert autotune["images"] == data["images"]["train"]
    assert "autotuner off" in printed


def test_the_printed_report_estimates_only_the_machine_it_measured(report):
    _, printed = report
    assert "Peak RSS" in printed and "phase 1: 10 epochs" in printed
    assert "T4" not in printed  # no estimate for hardware it did not measure


@pytest.fixture(scope="module")
def speed():
    """benchmarks/speed_report.py, which imports benchmarks/speed.py beside it."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed_report
    finally:
        sys.path.pop(0)
    return speed_report


def test_readme_speed_sections_are_what_the_committed_results_render():
    """The README's figures come from benchmarks/results/*.json; `--write-readme` fixes this."""
    finished = subprocess.run(
        [sys.executable, str(REPORT), "--check-readme"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert finished.returncode == 0, finished.stdout[-3000:] + finished.stderr[-2000:]


def test_check_readme_fails_on_a_typed_figure_and_write_readme_fixes_it(speed, tmp_path):
    readme = tmp_path / "README.md"
    rendered = speed.README.read_text()
    readme.write_text(rendered.replace("196 KiB per image", "49 KiB per image"))
    assert speed.update_readme(write=False, readme=readme) == 1
    assert speed.update_readme(write=True, readme=readme) == 0
    assert readme.read_text() == rendered


def test_the_cache_sizes_in_the_readme_follow_from_the_layer_shapes(speed):
    cost = " ".join(speed.render_cost().split())  # as one line, whatever the wrapping
    # block4_pool at 224 px is 14 x 14 x 512 values, stored as float16 (2 bytes each).
    block4_bytes = 14 * 14 * 512 * 2
    assert f"{block4_bytes // 1024} KiB per image at 224 pixels" in cost
    assert f"{block4_bytes * 23262 / 2**30:.1f} GiB for all" in cost
    assert "512 pooled features per image (1 KiB in float16)" in cost  # 512 x 2 bytes


def test_a_results_file_renders_with_its_machine_date_and_versions(report, speed, tmp_path):
    data, _ = report
    text = speed.render_run(data, "some-machine.json")
    for value in (data["machine"]["cpu"], data["date"], *data["versions"].values()):
        assert value in text
    assert "benchmarks/results/some-machine.json" in text
    assert "A quick run" in text  # quick numbers are never shown as real ones
    assert "A quick run" not in speed.render_run(data | {"quick": False}, "x.json")
    summary = data["summary"]
    assert f"{summary['series_speedup']:.1f}x |" in text
    assert f"{summary['frozen_passes_per_image']:.2f} times per image" in text
    # A file measured before the series was timed says so, instead of showing no figure.
    older = data | {
        "summary": {
            k: v
            for k, v in summary.items()
            if not k.startswith(("series", "naive_series", "project_series", "frozen"))
        }
    }
    assert "run `python benchmarks/speed.py --save` again" in speed.render_run(older, "x.json")


def test_full_run_estimates_pay_the_frozen_pass_once_and_one_time_work_once(speed):
    """Made-up timings with round numbers: the estimate scales per-image work only."""
    counts = {"train": 80, "validation": 10, "test": 10}
    batch = 8
    naive = {
        "forward_float32": {"images_per_s": 10.0, "warmup_s": 0.9 + 1.0},  # 9 images + 1 s
        "phase1_fit": {"seconds_per_image": 0.1, "warmup_s": 0.8 + 2.0},  # 8 images + 2 s
        "phase2_fit": {"seconds_per_image": 0.2, "warmup_s": 1.6 + 3.0},  # 8 images + 3 s
    }
    gflops = {
        "base_forward": 30.0,
        "to_block4_pool_forward": 27.0,
        "block5_and_head_forward": 3.0,
        "block5_and_head_train_step": 8.0,
    }
    project = {
        "forward_float32": {"images_per_s": 10.0},
        "phase2_caching": {"images_per_s": 20.0},  # the same pass as the store, traced before
        "gflops": gflops,
    }
    without_cache = {phase: naive[phase] for phase in ("phase1_fit", "phase2_fit")}
    series = {
        "store_s": 100 / 20 + 2.0,  # 100 images at 20/s, plus 2 s of tracing
        "pooled_s": 0.9,
        "part2_head": {"warmup_s": 0.5, "steady_epoch_s": 0.09},
        "part3_s": 3.3,  # 0.3 s to reopen the store, then the fit
        "part3_epochs": {"seconds": 3.0, "warmup_s": 1.0, "steady_epoch_s": 1.0},
        "part4_s": 0.1,
    }
    estimate = speed.full_run_cpu_estimate(
        naive, project, without_cache, series, counts, "float32", batch
    )
    full = speed.FULL_RUN_IMAGES
    per_epoch = (full["train"] + full["validation"]) / 90  # images per epoch, full over ours
    assert estimate["project_store_s"] == pytest.approx(sum(full.values()) / 20 + 2.0)
    assert estimate["project_part2_s"] == pytest.approx(
        estimate["project_store_s"] + 0.9 * per_epoch + 0.5 + 10 * 0.09 * per_epoch
    )
    # Part 3 reuses the store: no pass over the images, its one-time work once.
    assert estimate["project_part3_s"] == pytest.approx(0.3 + 1.0 + 5 * per_epoch)
    assert estimate["project_part4_s"] == pytest.approx(0.1 * full["test"] / 10)
    # The usual recipe: every image through the whole base in every epoch, tracing once a part.
    evaluation = full["validation"] * 0.1
    assert estimate["naive_part2_s"] == pytest.approx(10 * (full["train"] * 0.1 + evaluation) + 2)
    assert estimate["naive_part3_s"] == pytest.approx(5 * (full["train"] * 0.2 + evaluation) + 3)
    assert estimate["naive_part4_s"] == pytest.approx(full["test"] * 0.1 + 1)
    assert estimate["series_speedup"] == pytest.approx(
        estimate["naive_series_s"] / estimate["project_series_s"]
    )


def test_the_committed_figures_follow_from_the_committed_timings(speed):
    """What speed_report derives, from each results file's own timings, is what the file says."""
    for path in sorted((ROOT / "benchmarks" / "results").glob("*.json")):
        committed = json.loads(path.read_text())
        derived = speed.add_figures(committed)
        assert derived["summary"] == pytest.approx(committed["summary"]), path.name
        estimate = committed["full_run_estimate_cpu"]
        assert derived["full_run_estimate_cpu"] == pytest.approx(estimate), path.name


def test_the_benchmark_times_the_model_notebook_02_builds(speed):
    """The benchmark builds the model with the function part 2 defines (tutorial_plumbing/model.py,
    which tools/save_lesson_code.py keeps equal to the notebook's cells: test_hygiene)."""
    from tutorial_plumbing import model

    measuring = sys.modules["speed"]  # imported by speed_report
    assert measuring.build_model is model.build_model
    assert measuring.unfreeze_from is model.unfreeze_from
