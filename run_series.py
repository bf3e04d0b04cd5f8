"""Run the notebook series headless with papermill; collect everything in runs/<timestamp>/.

    python run_series.py                          # cats_vs_dogs with ImageNet weights
    python run_series.py --data-dir ~/my_photos   # your own two-class folder (or a .zip)
    python run_series.py --notebooks 02 03 -p EPOCHS 3
    python run_series.py --lang pt-BR             # the Portuguese edition (notebooks/pt-BR/)
    python run_series.py --resume runs/20250101-120000   # continue a run that was killed

Each notebook is executed with the parameters you give (only those it declares in its
`parameters` cell). The executed notebooks, their plots, the models and metrics.json land
in the run folder, which is also every notebook's ARTIFACTS_DIR. While it runs, you see
which notebook and which section is running, the time, and Keras's line for each epoch.
At the end: a summary of the results, and report.html, all notebooks in one page.

A run writes its parameters, notebooks and language to run.json in its folder, and each
notebook's name there once it has finished. `--resume RUN_DIR` continues a run that was killed
with the same settings: the finished notebooks stay as they are, the interrupted one runs again
and picks up the frozen store and the training backups it left in RUN_DIR (its ARTIFACTS_DIR).
Stopped with Ctrl-C or a TERM signal, a run shuts its kernel down and prints that command.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import json
import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

# debugpy, which ipykernel 6 loads (Colab's version, here too when Jupyter finds the kernel),
# warns on Python 3.11 and newer that frozen modules may hide breakpoints: a note for people
# who debug a kernel, not for a reader of the series.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
KERNEL_LOG = "kernel_messages.log"  # what the kernels write to their error stream
RUN_STATE = "run.json"  # what --resume needs: the settings, and the notebooks that finished
REPORT = "report.html"
# Cells the report shows without their code: setup the reader does not need to see again.
HIDDEN_INPUT_TAGS = {"quiet-start"}
# What Keras prints at the end of an epoch ("Epoch 2/10", "12/12 ━━━ 3s 250ms/step - ...").
EPOCH_LINE = re.compile(r"^(Epoch \d+/\d+|\d+/\d+ \S+ .*/step\b.*)$")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# Run only when named with --notebooks: 05 compares five bases (four more weight downloads).
OPTIONAL_NOTEBOOKS = ("05_choose_a_base.ipynb",)
# The editions of the course: English is the source, the others are generated from it
# (tools/translate.py) into notebooks/<language>/.
LANGUAGES = ("en", "pt-BR")


def series_notebooks(selection: list[str] | None = None, language: str = "en") -> list[Path]:
    """The notebooks in order; `selection` keeps those whose name starts with a given prefix.

    Without a selection, the optional notebooks are left out. A prefix that matches no
    notebook is an error (ValueError), not silently skipped.
    """
    folder = NOTEBOOKS_DIR if language == "en" else NOTEBOOKS_DIR / language
    notebooks = sorted(folder.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        notebooks = [nb for nb in notebooks if nb.name not in OPTIONAL_NOTEBOOKS]
    if selection:
        unknown = [s for s in selection if not any(nb.name.startswith(s) for nb in notebooks)]
        if unknown:
            names = ", ".join(nb.name for nb in notebooks)
            raise ValueError(f"no notebook starts with {', '.join(unknown)}. There are: {names}")
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(s) for s in selection)]
    return notebooks


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def heading_before(cells, index: int) -> str | None:
    """The last section heading (##, ###...) at or above cell `index`: where that cell is."""
    for cell in reversed(cells[: index + 1]):
        if cell.cell_type == "markdown":
            prose = re.sub(r"(?ms)^```.*?^```", "", cell.source)  # a comment in code is no heading
            headings = re.findall(r"(?m)^#{2,6}\s+(.+?)\s*$", prose)
            if headings:
                return headings[-1]
    return None


def visible_text(line: str) -> str:
    """What a terminal shows of a line that rewrites itself with \\r and \\b, without colours."""
    return ANSI.sub("", line.split("\r")[-1].replace("\b", "")).strip()


class Watcher:
    """Says what the running notebook does: its sections, the time, and each epoch's line."""

    def __init__(self, out=None):
        self.out = out or sys.stdout
        self.start = time.monotonic()
        self.section = None
        self.pending = ""

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def cell_start(self, cells, index: int) -> None:
        section = heading_before(cells, index)
        if section and section != self.section:
            self.section = section
            self.say(f"  {format_seconds(time.monotonic() - self.start):>7}  {section}")

    def output(self, output) -> None:
        if output.get("output_type") != "stream" or output.get("name") != "stdout":
            return
        self.pending += "".join(output.get("text", ""))
        *lines, self.pending = self.pending.split("\n")
        for line in lines:
            text = visible_text(line)
            if EPOCH_LINE.match(text):
                self.say(f"           {text}")


def watched_engine():
    """A papermill engine that tells a Watcher about each cell and output, and sends the
    kernel's own error stream (C++ notes, Jupyter's warnings) to a file, not the terminal."""
    from papermill.clientwrap import PapermillNotebookClient
    from papermill.engines import NBClientEngine, papermill_engines
    from papermill.log import logger

    class WatchedClient(PapermillNotebookClient):
        watcher = None
        kernel_log = None

        def execute_cell(self, cell, cell_index, *args, **kwargs):
            if self.watcher and cell.cell_type == "code":
                self.watcher.cell_start(self.nb.cells, cell_index)
            return super().execute_cell(cell, cell_index, *args, **kwargs)

        def process_message(self, *args, **kwargs):
            output = super().process_message(*args, **kwargs)
            if output and self.watcher:
                self.watcher.output(output)
            return output

        def execute(self, **kwargs):
            return super().execute(stdout=self.kernel_log, stderr=self.kernel_log, **kwargs)

    class WatchedEngine(NBClientEngine):
        @classmethod
        def execute_managed_notebook(
            cls, nb_man, kernel_name, watcher=None, kernel_log=None, start_timeout=60, **kwargs
        ):
            for unused in ("input_path", "log_output", "stdout_file", "stderr_file"):
                kwargs.pop(unused, None)
            client = WatchedClient(
                nb_man, kernel_name=kernel_name, log=logger, startup_timeout=start_timeout, **kwargs
            )
            client.watcher, client.kernel_log = watcher, kernel_log
            return client.execute()

    papermill_engines.register("watched", WatchedEngine)
    return "watched"


def run_notebook(notebook: Path, run_dir: Path, parameters: dict, watcher=None) -> Path:
    """Execute one notebook into run_dir with the parameters it declares; return the output path."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    passed = {name: value for name, value in parameters.items() if name in declared}
    if "ARTIFACTS_DIR" in declared:
        passed["ARTIFACTS_DIR"] = str(run_dir)
    output = run_dir / notebook.name
    with open(run_dir / KERNEL_LOG, "a") as kernel_log:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=passed,
            cwd=str(run_dir),
            progress_bar=False,
            log_output=False,
            engine_name=watched_engine(),
            watcher=watcher,
            kernel_log=kernel_log,
        )
    return output


def new_run_dir(runs_dir: Path) -> Path:
    """A new, empty runs_dir/<timestamp>/ folder."""
    run_dir = Path(runs_dir).resolve() / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def write_report(run_dir: Path, executed: list[Path]) -> Path:
    """One HTML page with the executed notebooks in order: plots inline, the quiet start hidden."""
    import nbformat
    from nbconvert import HTMLExporter
    from nbconvert.preprocessors import TagRemovePreprocessor

    combined = None
    for path in executed:
        notebook = nbformat.read(path, as_version=4)
        for number, cell in enumerate(notebook.cells):
            cell["id"] = f"{path.name[:2]}-{number}"  # unique across the notebooks
            if cell.cell_type == "code":
                for output in cell.outputs:
                    if output.output_type == "stream":  # progress bars: only what stayed visible
                        lines = "".join(output.text).split("\n")
                        output.text = "\n".join(visible_text(line) for line in lines)
        if combined is None:
            combined = nbformat.v4.new_notebook(metadata=notebook.metadata)
            title = f"# Run {run_dir.name}\n\n" + "\n".join(f"- {p.name}" for p in executed)
            combined.cells.append(nbformat.v4.new_markdown_cell(title, id="run-title"))
        combined.cells.extend(notebook.cells)
    exporter = HTMLExporter()
    exporter.register_preprocessor(
        TagRemovePreprocessor(remove_input_tags=HIDDEN_INPUT_TAGS, enabled=True), enabled=True
    )
    html, _ = exporter.from_notebook_node(combined)
    report = run_dir / REPORT
    report.write_text(html, encoding="utf-8")
    return report


class NotebookFailed(Exception):
    def __init__(self, notebook: Path, cell: int | None, section: str | None, message: str):
        super().__init__(message)
        self.notebook, self.cell, self.section, self.message = notebook, cell, section, message


def write_run_state(run_dir: Path, state: dict) -> None:
    """Write run_dir/run.json whole or not at all: a kill while writing leaves the old one."""
    partial = run_dir / (RUN_STATE + ".partial")
    partial.write_text(json.dumps(state, indent=2) + "\n")
    os.replace(partial, run_dir / RUN_STATE)


def run_series(
    notebooks: list[Path], parameters: dict, run_dir: Path, out=None, state: dict | None = None
) -> tuple[dict, list[Path]]:
    """Run the notebooks one after the other, all writing into run_dir, saying what they do.

    With `state` (what run.json holds), the notebooks in state["finished"] are kept as they
    are, and each notebook that finishes is added there and saved at once.
    Returns ({notebook name: seconds}, executed notebook paths). Raises NotebookFailed.
    """
    import papermill

    out = out or sys.stdout
    finished = state["finished"] if state else {}
    seconds, executed = {}, []
    for number, notebook in enumerate(notebooks, start=1):
        if notebook.name in finished:
            seconds[notebook.name] = finished[notebook.name]
            executed.append(run_dir / notebook.name)
            continue
        print(f"[{number}/{len(notebooks)}] {notebook.name}", file=out, flush=True)
        watcher = Watcher(out)
        try:
            executed.append(run_notebook(notebook, run_dir, parameters, watcher))
        except papermill.PapermillExecutionError as error:
            message = f"{error.ename}: {error.evalue}"
            raise NotebookFailed(notebook, error.exec_count, watcher.section, message) from None
        finally:
            seconds[notebook.name] = time.monotonic() - watcher.start
        if state is not None:
            finished[notebook.name] = seconds[notebook.name]
            write_run_state(run_dir, state)
        print(f"  {format_seconds(seconds[notebook.name]):>7}  done", file=out, flush=True)
    return seconds, executed


def read_json(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def summary(run_dir: Path, seconds: dict) -> str:
    """What a person wants at the end: time per notebook, the results, where things are."""
    lines = ["", "Time per notebook:"]
    width = max([len("total"), *map(len, seconds)])
    lines += [f"  {name:<{width}}  {format_seconds(s):>7}" for name, s in seconds.items()]
    lines.append(f"  {'total':<{width}}  {format_seconds(sum(seconds.values())):>7}")

    metrics = read_json(run_dir / "metrics.json")
    evaluation = read_json(run_dir / "evaluation.json")
    if metrics:
        lines += [
            "",
            f"Test accuracy after fine-tuning: {metrics['test_accuracy']:.1%} "
            f"on {metrics['test_images']} test images "
            f"(before fine-tuning: {metrics['test_accuracy_before_fine_tuning']:.1%}).",
        ]
    if evaluation:
        test = evaluation["test"]
        numbers = [
            f"{name} {'n/a' if test.get(name) is None else format(test[name], '.3f')}"
            for name in ("accuracy", "precision", "recall", "f1", "roc_auc")
        ]
        lines.append(f"Test set at threshold {test['threshold']}: {', '.join(numbers)}.")
    table = read_json(run_dir / "transfer_vs_scratch.json")
    if table:
        budget = table["budgets"][0]
        means = ", ".join(
            f"{method} {results[budget]['mean']:.2f}"
            for method, results in table["methods"].items()
        )
        lines.append(f"Notebook 00, {budget} label(s) per class, test accuracy: {means}.")

    where = [
        ("Model", ["fine_tuned.keras", "head_trained.keras"]),
        ("Metrics", ["metrics.json", "evaluation.json", "head_trained.json"]),
        ("Table", ["transfer_vs_scratch.json"]),
    ]
    lines.append("")
    for label, names in where:
        found = [name for name in names if (run_dir / name).exists()]
        if found:
            lines.append(
                f"{label + ':':<9}{run_dir / found[0]}"
                + (f" (also {', '.join(found[1:])})" if found[1:] else "")
            )
    if (run_dir / REPORT).exists():
        lines.append(f"{'Report:':<9}{run_dir / REPORT}")
    lines.append(f"{'All:':<9}{run_dir}")
    return "\n".join(lines)


def _value(text: str):
    """Read a -p value like papermill does: a Python literal if it parses, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def resumed_state(parser, args) -> tuple[Path, dict]:
    """The run folder and run.json of the run that --resume continues; exit 2 if unusable."""
    given = [
        option
        for option, value in [
            ("-p", args.p),
            ("--data-dir", args.data_dir),
            ("--weights", args.weights),
            ("--notebooks", args.notebooks),
            ("--lang", args.lang),
        ]
        if value
    ]
    if given:
        parser.error(
            f"--resume continues a run with that run's own settings, so {', '.join(given)} "
            "cannot be given with it. To change settings, start a new run without --resume."
        )
    run_dir = Path(args.resume).expanduser().resolve()
    state = read_json(run_dir / RUN_STATE)
    if not isinstance(state, dict) or not {"notebooks", "parameters", "lang"} <= set(state):
        parser.error(
            f"--resume: {run_dir} has no readable {RUN_STATE}. Give a folder that "
            "run_series.py made, like runs/20250101-120000."
        )
    state.setdefault("finished", {})
    return run_dir, state


class Stopped(Exception):
    """The run was asked to stop: Ctrl-C (SIGINT) or SIGTERM."""


def stop_on_signal(number, frame):
    # What papermill and asyncio log while the kernel shuts down ("Kernel died", tasks left
    # over) is noise once the reader has asked for the stop: main() says what happened.
    logging.disable(logging.CRITICAL)
    raise Stopped("Ctrl-C" if number == signal.SIGINT else signal.Signals(number).name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="a two-class folder or .zip (default: TFDS cats_vs_dogs)"
    )
    parser.add_argument("--weights", help="'imagenet' (the default), 'none' or a .h5 path")
    parser.add_argument("--notebooks", nargs="*", help="run only these, e.g. 01 02")
    parser.add_argument("--lang", choices=LANGUAGES, help="the edition to run (default: en)")
    parser.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a run that was killed, with its own settings: finished notebooks are "
        "kept, the rest run again in RUN_DIR",
    )
    parser.add_argument(
        "-p",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="any other notebook parameter, e.g. -p EPOCHS 3",
    )
    args = parser.parse_args(argv)

    if args.resume:
        run_dir, state = resumed_state(parser, args)
        try:
            notebooks = series_notebooks(state["notebooks"], state["lang"])
        except ValueError as error:
            parser.error(f"--resume: {error}")
        parameters = state["parameters"]
    else:
        language = args.lang or "en"
        try:
            notebooks = series_notebooks(args.notebooks, language)
        except ValueError as error:
            parser.error(f"--notebooks: {error}")

        import papermill

        declared = set()
        for notebook in notebooks:
            declared |= set(papermill.inspect_notebook(str(notebook)))
        for name, _ in args.p:
            if name not in declared:
                known = ", ".join(sorted(declared - {"ARTIFACTS_DIR"}))
                parser.error(
                    f"-p {name}: no notebook in this run has that parameter. Known: {known}"
                )

        parameters = {name: _value(value) for name, value in args.p}
        if args.data_dir:
            parameters["DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
        weights = args.weights or "imagenet"
        parameters["WEIGHTS"] = None if weights.lower() == "none" else weights
        state = {
            "notebooks": [notebook.name for notebook in notebooks],
            "lang": language,
            "parameters": parameters,
            "finished": {},
        }

    # The kernels start with this: TensorFlow's C++ notes after start-up, only when fatal.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if args.resume:
        kept = [notebook.name for notebook in notebooks if notebook.name in state["finished"]]
        to_run = [notebook.name for notebook in notebooks if notebook.name not in kept]
        print(f"Resuming the run in {run_dir}, with its own settings ({RUN_STATE}).", flush=True)
        print(f"Kept, finished before: {', '.join(kept) or 'none'}", flush=True)
        if to_run:
            print(
                f"Running again: {', '.join(to_run)}. {to_run[0]} continues from the frozen "
                "store and the training backups it left in the run folder.",
                flush=True,
            )
        else:
            print("Nothing left to run: every notebook had finished.", flush=True)
    else:
        run_dir = new_run_dir(Path(args.runs_dir))
        write_run_state(run_dir, state)
        count = f"{len(notebooks)} notebook{'s' if len(notebooks) > 1 else ''}"
        print(f"Running {count} into {run_dir}", flush=True)
    signal.signal(signal.SIGTERM, stop_on_signal)
    signal.signal(signal.SIGINT, stop_on_signal)
    try:
        seconds, executed = run_series(notebooks, parameters, run_dir, state=state)
    except (Stopped, KeyboardInterrupt) as stop:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C while the kernel stops
        logging.disable(logging.CRITICAL)
        why = f"by {stop}" if isinstance(stop, Stopped) else "by Ctrl-C"  # before the handler
        finished = [name for name in state["notebooks"] if name in state["finished"]]
        print(f"\nStopped {why}.", file=sys.stderr)
        print(f"Finished before the stop: {', '.join(finished) or 'none'}.", file=sys.stderr)
        print(
            f"To continue where it stopped: python run_series.py --resume {run_dir}",
            file=sys.stderr,
        )
        return 130
    except NotebookFailed as failure:
        place = f"cell [{failure.cell}]" if failure.cell else "a cell"
        if failure.section:
            place += f", section '{failure.section}'"
        print(f"\nStopped in {failure.notebook.name}, {place}:", file=sys.stderr)
        print(f"  {failure.message}", file=sys.stderr)
        ran = sorted(run_dir.glob("[0-9][0-9]_*.ipynb"))
        report = write_report(run_dir, ran)
        print(f"The executed notebooks, with all their output, are in {run_dir}", file=sys.stderr)
        print(f"All of it on one page: {report}", file=sys.stderr)
        return 1
    write_report(run_dir, executed)
    print(summary(run_dir, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
