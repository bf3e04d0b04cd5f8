"""Outside a clone, a notebook installs the helpers from GitHub, at the commit it was written with.

In Colab the first code cell finds no tutorial_plumbing and runs pip on
git+https://github.com/<repository>@<commit> (pyproject.toml's [tool.tutorial]). Here there is
no network, so a local copy of the repository stands in for GitHub: git is told to fetch that
URL from this clone (url.<clone>.insteadOf, in git's environment), and pip may download
nothing (PIP_NO_INDEX). The fresh environment sees the test environment's packages
(TensorFlow, Jupyter, setuptools) through a .pth file, as Colab has its own, but not the
helpers. Notebook 01 then runs there, from a folder outside the clone, on a photo folder.
"""

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import nbformat
import pytest
from conftest import ROOT, TINY, notebook_text

sys.path.insert(0, str(ROOT / "tools"))
import pin_plumbing  # noqa: E402

HELPERS = ("tutorial_plumbing", "__editable__", "tutorial_plumbing-", "__editable___tutorial")


def site_packages(environment: Path) -> Path:
    relative = Path(sysconfig.get_path("purelib")).relative_to(sysconfig.get_path("data"))
    return environment / relative


def fresh_environment(folder: Path) -> Path:
    """A new virtual environment that sees every package of this one except the helpers."""
    environment = folder / "fresh"
    venv.EnvBuilder(with_pip=False).create(environment)
    ours = Path(sysconfig.get_path("purelib"))
    visible = folder / "visible"  # this environment's packages, without the helpers
    visible.mkdir()
    for entry in ours.iterdir():
        if not entry.name.startswith(HELPERS) and entry.suffix != ".pth":
            (visible / entry.name).symlink_to(entry)
    (site_packages(environment) / "test_environment.pth").write_text(f"{visible}\n")
    return environment


@pytest.fixture(scope="module")
def installed_run(tmp_path_factory, easy_folder):
    folder = tmp_path_factory.mktemp("install")
    environment = fresh_environment(folder)
    python = environment / "bin" / "python"
    settings = pin_plumbing.settings()
    github = f"https://github.com/{settings['github_repository']}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "IPYTHONDIR")}
    env |= {
        "PIP_NO_INDEX": "1",  # nothing from the internet
        "PIP_NO_BUILD_ISOLATION": "0",  # build with the setuptools it sees
        "GIT_CONFIG_COUNT": "1",  # GitHub is this clone
        "GIT_CONFIG_KEY_0": f"url.{ROOT.as_uri()}.insteadOf",
        "GIT_CONFIG_VALUE_0": github,
    }
    before = subprocess.run(
        [str(python), "-c", "import tutorial_plumbing"], cwd=folder, env=env, capture_output=True
    )
    assert before.returncode != 0, "the fresh environment must not have the helpers yet"
    output = folder / "run" / "01_explore_the_data.ipynb"
    output.parent.mkdir()
    parameters = {"DATA_DIR": str(easy_folder), "IMG_SIZE": TINY["IMG_SIZE"], "SEED": 7}
    command = [str(python), "-m", "papermill", str(ROOT / "notebooks" / output.name), str(output)]
    command += ["--cwd", str(output.parent), "--no-progress-bar", "--log-level", "ERROR"]
    command += ["-p", "ARTIFACTS_DIR", str(output.parent)]
    for name, value in parameters.items():
        command += ["-p", name, str(value)]
    result = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    where = subprocess.run(
        [str(python), "-c", "import tutorial_plumbing; print(tutorial_plumbing.__file__)"],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
    )
    return environment, nbformat.read(output, as_version=4), where.stdout.strip(), settings


def test_the_first_cell_installs_the_pinned_commit_from_github(installed_run):
    environment, _, module_file, settings = installed_run
    assert Path(module_file).is_relative_to(site_packages(environment))
    (record,) = site_packages(environment).glob("tutorial_plumbing-*.dist-info/direct_url.json")
    origin = json.loads(record.read_text())
    assert origin["url"] == f"https://github.com/{settings['github_repository']}"
    assert origin["vcs_info"]["vcs"] == "git"
    assert origin["vcs_info"]["commit_id"] == settings["plumbing_commit"]
    # With it, the compiled messages of the Portuguese edition (package data).
    assert list(Path(module_file).parent.glob("locale/pt_BR/LC_MESSAGES/*.mo"))


def test_the_notebook_runs_on_the_installed_helpers_and_the_install_is_quiet(installed_run):
    _, notebook, _, _ = installed_run
    install = next(cell for cell in notebook.cells if "PLUMBING = " in cell.source)
    assert install.outputs == [], "pip said something"
    text = notebook_text(notebook)
    assert "Source: " in text and "reds" in text  # part 1 read the folder with the helpers
