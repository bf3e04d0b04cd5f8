"""run_series.py as a person runs it: progress, a summary, clear errors, quiet, report.html."""

import base64
import html.parser
import io
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import (
    NOISE,
    PYTEST_VARIABLE,
    TINY,
    imagenet_weights,
    ipython_dir,
    notebook_text,
)
from PIL import Image

import run_series

ROOT = Path(__file__).resolve().parent.parent
COLAB_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"


def cli_environment(folder: Path, scripts: dict | None = None) -> dict:
    """The environment of a person's terminal, with kernels that find the ImageNet weights files.

    `scripts`: more kernel start-up code ({file name: code}).
    """
    left_out = ("TF_CPP_MIN_LOG_LEVEL", PYTEST_VARIABLE)
    environment = {k: v for k, v in os.environ.items() if k not in left_out}
    startup = {**imagenet_weights("VGG16"), **(scripts or {})}
    environment["IPYTHONDIR"] = str(ipython_dir(folder / "ipython", startup))
    return environment


def run_cli(*arguments, cwd: Path, folder: Path | None = None) -> subprocess.CompletedProcess:
    """run_series.py in a new process; its kernels' start-up code goes into `folder` (or cwd)."""
    environment = cli_environment(folder or cwd)
    return subprocess.run(
        [sys.executable, str(ROOT / "run_series.py"), *arguments],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
    )


def tiny_arguments(folder: Path, runs: Path) -> list:
    arguments = ["--data-dir", str(folder), "--runs-dir", str(runs)]  # WEIGHTS: "imagenet"
    for name in ("IMG_SIZE", "BATCH_SIZE", "EPOCHS", "FINE_TUNE_EPOCHS"):
        arguments += ["-p", name, str(TINY[name])]
    return arguments


def the_run_dir(runs: Path) -> Path:
    (run_dir,) = runs.iterdir()
    return run_dir


def test_a_parameter_no_notebook_has_is_an_error(capsys):
    with pytest.raises(SystemExit) as stopped:
        run_series.main(["-p", "EPOHCS", "3"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "-p EPOHCS: no notebook in this run has that parameter" in error
    assert "EPOCHS" in error  # the list of known names shows the right spelling


def test_a_notebook_that_does_not_exist_is_an_error(capsys, tmp_path):
    with pytest.raises(SystemExit) as stopped:
        run_series.main(["--notebooks", "02", "09", "--runs-dir", str(tmp_path)])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "--notebooks: no notebook starts with 09" in error
    assert "02_feature_extraction.ipynb" in error
    assert list(tmp_path.iterdir()) == []  # nothing started


def test_each_edition_runs_its_own_notebooks_in_the_same_order():
    english = run_series.series_notebooks()
    portuguese = run_series.series_notebooks(language="pt-BR")
    assert [path.name for path in portuguese] == [path.name for path in english]
    assert {path.parent.name for path in portuguese} == {"pt-BR"}
    assert run_series.series_notebooks(["02"], "pt-BR") == [portuguese[2]]


def test_the_watcher_shows_sections_and_epochs_not_batches():
    out = io.StringIO()
    watcher = run_series.Watcher(out)
    cells = [
        nbformat.v4.new_markdown_cell("# Title\n\n## Train the head"),
        nbformat.v4.new_code_cell("fit()"),
        nbformat.v4.new_markdown_cell("```python\n# a comment, not a heading\n```"),
        nbformat.v4.new_code_cell("more()"),
    ]
    watcher.cell_start(cells, 1)
    watcher.cell_start(cells, 3)
    bar = "\x1b[32m━━━━\x1b[0m"
    keras_output = (
        "Epoch 1/2\n"
        f"\r1/3 {bar} 1s 500ms/step - loss: 0.7"
        f"\b\b\b\r2/3 {bar} 0s 400ms/step - loss: 0.6"
        f"\b\b\b\r3/3 {bar} 2s 300ms/step - loss: 0.5 - val_loss: 0.4\n"
        "Something else the notebook printed\n"
    )
    for chunk in (keras_output[:30], keras_output[30:]):  # as the kernel sends it, in pieces
        watcher.output({"output_type": "stream", "name": "stdout", "text": chunk})
    shown = out.getvalue().splitlines()
    assert len(shown) == 3
    assert shown[0].strip().endswith("Train the head")
    assert re.match(r"\s+\d:\d\d  Train the head$", shown[0])
    assert shown[1].strip() == "Epoch 1/2"
    assert shown[2].strip().startswith("3/3 ━━━━ 2s 300ms/step")
    assert "val_loss: 0.4" in shown[2]


class Images(html.parser.HTMLParser):
    """The <img> sources of an HTML page."""

    def __init__(self):
        super().__init__()
        self.sources = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs).get("src", ""))


def check_report_plots(report: Path) -> int:
    """Every plot is inside the page (no other file needed) and is a real PNG; returns how many."""
    parser = Images()
    parser.feed(report.read_text(encoding="utf-8"))
    pngs = [src for src in parser.sources if src.startswith("data:image/png;base64,")]
    others = set(parser.sources) - set(pngs)
    assert pngs and others <= {COLAB_BADGE}, others  # only the badges come from the internet
    for source in pngs:
        image = Image.open(io.BytesIO(base64.b64decode(source.split(",", 1)[1])))
        assert image.width > 50 and image.height > 50
    return len(pngs)


def check_report_in_a_browser(report: Path, tmp_path: Path, expected_images: int) -> None:
    """Open the page in headless Chromium: every image must have loaded with a size."""
    browser = next(filter(None, map(shutil.which, ["chromium", "chromium-browser"])), None)
    if browser is None:
        return  # no browser here: check_report_plots checked the HTML itself
    probe = tmp_path / "probe.html"
    script = (
        "<script>window.addEventListener('load', () => document.body.setAttribute("
        "'data-images-shown', [...document.images].filter(i => i.src.startsWith('data:')"
        " && i.naturalWidth > 0).length));"
        "</script>"
    )
    probe.write_text(report.read_text(encoding="utf-8").replace("</body>", script + "</body>"))
    result = subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", probe.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert f'data-images-shown="{expected_images}"' in result.stdout, result.stderr[-2000:]


# After every cell, once TensorFlow is loaded, a line straight to file descriptor 2: the way
# TensorFlow's C++ code writes its notes (cuInit, oneDNN's DT_HALF, XLA), at any time.
CPP_NOTE = "E0000 00:00:1.0 42 fake_note.cc:1] a C++ note (simulated by the tests)"
CPP_NOTE_AFTER_EACH_CELL = f"""
import os
import sys

from IPython import get_ipython


def _cpp_note(result):
    if "tensorflow" in sys.modules:
        os.write(2, {(CPP_NOTE + chr(10)).encode()!r})


get_ipython().events.register("post_run_cell", _cpp_note)
"""


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, easy_folder):
    """Parts 2 and 3 through the command line, on tiny settings."""
    runs = tmp_path_factory.mktemp("cli") / "runs"
    arguments = tiny_arguments(easy_folder, runs)
    environment = cli_environment(runs.parent, {"cpp_note.py": CPP_NOTE_AFTER_EACH_CELL})
    result = subprocess.run(
        [sys.executable, str(ROOT / "run_series.py"), *arguments, "--notebooks", "02", "03"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
    )
    return result, the_run_dir(runs)


def test_a_run_shows_progress_and_ends_with_a_summary(cli_run):
    result, run_dir = cli_run
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "[1/2] 02_feature_extraction.ipynb" in out
    assert "[2/2] 03_fine_tuning.ipynb" in out
    assert re.search(r"(?m)^\s+\d+:\d\d  Train the head$", out)
    assert re.search(r"(?m)^\s+Epoch 1/2$", out)
    assert re.search(r"(?m)^\s+\d+/\d+ \S+ \d+m?s .*/step - accuracy: .* - val_loss: ", out)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert f"Test accuracy after fine-tuning: {metrics['test_accuracy']:.1%}" in out
    assert f"{run_dir / 'fine_tuned.keras'}" in out
    assert f"{run_dir / 'metrics.json'}" in out
    assert f"Report:  {run_dir / 'report.html'}" in out
    assert re.search(r"(?m)^  02_feature_extraction.ipynb\s+\d+:\d\d$", out)


def test_a_run_is_quiet(cli_run):
    result, run_dir = cli_run
    terminal = result.stdout + result.stderr
    notebooks = "".join(
        notebook_text(nbformat.read(path, as_version=4)) for path in run_dir.glob("*.ipynb")
    )
    for noise in NOISE:
        assert noise not in terminal, noise
        assert noise not in notebooks, noise
    assert result.stderr == ""
    # What the kernels write outside the notebooks is kept, out of the way: what C++ code writes
    # after TensorFlow started, in every cell.
    kernel_log = (run_dir / run_series.KERNEL_LOG).read_text()
    assert CPP_NOTE not in notebooks and CPP_NOTE not in terminal
    assert kernel_log.count(CPP_NOTE) > 20


def test_the_report_is_one_page_with_plots_and_without_plumbing(cli_run, tmp_path):
    _, run_dir = cli_run
    report = run_dir / "report.html"
    page = report.read_text(encoding="utf-8")
    assert page.index("part 2: a new head on a frozen base") < page.index("part 3: fine-tuning")
    assert "VGG16" in page and "Train the head" in page  # the teaching code and prose
    for plumbing_only in ["start_tensorflow_quietly", "def cache_features"]:
        assert plumbing_only not in page
    assert "━━━━" in page and "\r" not in page  # progress bars as they ended, not every step
    images = check_report_plots(report)
    assert images >= 3  # augmentation, and both learning curves
    check_report_in_a_browser(report, tmp_path, images)


NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_tensorflow_starts_quietly_before_anything_imports_it(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    quiet = [i for i, c in enumerate(cells) if "quiet-start" in c.metadata.get("tags", [])]
    assert len(quiet) == 1, "one cell tagged quiet-start"
    importers = [  # what loads TensorFlow: Keras, or the helpers beyond the quiet start
        i
        for i, c in enumerate(cells)
        if i != quiet[0]
        and re.search(r"(?m)^\s*(import|from) (keras|tensorflow|tutorial_plumbing)", c.source)
    ]
    assert importers and quiet[0] < min(importers), "the quiet-start cell starts TensorFlow first"
    assert quiet[0] == 1, "right after the cell that installs the helpers"
    reference = nbformat.read(NOTEBOOKS[0], as_version=4)
    (same,) = [c for c in reference.cells if "quiet-start" in c.metadata.get("tags", [])]
    assert cells[quiet[0]].source == same.source, "the same cell in every notebook"
    assert "start_tensorflow_quietly()" in same.source


def test_a_bad_parameter_stops_the_run_with_one_line(tmp_path, easy_folder):
    runs = tmp_path / "runs"
    arguments = tiny_arguments(easy_folder, runs) + ["-p", "IMG_SIZE", "16", "--weights", "none"]
    result = run_cli(*arguments, "--notebooks", "02", "03", cwd=tmp_path)
    assert result.returncode == 1
    assert "[2/2]" not in result.stdout  # part 3 never started
    error = result.stderr
    assert re.search(
        r"Stopped in 02_feature_extraction.ipynb, cell \[\d+\], section 'Setup':", error
    )
    assert "CannotContinue: IMG_SIZE = 16 is too small" in error
    assert "Traceback" not in error and "MaxPooling2D" not in error
    assert len(error.strip().splitlines()) == 4
    assert (the_run_dir(runs) / "report.html").is_file()


# Part 3's training stops after its 2nd epoch, once the backup is saved, and waits there for
# the test to kill the run. The flag file says it got there (and lets the resumed run through).
PAUSE_IN_PART_3 = """
import time
from pathlib import Path

import keras

_flag = Path({flag!r})
_plain_on_epoch_end = keras.callbacks.BackupAndRestore.on_epoch_end


def _pause_after_epoch_2(self, epoch, logs=None):
    _plain_on_epoch_end(self, epoch, logs)
    if epoch == 1 and "fine_tuning" in str(self.backup_dir) and not _flag.exists():
        _flag.touch()
        time.sleep(300)  # killed here by the test


keras.callbacks.BackupAndRestore.on_epoch_end = _pause_after_epoch_2
"""


def kill_run_when(process: subprocess.Popen, flag: Path, timeout: float = 300) -> None:
    """Wait for `flag`, then SIGKILL the run's process group; its kernels follow it."""
    import time

    import psutil

    deadline = time.monotonic() + timeout
    while not flag.exists():
        assert process.poll() is None, "the run ended before part 3 paused"
        assert time.monotonic() < deadline, "part 3 never paused"
        time.sleep(0.2)
    kernels = psutil.Process(process.pid).children(recursive=True)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    # A kernel runs in a session of its own; it exits when it sees its parent gone.
    _, left = psutil.wait_procs(kernels, timeout=15)
    for kernel in left:
        kernel.kill()


def test_a_run_killed_in_part_3_completes_with_resume(tmp_path, easy_folder):
    runs = tmp_path / "runs"
    flag = tmp_path / "paused_in_part_3"
    environment = cli_environment(tmp_path, {"pause.py": PAUSE_IN_PART_3.format(flag=str(flag))})
    arguments = tiny_arguments(easy_folder, runs) + ["-p", "FINE_TUNE_EPOCHS", "4"]
    with open(tmp_path / "killed_run.log", "w") as log:
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "run_series.py"), *arguments, "--notebooks", "02", "03"],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, killed as a whole
        )
        try:
            kill_run_when(process, flag)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
    run_dir = the_run_dir(runs)
    assert (run_dir / "resume" / "fine_tuning" / "backup").is_dir()
    assert not (run_dir / "metrics.json").exists()
    part_2 = run_dir / "02_feature_extraction.ipynb"
    part_2_before = part_2.stat().st_mtime_ns

    result = run_cli("--resume", str(run_dir), cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = result.stdout
    assert f"Resuming the run in {run_dir}" in out
    assert "Kept, finished before: 02_feature_extraction.ipynb" in out
    assert "Running again: 03_fine_tuning.ipynb." in out
    assert "[1/2]" not in out and "[2/2] 03_fine_tuning.ipynb" in out
    assert re.search(r"(?m)^\s+Epoch 3/4$", out) and "Epoch 1/4" not in out, "it started over"
    assert part_2.stat().st_mtime_ns == part_2_before  # kept as it was
    executed = nbformat.read(run_dir / "03_fine_tuning.ipynb", as_version=4)
    assert "Reusing the frozen store" in notebook_text(executed)
    assert (run_dir / "metrics.json").is_file()
    history = json.loads((run_dir / "fine_tuned.json").read_text())["history"]
    assert len(history["loss"]) == 4
    state = json.loads((run_dir / run_series.RUN_STATE).read_text())
    assert list(state["finished"]) == ["02_feature_extraction.ipynb", "03_fine_tuning.ipynb"]
    assert state["parameters"]["FINE_TUNE_EPOCHS"] == 4
    assert "Time per notebook:" in out and f"Report:  {run_dir / 'report.html'}" in out


# The first cell of the run waits, so that the test can stop the run while a kernel works.
WAIT_IN_FIRST_CELL = """
import time
from pathlib import Path

from IPython import get_ipython

_flag = Path({flag!r})


def _wait_once(info):
    if not _flag.exists():
        _flag.touch()
        time.sleep(120)  # stopped here by the test


get_ipython().events.register("pre_run_cell", _wait_once)
"""


@pytest.mark.parametrize(
    "signal_name, said", [("SIGINT", "Ctrl-C"), ("SIGTERM", "SIGTERM")], ids=["ctrl-c", "term"]
)
def test_a_stopped_run_says_how_to_resume_and_leaves_no_kernel(
    tmp_path, easy_folder, signal_name, said
):
    """Ctrl-C in a terminal, or SIGTERM from `kill` or a job system: a sentence, no traceback."""
    import time

    import psutil

    runs, flag = tmp_path / "runs", tmp_path / "kernel_busy"
    environment = cli_environment(tmp_path, {"wait.py": WAIT_IN_FIRST_CELL.format(flag=str(flag))})
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run_series.py"), *tiny_arguments(easy_folder, runs)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not flag.exists():
            assert process.poll() is None, process.communicate()[1][-3000:]
            assert time.monotonic() < deadline, "the first cell never ran"
            time.sleep(0.2)
        kernels = psutil.Process(process.pid).children(recursive=True)
        assert kernels
        os.killpg(process.pid, getattr(signal, signal_name))  # as a terminal sends Ctrl-C
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    run_dir = the_run_dir(runs)
    assert process.returncode == 130, err[-3000:]
    assert "Traceback" not in out + err
    assert f"Stopped by {said}." in err
    assert "Finished before the stop: none." in err
    assert f"To continue where it stopped: python run_series.py --resume {run_dir}" in err
    _, left = psutil.wait_procs(kernels, timeout=30)
    assert not left, "a kernel outlived the run"


def test_resume_keeps_the_run_s_own_settings(tmp_path, capsys):
    with pytest.raises(SystemExit) as stopped:
        run_series.main(["--resume", str(tmp_path), "-p", "EPOCHS", "3", "--weights", "none"])
    assert stopped.value.code == 2
    error = capsys.readouterr().err
    assert "-p, --weights cannot be given with it" in error
    with pytest.raises(SystemExit) as stopped:
        run_series.main(["--resume", str(tmp_path)])
    assert stopped.value.code == 2
    assert f"--resume: {tmp_path.resolve()} has no readable run.json" in capsys.readouterr().err
