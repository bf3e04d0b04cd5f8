"""The figures of a speed.py run, its printed report, and the README's speed sections.

benchmarks/speed.py measures; this module only computes from what it measured: the speedups,
the gap to the ideal, the estimates for all of cats_vs_dogs, the report it prints, and the
README's speed sections, rendered from the results files committed in benchmarks/results/,
never typed:

    python benchmarks/speed_report.py --write-readme  # README.md's speed sections from the files
    python benchmarks/speed_report.py --check-readme  # exit 1, with a diff, if README.md differs
"""

import argparse
import difflib
import json
import sys
import textwrap
from pathlib import Path

import numpy as np
from speed import (
    CACHED_LAYER,
    FULL_RUN_FINE_TUNE_EPOCHS,
    FULL_RUN_IMAGES,
    HEAD_EPOCHS,
    RESULTS_DIR,
    SERIES_FINE_TUNE_EPOCHS,
    build_model,
    vgg16_gflops,
)

README = Path(__file__).resolve().parents[1] / "README.md"


def images_in_seconds(fits, forward_images_per_s, counts) -> dict:
    """Seconds of a recipe that takes images in: an epoch of each phase, and the test split.

    `fits` holds the measured fit costs per image ({phase}_fit); validation and test images
    are evaluated at `forward_images_per_s`.
    """
    evaluate = 1 / forward_images_per_s  # s per evaluated image
    epochs = {
        f"{phase}_epoch": counts["train"] * fits[f"{phase}_fit"]["seconds_per_image"]
        + counts["validation"] * evaluate
        for phase in ("phase1", "phase2")
    }
    return epochs | {"test": counts["test"] * evaluate}


def summarize(naive, project, counts, policy) -> dict:
    """Speedups at this run's image counts, and the efficiency of the extraction pipeline."""
    usual = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], counts)
    naive_p1_epoch, naive_p2_epoch = usual["phase1_epoch"], usual["phase2_epoch"]
    project_p1 = project["phase1_extraction"]["seconds"] + project["phase1_head"]["seconds"]
    p2 = project["phase2_epochs"]
    epochs = len(p2["epoch_seconds"])
    naive_p2_run = epochs * naive_p2_epoch + usual["test"]
    project_p2_run = (
        project["phase2_caching"]["seconds"]
        + sum(p2["epoch_seconds"])
        + project["phase2_test_evaluation_s"]
    )
    extraction = project["phase1_extraction"]["images_per_s"]
    return {
        "naive_phase1_s": HEAD_EPOCHS * naive_p1_epoch,
        "project_phase1_s": project_p1,
        "phase1_speedup": HEAD_EPOCHS * naive_p1_epoch / project_p1,
        "naive_phase2_epoch_s": naive_p2_epoch,
        "project_phase2_epoch_s": p2["steady_epoch_s"],
        "phase2_speedup": naive_p2_epoch / p2["steady_epoch_s"],
        "phase2_run_epochs": epochs,
        "naive_phase2_run_s": naive_p2_run,
        "project_phase2_run_s": project_p2_run,
        "phase2_speedup_amortised": naive_p2_run / project_p2_run,
        "extraction_efficiency": extraction / project[f"forward_{policy}"]["images_per_s"],
    }


def usual_tracing_s(naive, batch_size: int) -> dict:
    """Seconds the usual recipe spends once per notebook, tracing: its warm-ups less their work.

    Part 2's fit and part 3's fit each trace a training step (the warm-up fit of one batch,
    less that batch at the measured rate); part 4 traces its predictions (forward_rate's
    warm-up of a full and a one-image batch, less those images at the forward rate).
    """
    fit = {
        phase: naive[f"{phase}_fit"]["warmup_s"]
        - batch_size * naive[f"{phase}_fit"]["seconds_per_image"]
        for phase in ("phase1", "phase2")
    }
    forward = naive["forward_float32"]
    predict = forward["warmup_s"] - (batch_size + 1) / forward["images_per_s"]
    return {"part2": fit["phase1"], "part3": fit["phase2"], "part4": predict}


def series_gflops(counts, fine_tune_epochs, g) -> tuple:
    """(usual, series) GFLOPs for parts 2 to 4 on `counts` images: see series_figures."""
    n_train, n_val, n_test = counts["train"], counts["validation"], counts["test"]
    base, to_block4 = g["base_forward"], g["to_block4_pool_forward"]
    block5, block5_train = g["block5_and_head_forward"], g["block5_and_head_train_step"]
    usual = (
        HEAD_EPOCHS * (n_train + n_val) * base
        + fine_tune_epochs * (n_train * (to_block4 + block5_train) + n_val * base)
        + n_test * base
    )
    series = (
        (n_train + n_val + n_test) * to_block4
        + (n_train + n_val) * block5
        + fine_tune_epochs * (n_train * block5_train + n_val * block5)
        + n_test * block5
    )
    return usual, series


def series_figures(naive, project, series, counts, policy, batch_size) -> dict:
    """The series (parts 2 to 4) against the usual recipe: measured, and ideal from FLOPs.

    The usual recipe's seconds are its measured per-image fit costs and float32 forward rate
    times the images and epochs of each part: HEAD_EPOCHS epochs of part 2 (train fitted,
    validation evaluated), SERIES_FINE_TUNE_EPOCHS of part 3, and the test split's predictions;
    plus its tracing, once per part (usual_tracing_s), since the series is timed whole,
    tracing included.

    The ideal speedup counts only the arithmetic each path must do, in GFLOPs (vgg16_gflops),
    at the measured forward rate of the precision it runs at: seconds per GFLOP is
    1 / (forward images/s x base_forward GFLOPs). With N = train + validation + test images,
    E2 = HEAD_EPOCHS, E3 = SERIES_FINE_TUNE_EPOCHS and base = VGG16's base forward:
      usual  = E2 (train + val) base                          part 2: the frozen base, every epoch
             + E3 (train (to_block4 + block5_train) + val base)   part 3: forward + backward
             + test base                                      part 4
      series = N to_block4                                    one frozen pass per image
             + (train + val) block5_forward                   part 2: pooled features, once
             + E3 (train block5_train + val block5_forward)   part 3: block5 + head only
             + test block5_forward                            part 4
    (the head's own cost, under a millionth of the base's, is left out of both), and
    series_ideal_speedup = usual x float32 s/GFLOP / (series x the chosen policy's s/GFLOP).

    Where the series falls short of its ideal seconds: part 3's training steps, which may
    run below the forward rate per GFLOP (series_fine_tune_efficiency: the ideal seconds of a
    part-3 epoch over its measured steady seconds), and the rest, mostly one-time work such as
    tracing each model, which does not grow with the number of images.
    """
    n_train, n_val = counts["train"], counts["validation"]
    usual = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], counts)
    tracing = usual_tracing_s(naive, batch_size)
    usual_s = (
        HEAD_EPOCHS * usual["phase1_epoch"]
        + SERIES_FINE_TUNE_EPOCHS * usual["phase2_epoch"]
        + usual["test"]
        + sum(tracing.values())
    )
    g = project["gflops"]
    usual_gflops, ideal_gflops = series_gflops(counts, SERIES_FINE_TUNE_EPOCHS, g)
    float32_s_per_gflop = 1 / (naive["forward_float32"]["images_per_s"] * g["base_forward"])
    chosen_s_per_gflop = 1 / (project[f"forward_{policy}"]["images_per_s"] * g["base_forward"])
    ideal_s = ideal_gflops * chosen_s_per_gflop
    ideal_epoch_s = (
        n_train * g["block5_and_head_train_step"] + n_val * g["block5_and_head_forward"]
    ) * chosen_s_per_gflop
    steady_epoch_s = series["part3_epochs"]["steady_epoch_s"]
    fine_tuning_gap = SERIES_FINE_TUNE_EPOCHS * (steady_epoch_s - ideal_epoch_s)
    return {
        "naive_series_s": usual_s,
        "naive_series_tracing_s": sum(tracing.values()),
        "project_series_s": series["seconds"],
        "series_speedup": usual_s / series["seconds"],
        "series_ideal_speedup": usual_gflops * float32_s_per_gflop / ideal_s,
        "series_ideal_s": ideal_s,
        "series_fine_tune_efficiency": ideal_epoch_s / steady_epoch_s,
        "series_gap_fine_tuning_s": fine_tuning_gap,
        "series_gap_other_s": series["seconds"] - ideal_s - fine_tuning_gap,
        "frozen_passes_per_image": series["frozen_passes_per_image"],
    }


def full_run_cpu_estimate(naive, project, without_cache, series, counts, policy, batch) -> dict:
    """Seconds for parts 2 to 4 on all of cats_vs_dogs, scaled from this run's measurements.

    The usual recipe: its per-image costs times the full run's images and epochs, plus its
    tracing once per part. The notebooks: the series' store pass and pooled-feature pass per
    image, its steady epochs per image, its part-4 predictions per test image, and its
    one-time work (tracing, the fingerprint, reopening the store) once.
    """
    full = FULL_RUN_IMAGES
    fitted = full["train"] + full["validation"]  # images per epoch, as in this run's split
    scale = fitted / (counts["train"] + counts["validation"])
    naive_full = images_in_seconds(naive, naive["forward_float32"]["images_per_s"], full)
    tracing = usual_tracing_s(naive, batch)
    usual = {
        "part2": HEAD_EPOCHS * naive_full["phase1_epoch"] + tracing["part2"],
        "part3": FULL_RUN_FINE_TUNE_EPOCHS * naive_full["phase2_epoch"] + tracing["part3"],
        "part4": naive_full["test"] + tracing["part4"],
    }
    # Without the cache, validation passes run the whole model at the chosen precision.
    uncached = images_in_seconds(without_cache, project[f"forward_{policy}"]["images_per_s"], full)
    head, fine_tuning = series["part2_head"], series["part3_epochs"]
    # The store's pass per image at the rate of the same pass traced beforehand (phase 2's
    # caching); what the series' store took beyond that (tracing, the fingerprint) is one-time.
    store_rate = project["phase2_caching"]["images_per_s"]
    store_once = max(0.0, series["store_s"] - sum(counts.values()) / store_rate)
    store = sum(full.values()) / store_rate + store_once
    epoch = fine_tuning["steady_epoch_s"] * scale
    notebooks = {
        "part2": store
        + series["pooled_s"] * scale  # its tracing scaled too: a little pessimistic
        + head["warmup_s"]
        + HEAD_EPOCHS * head["steady_epoch_s"] * scale,
        "part3": series["part3_s"]
        - fine_tuning["seconds"]
        + fine_tuning["warmup_s"]
        + FULL_RUN_FINE_TUNE_EPOCHS * epoch,
        "part4": series["part4_s"] * full["test"] / counts["test"],
    }
    usual_gflops, ideal_gflops = series_gflops(full, FULL_RUN_FINE_TUNE_EPOCHS, project["gflops"])
    ideal_speedup = (usual_gflops / naive["forward_float32"]["images_per_s"]) / (
        ideal_gflops / project[f"forward_{policy}"]["images_per_s"]
    )
    return {
        **{f"naive_{part}_s": seconds for part, seconds in usual.items()},
        **{f"project_{part}_s": seconds for part, seconds in notebooks.items()},
        "naive_series_s": sum(usual.values()),
        "project_series_s": sum(notebooks.values()),
        "project_store_s": store,
        "project_part3_epoch_s": epoch,
        "series_speedup": sum(usual.values()) / sum(notebooks.values()),
        "series_ideal_speedup": ideal_speedup,
        "without_cache_phase1_epoch_s": uncached["phase1_epoch"],
        "without_cache_phase2_epoch_s": uncached["phase2_epoch"],
    }


def print_report(report) -> None:
    s, m, t = report["settings"], report["machine"], report["timings"]
    naive, project, summary = t["naive"], t["project"], report["summary"]
    counts, policy = report["images"], m["policy"]
    print(
        f"\nVGG16 at {s['image_size']} px, batch {s['batch_size']}: {sum(counts.values())} "
        f"synthetic JPEGs (~{report['jpeg_kib']:.0f} KiB each): train {counts['train']}, "
        f"validation {counts['validation']}, test {counts['test']}"
    )
    print(
        f"{m['cpu']}, {m['cores']} cores, bf16 in hardware: {m['bfloat16_in_hardware']}, "
        f"TF {report['versions']['tensorflow']}, Keras {report['versions']['keras']}, "
        f"policy {policy}, "
        f"load average {m['load_average_at_start']} at start, {report['load_average_at_end']} "
        "at end"
    )
    print_rates(naive, project, t["without_cache"], summary, policy)
    autotune = t["autotune"]
    print(
        f"\nA pass over the training pipeline ({autotune['images']} images), seconds: "
        f"autotuner off {fmt_seconds(autotune['off_s'])}, on {fmt_seconds(autotune['on_s'])}"
    )
    print_phases(summary, naive, project)
    print_series(summary, t["series"])
    print_estimates(report)
    print("\nPeak RSS (ru_maxrss) by dataset size, a fresh process each")
    for images, child in report["rss_children"].items():
        print(
            f"  {images:>6} images: peak {child['peak_rss_mb']:.0f} MB, now "
            f"{child['rss_after_phase2_mb']:.0f} MB; block4 cache on disk "
            f"{child['block4_cache_mb']:.0f} MB"
        )


def fmt_seconds(values) -> str:
    """[1.0, 2.0, 3.0] -> '1.00, 2.00 and 3.00'."""
    texts = [f"{value:.2f}" for value in values]
    return " and ".join([", ".join(texts[:-1]), texts[-1]] if len(texts) > 1 else texts)


def print_rates(naive, project, without_cache, summary, policy) -> None:
    rows = [
        ("bare forward, float32, in-memory batch", naive["forward_float32"]),
        (f"bare forward, {policy}, in-memory batch", project[f"forward_{policy}"]),
        ("input pipeline alone (read, decode, resize)", project["pipeline_alone"]),
        ("cache_features on that pipeline (phase 1)", project["phase1_extraction"]),
        ("cache_features to block4_pool files (phase 2)", project["phase2_caching"]),
        ("naive phase 1: fit, images in, float32", naive["phase1_fit"]),
        ("naive phase 2: fit, images in, float32", naive["phase2_fit"]),
        ("block4 cache read by cached_batches alone", project["phase2_cache_reading_alone"]),
        ("project phase 2: an epoch on the cache", project["phase2_epochs"]),
        (f"no cache, phase 1: fit, images in, {policy}", without_cache["phase1_fit"]),
        (f"no cache, phase 2: fit, images in, {policy}", without_cache["phase2_fit"]),
    ]
    print(f"\n{'Rates':<50}{'images/s':>10}{'busy cores':>12}{'others':>8}")
    for label, rate in rows:
        print(
            f"  {label:<48}{rate['images_per_s']:>10.2f}{rate['busy_cores']:>12.2f}"
            f"{rate['other_cores']:>8.2f}"
        )
    disturbed = max(rate["other_cores"] for _, rate in rows)
    if disturbed > 0.2:
        print(
            f"  WARNING: other processes kept up to {disturbed:.1f} cores busy during these "
            "timings: measure again on a quiet machine."
        )
    print(f"  extraction_efficiency = {summary['extraction_efficiency']:.2f}")
    gflops = project["gflops"]
    print(
        f"  GFLOPs per image: base forward {gflops['base_forward']:.2f}, to block4_pool "
        f"{gflops['to_block4_pool_forward']:.2f}, block5+head forward "
        f"{gflops['block5_and_head_forward']:.2f}, block5+head train step "
        f"{gflops['block5_and_head_train_step']:.2f}"
    )


def print_phases(summary, naive, project) -> None:
    p1, p2 = naive["phase1_fit"], naive["phase2_fit"]
    print(f"\n{'Seconds for this run':<50}{'naive':>10}{'project':>10}{'speedup':>10}")
    rows = [
        (f"phase 1: {HEAD_EPOCHS} epochs", "phase1"),
        ("phase 2: one epoch (steady)", "phase2_epoch"),
        (f"phase 2: {summary['phase2_run_epochs']} epochs + caching + test", "phase2_run"),
    ]
    speedups = ["phase1_speedup", "phase2_speedup", "phase2_speedup_amortised"]
    for (label, key), speedup in zip(rows, speedups):
        naive_s, project_s = summary[f"naive_{key}_s"], summary[f"project_{key}_s"]
        print(f"  {label:<48}{naive_s:>10.1f}{project_s:>10.1f}{summary[speedup]:>10.1f}")
    print(
        f"  naive: measured s/image x images x epochs; timed on {p1['timed_images']} images per "
        f"phase after warm-ups of {p1['warmup_s']:.1f} s and {p2['warmup_s']:.1f} s (excluded)"
    )
    print(
        f"  project: phase 1 = extraction {project['phase1_extraction']['seconds']:.1f} s + head "
        f"{project['phase1_head']['seconds']:.1f} s; phase 2 caching "
        f"{project['phase2_caching']['seconds']:.1f} s (one time), first epoch traces "
        f"{project['phase2_epochs']['warmup_s']:.1f} s extra"
    )


def print_series(summary, series) -> None:
    print(
        f"\nThe series, parts 2 to 4 ({HEAD_EPOCHS} head epochs, {SERIES_FINE_TUNE_EPOCHS} "
        "fine-tuning epochs, test predictions), seconds"
    )
    print(
        f"  usual recipe {summary['naive_series_s']:.1f}, with the frozen store "
        f"{summary['project_series_s']:.1f} (part 2 {series['part2_s']:.1f}, part 3 "
        f"{series['part3_s']:.1f}, part 4 {series['part4_s']:.1f})"
    )
    print(
        f"  series_speedup {summary['series_speedup']:.2f}, series_ideal_speedup "
        f"{summary['series_ideal_speedup']:.2f} (ratio "
        f"{summary['series_speedup'] / summary['series_ideal_speedup']:.2f}), "
        f"frozen_passes_per_image {summary['frozen_passes_per_image']:.3f}"
    )
    print(
        f"  usual recipe's tracing (counted once per part): "
        f"{summary['naive_series_tracing_s']:.1f}; series pieces: store {series['store_s']:.1f}, "
        f"pooled features {series['pooled_s']:.1f}, head {series['part2_head']['seconds']:.1f}"
    )
    print(
        f"  short of the ideal {summary['series_ideal_s']:.1f} s by "
        f"{summary['project_series_s'] - summary['series_ideal_s']:.1f} s: part 3's training "
        f"steps {summary['series_gap_fine_tuning_s']:.1f} (series_fine_tune_efficiency "
        f"{summary['series_fine_tune_efficiency']:.2f}), the rest "
        f"{summary['series_gap_other_s']:.1f} (tracing and other one-time work)"
    )


def print_estimates(report) -> None:
    estimate = report["full_run_estimate_cpu"]
    minutes = {key: value / 60 for key, value in estimate.items() if key.endswith("_s")}
    print(f"\nEstimates for all of cats_vs_dogs {FULL_RUN_IMAGES}, in minutes, this machine")
    parts = [
        ("part 2", f"{HEAD_EPOCHS} head epochs", "part2"),
        ("part 3", f"{FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs", "part3"),
        ("part 4", "test predictions", "part4"),
        ("series", "parts 2 to 4", "series"),
    ]
    for name, what, key in parts:
        print(
            f"  {name} ({what}): usual {minutes[f'naive_{key}_s']:.0f}, "
            f"notebooks {minutes[f'project_{key}_s']:.0f}"
        )
    print(
        f"  of which the store {minutes['project_store_s']:.0f} and a part-3 epoch "
        f"{minutes['project_part3_epoch_s']:.1f}; series_speedup "
        f"{estimate['series_speedup']:.2f} of an ideal {estimate['series_ideal_speedup']:.2f}"
    )
    print(
        "  notebooks with USE_FEATURE_CACHE=False: an epoch of part 2 "
        f"{minutes['without_cache_phase1_epoch_s']:.0f}, of part 3 "
        f"{minutes['without_cache_phase2_epoch_s']:.0f}"
    )


MARKERS = {
    "cost": ("<!-- speed:cost:begin -->", "<!-- speed:cost:end -->"),
    "results": ("<!-- speed:results:begin -->", "<!-- speed:results:end -->"),
}


WRAP = 92  # the README's line length


def paragraph(text: str) -> str:
    return textwrap.fill(" ".join(text.split()), WRAP, break_on_hyphens=False)


def kib(size_bytes: float) -> str:
    return f"{size_bytes / 2**10:,.0f} KiB"


def render_cost() -> str:
    """What one image costs and what the caches hold, from VGG16's layer shapes at 224 px."""
    size = 224
    model = build_model(size, None)  # the dtype policy changes no shape, so neither count
    gflops = vgg16_gflops(model)
    pooled = int(model.get_layer("pooled_features").output.shape[-1])
    block4_shape = tuple(int(n) for n in model.get_layer(CACHED_LAYER).output.shape[1:])
    float16_bytes = 2  # cache_features stores float16, whatever the policy
    pooled_bytes = pooled * float16_bytes
    block4_bytes = int(np.prod(block4_shape)) * float16_bytes
    all_images = sum(FULL_RUN_IMAGES.values())
    shape = " × ".join(str(n) for n in block4_shape)
    return "\n".join(
        [
            paragraph(
                f"""Almost all the time goes into VGG16 itself: one {size}-pixel image costs
                {gflops["base_forward"]:.1f} billion floating-point operations on the way
                through the base (counted from its layer shapes by `benchmarks/speed.py`). The
                usual recipe pays that for every image in every epoch, in float32. The notebooks
                avoid repeated work instead:"""
            ),
            "",
            "- "
            + paragraph(
                f"""**One frozen pass (part 2)**: the layers that stay frozen in part 3, everything
                up to `{CACHED_LAYER}`, run once per image, for all three splits. Their output
                is stored as float16 in `ARTIFACTS_DIR/frozen_store`: {shape} values,
                {kib(block4_bytes)} per image at {size} pixels,
                {block4_bytes * all_images / 2**30:.1f} GiB for all {all_images:,} images of
                cats_vs_dogs, on local disk (the operating system keeps it in memory when there
                is room)."""
            ).replace("\n", "\n  "),
            "- "
            + paragraph(
                f"""**The head (part 2)**: `block5` and the pooling run once on the stored maps;
                their {pooled} pooled features per image ({kib(pooled_bytes)} in float16) are
                what the head trains on, for as many epochs as you like."""
            ).replace("\n", "\n  "),
            "- "
            + paragraph(
                """**Fine-tuning and evaluation (parts 3 and 4)**: each epoch runs only `block5`
                and the head on the store, and part 4 predicts the test split from it. Grad-CAM,
                a new photo and the exports use the whole model."""
            ).replace("\n", "\n  "),
        ]
    )


def rate_rows(report) -> list:
    t, policy = report["timings"], report["machine"]["policy"]
    naive, project, uncached = t["naive"], t["project"], t["without_cache"]
    without = f"notebooks without the cache, phase {{}} (`fit` on images, {policy})"
    again = ", measured again beside the cache" if policy == "float32" else ""
    return [
        ("bare VGG16 base forward, float32", naive["forward_float32"]),
        (f"bare VGG16 base forward, {policy}{again}", project[f"forward_{policy}"]),
        ("input pipeline alone (read, decode, resize)", project["pipeline_alone"]),
        ("feature cache, phase 1 (`cache_features` on it)", project["phase1_extraction"]),
        ("usual recipe, phase 1 (`fit` on images, float32)", naive["phase1_fit"]),
        ("usual recipe, phase 2 (`fit` on images, float32)", naive["phase2_fit"]),
        (without.format(1), uncached["phase1_fit"]),
        (without.format(2), uncached["phase2_fit"]),
        ("notebooks with the cache, phase 2 (an epoch of block5 + head)", project["phase2_epochs"]),
    ]


def render_run(report, name: str) -> str:
    """One results file as the README shows it: where it came from, then what it measured."""
    m, v, s, summary = report["machine"], report["versions"], report["settings"], report["summary"]
    t, policy, images = report["timings"], m["policy"], report["images"]
    link = f"benchmarks/results/{name}"
    gpus = ", ".join(m["gpus"]) if m["gpus"] else "no GPU"
    bf16 = "with" if m["bfloat16_in_hardware"] else "without"
    lines = [
        paragraph(
            f"""**{m["cpu"]}**, {m["cores"]} cores, {bf16} bfloat16 instructions, {gpus};
            Python {v["python"]}, TensorFlow {v["tensorflow"]}, Keras {v["keras"]}, NumPy
            {v["numpy"]}; policy `{policy}`. Measured on {report["date"]}, rendered from
            [`{link}`]({link}): {sum(images.values())} generated JPEGs (train
            {images["train"]}, validation {images["validation"]}, test {images["test"]}),
            {s["image_size"]} pixels, batch {s["batch_size"]}."""
        ),
        "",
    ]
    if report.get("quick"):
        lines += [
            "> "
            + paragraph(
                f"""**A quick run** (`--quick`: {s["image_size"]}-pixel images, a few dozen
                files). It shows that the benchmark works, not how fast anything is: run it
                in full on a quiet machine before you believe any figure below."""
            ).replace("\n", "\n> "),
            "",
        ]
    lines += ["| Measured | images/s |", "|---|---:|"]
    lines += [f"| {label} | {rate['images_per_s']:.1f} |" for label, rate in rate_rows(report)]
    n = sum(images.values())
    lines += [
        "",
        f"| On the {n} images | usual recipe | notebooks | speedup |",
        "|---|---:|---:|---:|",
        f"| phase 1: feature extraction + {HEAD_EPOCHS} epochs of the head | "
        f"{summary['naive_phase1_s']:.1f} s | {summary['project_phase1_s']:.1f} s | "
        f"{summary['phase1_speedup']:.1f}x |",
        f"| phase 2: one fine-tuning epoch | {summary['naive_phase2_epoch_s']:.1f} s | "
        f"{summary['project_phase2_epoch_s']:.1f} s | {summary['phase2_speedup']:.1f}x |",
    ]
    if "series_speedup" in summary:
        lines += [
            f"| the series: part 2 ({HEAD_EPOCHS} head epochs), part 3 "
            f"({SERIES_FINE_TUNE_EPOCHS} fine-tuning epochs), part 4's test predictions | "
            f"{summary['naive_series_s']:.1f} s | {summary['project_series_s']:.1f} s | "
            f"{summary['series_speedup']:.1f}x |",
            "",
            paragraph(
                f"""Over the series, the frozen layers ran
                {summary["frozen_passes_per_image"]:.2f} times per image: the frozen store
                runs them once, and parts 3 and 4 reuse it. From VGG16's operation counts and
                the forward rates measured here, the series could at best be
                {summary["series_ideal_speedup"]:.1f} times faster than the usual recipe. It
                was {summary["series_speedup"]:.1f} times faster:
                {summary["series_speedup"] / summary["series_ideal_speedup"]:.0%} of the ideal.
                Both recipes pay for tracing (the usual recipe's
                {summary["naive_series_tracing_s"]:.1f} s come from its warm-ups). At the ideal
                rate the series would take {summary["series_ideal_s"]:.1f} s. It took
                {summary["project_series_s"] - summary["series_ideal_s"]:.1f} s more:
                {summary["series_gap_fine_tuning_s"]:.1f} s in part 3, whose training steps
                did {summary["series_fine_tune_efficiency"]:.0%} as many operations per second
                as the forward pass, and {summary["series_gap_other_s"]:.1f} s of one-time
                work, mostly tracing each model. One-time work does not grow with the number
                of images."""
            ),
        ]
    else:
        lines += [
            "",
            paragraph(
                """This results file was measured before the benchmark timed the whole series
                with the frozen store: run `python benchmarks/speed.py --save` again for
                those figures."""
            ),
        ]
    lines += [""]
    float32 = t["naive"]["forward_float32"]["images_per_s"]
    chosen = t["project"][f"forward_{policy}"]["images_per_s"]
    if policy == "float32":
        precision = """This machine has no fast 16-bit math, so the notebooks compute in float32
            here and this run measures no mixed precision."""
    else:
        precision = f"""`{policy}` ran the bare base at {chosen / float32:.1f} times the
            float32 rate ({chosen:.1f} against {float32:.1f} images/s)."""
    autotune = t["autotune"]
    rss = ", ".join(
        f"{child['peak_rss_mb']:,.0f} MB with {int(size):,} images"
        for size, child in report["rss_children"].items()
    )
    disturbed = max(rate["other_cores"] for _, rate in rate_rows(report))
    busy = ": too many for steady figures" if disturbed > 0.2 else ""
    lines += [
        paragraph(
            f"""{precision} The feature cache ran at
            {report["extraction_efficiency"]:.0%} of the bare base's forward rate on
            in-memory batches. A pass over the {autotune["images"]} training images through
            the input pipeline took {fmt_seconds(autotune["off_s"])} s with tf.data's
            autotuner off (as the notebooks set it) and {fmt_seconds(autotune["on_s"])} s
            with it on. Peak memory (a fresh process each): {rss}. The usual recipe is timed
            on {s["naive_steps"]} batches after a warm-up step and scaled to the full run.
            Other processes kept up to {disturbed:.1f} cores busy during the timings{busy}."""
        ),
        "",
    ]
    estimate = report["full_run_estimate_cpu"]
    if "project_series_s" in estimate:
        lines += render_estimates(estimate)
    return "\n".join(lines)


def minutes(seconds: float) -> str:
    value = seconds / 60
    return f"{value:,.0f} min" if value >= 10 else f"{value:.1f} min"


def render_estimates(estimate) -> list:
    """The full-run estimates as the README shows them (results files with the series)."""
    full = FULL_RUN_IMAGES
    return [
        paragraph(
            f"""**Estimates for all of cats_vs_dogs on this machine** ({full["train"]:,}
            training, {full["validation"]:,} validation and {full["test"]:,} test images,
            {FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs as in part 3), scaled from the series
            above: what is done per image times the images, one-time work once. They are
            estimates, not runs:"""
        ),
        "",
        "| | usual recipe | notebooks |",
        "|---|---:|---:|",
        f"| part 2 ({HEAD_EPOCHS} head epochs) | {minutes(estimate['naive_part2_s'])} | "
        f"{minutes(estimate['project_part2_s'])} ({minutes(estimate['project_store_s'])} "
        "for the frozen store) |",
        f"| part 3 ({FULL_RUN_FINE_TUNE_EPOCHS} fine-tuning epochs) | "
        f"{minutes(estimate['naive_part3_s'])} | {minutes(estimate['project_part3_s'])} "
        f"({minutes(estimate['project_part3_epoch_s'])} per epoch) |",
        f"| part 4 (test predictions) | {minutes(estimate['naive_part4_s'])} | "
        f"{minutes(estimate['project_part4_s'])} |",
        f"| the series | {minutes(estimate['naive_series_s'])} | "
        f"{minutes(estimate['project_series_s'])} |",
        f"| one epoch without the cache | | {minutes(estimate['without_cache_phase1_epoch_s'])} "
        f"(part 2), {minutes(estimate['without_cache_phase2_epoch_s'])} (part 3) |",
        "",
        paragraph(
            f"""At that size the series would be {estimate["series_speedup"]:.1f} times faster
            than the usual recipe, against an ideal of {estimate["series_ideal_speedup"]:.1f}
            ({estimate["series_speedup"] / estimate["series_ideal_speedup"]:.0%})."""
        ),
    ]


def render_results(results_dir: Path = RESULTS_DIR) -> str:
    paths = sorted(results_dir.glob("*.json"))
    if not paths:
        return paragraph(
            """No results are committed yet: run `python benchmarks/speed.py --save` on a quiet
            machine, then `python benchmarks/speed_report.py --write-readme`."""
        )
    return "\n\n".join(render_run(json.loads(p.read_text()), p.name) for p in paths)


def render_readme(text: str) -> str:
    """`text` with every speed section replaced by what the code and the results render."""
    rendered = {"cost": render_cost(), "results": render_results()}
    for key, (begin, end) in MARKERS.items():
        if text.count(begin) != 1 or text.count(end) != 1:
            raise SystemExit(f"README.md needs exactly one {begin} and one {end}")
        head, rest = text.split(begin)
        _, tail = rest.split(end)
        text = f"{head}{begin}\n{rendered[key]}\n{end}{tail}"
    return text


def update_readme(write: bool, readme: Path = README) -> int:
    """0 when README.md shows what the results render (after rewriting it, with `write`)."""
    current = readme.read_text()
    rendered = render_readme(current)
    if rendered == current:
        print("README.md's speed sections match the committed results.")
        return 0
    if write:
        readme.write_text(rendered)
        print("README.md's speed sections rewritten from the committed results.")
        return 0
    diff = difflib.unified_diff(
        current.splitlines(keepends=True),
        rendered.splitlines(keepends=True),
        "README.md",
        "README.md as the results render it",
    )
    sys.stdout.writelines(diff)
    print("\nREADME.md differs: run `python benchmarks/speed_report.py --write-readme`.")
    return 1


def add_figures(report) -> dict:
    """The report of a run with its derived figures: summary and full-run estimates."""
    timings, counts = report["timings"], report["images"]
    policy, batch = report["machine"]["policy"], report["settings"]["batch_size"]
    naive, project, series = timings["naive"], timings["project"], timings["series"]
    summary = summarize(naive, project, counts, policy)
    summary |= series_figures(naive, project, series, counts, policy, batch)
    headline = ("phase1_speedup", "phase2_speedup", "extraction_efficiency")
    headline += ("series_speedup", "series_ideal_speedup", "frozen_passes_per_image")
    estimate = full_run_cpu_estimate(
        naive, project, timings["without_cache"], series, counts, policy, batch
    )
    return (
        report
        | {key: summary[key] for key in headline}
        | {
            "summary": summary,
            "full_run_estimate_cpu": estimate,
        }
    )


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check-readme", action="store_true", help="exit 1 if README.md differs")
    mode.add_argument("--write-readme", action="store_true", help="rewrite its speed sections")
    args = parser.parse_args(argv)
    return update_readme(write=args.write_readme)


if __name__ == "__main__":
    sys.exit(main())
