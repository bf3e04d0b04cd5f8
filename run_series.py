"""Run the notebook series headless with papermill; collect everything in runs/<timestamp>/.

    python run_series.py                          # cats_vs_dogs with ImageNet weights
    python run_series.py --data-dir ~/my_photos   # your own two-class folder (or a .zip)
    python run_series.py --notebooks 02 03 -p EPOCHS 3

Each notebook is executed with the parameters you give (only those it declares in its
`parameters` cell). The executed notebooks, their plots, the models and metrics.json land
in the run folder, which is also every notebook's ARTIFACTS_DIR.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import os
import sys
from pathlib import Path

NOTEBOOKS_DIR = Path(__file__).resolve().parent / "notebooks"
# Run only when named with --notebooks: 05 compares five bases (four more weight downloads).
OPTIONAL_NOTEBOOKS = ("05_choose_a_base.ipynb",)


def series_notebooks(selection: list[str] | None = None) -> list[Path]:
    """The notebooks in order; `selection` keeps those whose name starts with a given prefix.

    Without a selection, the optional notebooks are left out.
    """
    notebooks = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if not selection:
        notebooks = [nb for nb in notebooks if nb.name not in OPTIONAL_NOTEBOOKS]
    if selection:
        notebooks = [nb for nb in notebooks if any(nb.name.startswith(s) for s in selection)]
        if not notebooks:
            raise SystemExit(f"No notebook in {NOTEBOOKS_DIR} starts with {selection}.")
    return notebooks


def run_notebook(notebook: Path, run_dir: Path, parameters: dict) -> Path:
    """Execute one notebook into run_dir with the parameters it declares; return the output path."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    passed = {name: value for name, value in parameters.items() if name in declared}
    if "ARTIFACTS_DIR" in declared:
        passed["ARTIFACTS_DIR"] = str(run_dir)
    output = run_dir / notebook.name
    papermill.execute_notebook(
        str(notebook),
        str(output),
        parameters=passed,
        cwd=str(run_dir),
        progress_bar=False,
        log_output=False,
    )
    return output


def new_run_dir(runs_dir: Path) -> Path:
    """A new, empty runs_dir/<timestamp>/ folder."""
    run_dir = Path(runs_dir).resolve() / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=False)
    return run_dir


def run_series(notebooks: list[Path], parameters: dict, run_dir: Path) -> None:
    """Run the notebooks one after the other, all writing into run_dir."""
    for notebook in notebooks:
        print(f"Running {notebook.name} ...", flush=True)
        run_notebook(notebook, run_dir, parameters)


def _value(text: str):
    """Read a -p value like papermill does: a Python literal if it parses, else a string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", help="a two-class folder or .zip (default: TFDS cats_vs_dogs)"
    )
    parser.add_argument("--weights", default="imagenet", help="'imagenet', 'none' or a .h5 path")
    parser.add_argument("--notebooks", nargs="*", help="run only these, e.g. 01 02")
    parser.add_argument("--runs-dir", default="runs", help="where run folders go (default: runs)")
    parser.add_argument(
        "-p",
        nargs=2,
        action="append",
        default=[],
        metavar=("NAME", "VALUE"),
        help="any other notebook parameter, e.g. -p EPOCHS 3",
    )
    args = parser.parse_args(argv)

    parameters = {name: _value(value) for name, value in args.p}
    if args.data_dir:
        parameters["DATA_DIR"] = str(Path(args.data_dir).expanduser().resolve())
    parameters["WEIGHTS"] = None if args.weights.lower() == "none" else args.weights

    import papermill

    # Quieter kernels: TensorFlow's C++ start-up notes would fill every notebook's output.
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    notebooks = series_notebooks(args.notebooks)
    run_dir = new_run_dir(Path(args.runs_dir))
    try:
        run_series(notebooks, parameters, run_dir)
    except papermill.PapermillExecutionError as err:
        print(f"\n{err.ename}: {err.evalue}", file=sys.stderr)
        print(f"The executed notebooks, with all their output, are in {run_dir}", file=sys.stderr)
        return 1
    print(f"\nDone. Executed notebooks, plots, models and metrics are in {run_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
