"""House rules that keep the notebooks Colab-ready and the repository honest."""

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import pin_plumbing  # noqa: E402
import save_lesson_code  # noqa: E402

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PORTUGUESE = sorted((ROOT / "notebooks" / "pt-BR").glob("*.ipynb"))  # generated
EVERY_NOTEBOOK = NOTEBOOKS + PORTUGUESE
SETUP_HEADING = {"notebooks": "## Setup", "pt-BR": "## Configuração"}
PIPELINE = [path for path in NOTEBOOKS if not path.name.startswith("00_")]
SHARED_PARAMETERS = {
    "DATA_DIR",
    "WEIGHTS",
    "IMG_SIZE",
    "BATCH_SIZE",
    "EPOCHS",
    "FINE_TUNE_EPOCHS",
    "ARTIFACTS_DIR",
    "SEED",
}
SETTINGS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["tutorial"]


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def colab_url(relative_path: str) -> str:
    repository, branch = SETTINGS["github_repository"], SETTINGS["github_branch"]
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{relative_path}"


def read(path):
    return nbformat.read(path, as_version=4)


def parameters_cell(notebook):
    cells = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(cells) == 1, "exactly one cell must be tagged 'parameters'"
    return cells[0]


def test_the_series_is_there():
    assert {"01", "02", "03"} <= {path.name[:2] for path in NOTEBOOKS}


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=relative)
def test_notebook_is_committed_without_outputs(path):
    for cell in read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], "clear the outputs before committing"
            assert cell.execution_count is None


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=relative)
def test_notebook_has_one_title_its_badge_and_a_setup_section(path):
    notebook = read(path)
    markdown = "\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    prose = re.sub(r"(?ms)^```.*?^```", "", markdown)  # a comment in a code example is no title
    assert len(re.findall(r"(?m)^# ", prose)) == 1, "exactly one H1"
    badges = re.findall(r"https://colab\.research\.google\.com/github/[^)\s\"]+", markdown)
    assert badges == [colab_url(relative(path))]
    assert re.search(rf"(?m)^{SETUP_HEADING[path.parent.name]}$", markdown)
    assert notebook.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=relative)
def test_parameters_cell_is_a_colab_form(path):
    cell = parameters_cell(read(path))
    assignments = [node for node in ast.parse(cell.source).body if isinstance(node, ast.Assign)]
    assert assignments, "the parameters cell assigns the parameters"
    for line in cell.source.splitlines():
        if "=" in line and not line.startswith("#"):
            assert "# @param" in line, f"not a Colab form field: {line}"
    names = {target.id for node in assignments for target in node.targets}
    assert {"ARTIFACTS_DIR", "SEED"} <= names


@pytest.mark.parametrize("path", PIPELINE, ids=lambda p: p.name)
def test_pipeline_notebooks_share_parameter_names(path):
    source = parameters_cell(read(path)).source
    names = {t.id for node in ast.parse(source).body for t in getattr(node, "targets", [])}
    assert {"DATA_DIR", "IMG_SIZE", "ARTIFACTS_DIR", "SEED"} <= names
    spelled_differently = {
        name
        for name in names - SHARED_PARAMETERS
        if any(name.replace("_", "") == shared.replace("_", "") for shared in SHARED_PARAMETERS)
    }
    assert not spelled_differently


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=relative)
def test_keras_3_idioms_only(path):
    code = "\n".join(c.source for c in read(path).cells if c.cell_type == "code")
    for old in ["ImageDataGenerator", "tf_keras", "from tensorflow import keras", "tf.keras"]:
        assert old not in code, old
    assert not re.search(r"\.save\([^)]*\.h5", code), "save models as .keras files"


# About 350 lines of code at most in a notebook: the lesson, not the plumbing (issue 22).
MOST_CODE_LINES = 350


@pytest.mark.parametrize("path", EVERY_NOTEBOOK, ids=relative)
def test_a_notebook_holds_the_lesson_and_no_copy_of_the_helpers(path):
    notebook = read(path)
    code = [c.source for c in notebook.cells if c.cell_type == "code"]
    lines = [line for source in code for line in source.splitlines() if line.strip()]
    assert len(lines) <= MOST_CODE_LINES, f"{len(lines)} lines of code"
    assert not any("plumbing" in c.metadata.get("tags", []) for c in notebook.cells)
    for source in code:  # no definition of the package's own functions is copied in
        defined = {
            n.name
            for n in ast.walk(ast.parse(re.sub(r"(?m)^(\s*)[%!]", r"\1#", source)))
            if isinstance(n, ast.FunctionDef)
        }
        assert not defined & PACKAGE_FUNCTIONS - LESSON_FUNCTIONS, defined


def functions_in(folder: Path) -> set:
    return {
        node.name
        for path in folder.glob("*.py")
        for node in ast.parse(path.read_text()).body
        if isinstance(node, ast.FunctionDef)
    }


PACKAGE_FUNCTIONS = functions_in(ROOT / "tutorial_plumbing")
# Defined in the notebooks where they are taught, and saved into tutorial_plumbing/model.py.
LESSON_FUNCTIONS = {"build_model", "make_augmentation", "unfreeze_from"}


def test_the_model_module_is_the_lesson_cells():
    assert save_lesson_code.main(["--check"]) == 0, "run `python tools/save_lesson_code.py`"
    saved = {
        n.name
        for n in ast.parse((ROOT / "tutorial_plumbing" / "model.py").read_text()).body
        if isinstance(n, ast.FunctionDef)
    }
    assert saved == LESSON_FUNCTIONS


def test_an_edited_lesson_cell_makes_the_model_module_stale(monkeypatch, tmp_path):
    notebook = read(save_lesson_code.SOURCES[0])
    for cell in notebook.cells:
        cell.source = cell.source.replace("Dropout(0.5,", "Dropout(0.4,")
    edited = tmp_path / save_lesson_code.SOURCES[0].name
    nbformat.write(notebook, edited)
    monkeypatch.setattr(save_lesson_code, "SOURCES", [edited, *save_lesson_code.SOURCES[1:]])
    assert "Dropout(0.4," in save_lesson_code.generated()
    assert save_lesson_code.main(["--check"]) == 1


def test_every_notebook_installs_the_helpers_of_this_tree_and_opens_from_its_repository():
    """The install line and the badge agree with pyproject.toml, whose commit holds this tree's
    tutorial_plumbing/: outside a clone, a notebook runs the helpers it was written with."""
    assert pin_plumbing.problems() == []
    for path in EVERY_NOTEBOOK:
        install = [c.source for c in read(path).cells if "PLUMBING = " in c.source]
        assert len(install) == 1 and pin_plumbing.install_url(SETTINGS) in install[0], path.name


def test_ruff_lint_and_format_are_clean():
    for command in (["check", "."], ["format", "--check", "."]):
        result = subprocess.run(
            [sys.executable, "-m", "ruff", *command], cwd=ROOT, capture_output=True, text=True
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("readme", "notebooks"), [("README.md", NOTEBOOKS), ("README.pt-BR.md", PORTUGUESE)]
)
def test_readme_links_every_notebook_with_its_badge(readme, notebooks):
    text = (ROOT / readme).read_text()
    for path in notebooks:
        assert colab_url(relative(path)) in text, path.name
        assert f"({relative(path)})" in text, path.name


def test_each_readme_links_the_other_language():
    assert "(README.pt-BR.md)" in (ROOT / "README.md").read_text().split("\n## ")[0]
    assert "(README.md)" in (ROOT / "README.pt-BR.md").read_text().split("\n## ")[0]


def test_every_english_notebook_has_its_portuguese_edition():
    assert [path.name for path in PORTUGUESE] == [path.name for path in NOTEBOOKS]


def test_ci_runs_the_readme_test_command_and_colabs_environment():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(quickstart) == 2, "two commands: install and run, then test"
    install_and_run, test_command = quickstart
    assert "pytest" in test_command
    assert f"\n{test_command}\n" in ci
    assert "-r requirements-dev.txt" in install_and_run and "-r requirements-dev.txt" in ci
    assert "-r requirements-colab.txt" in ci
    for policy in ("mixed_bfloat16", "mixed_float16"):  # float32 or the machine's own: step 1
        assert f"TUTORIAL_PRECISION={policy} " in ci


# Colab's GPU runtime as googlecolab/backend-info lists it (pip-freeze.gpu.txt, os-info-gpu.txt)
# at commit a724079, 2026-08-19.
COLAB = {
    "tensorflow": "2.20.0",
    "keras": "3.13.2",
    "tensorflow-datasets": "4.9.10",
    "numpy": "2.1.3",
    "matplotlib": "3.10.0",
    "pillow": "11.3.0",
    "scikit-learn": "1.6.1",
    "ipykernel": "6.17.1",
}
COLAB_COMMIT = "a72407924822ea377410b69f0a290150bcb5c9c2"


def test_the_colab_environment_pins_colabs_versions_and_names_its_source():
    pins = (ROOT / "requirements-colab.txt").read_text()
    for name, version in COLAB.items():
        assert re.search(rf"(?m)^{re.escape(name)}=={re.escape(version)}$", pins), name
    assert COLAB_COMMIT in pins and "2026-08-19" in pins
    versions = (ROOT / "README.md").read_text().split("\n## Versions\n")[1].split("\n## ")[0]
    assert COLAB_COMMIT[:7] in versions and "2026-08-19" in versions
    for name in ("tensorflow", "keras", "tensorflow-datasets"):
        assert COLAB[name] in versions, name
    assert "Python 3.13" in versions


def test_requirements_admit_the_stack_we_test_on_and_colabs():
    """The helpers' dependencies (pyproject.toml) admit what the tests run on, and Colab's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dependencies = "\n".join(project["dependencies"])
    assert re.search(r"(?m)^tensorflow>=2\.20,<", dependencies)
    assert re.search(r"(?m)^keras>=3\.13,<", dependencies)
    assert re.search(r"(?m)^tensorflow-datasets>=4\.9\.10,<", dependencies)
    # A clone installs the helpers with them: the README's quickstart needs nothing else.
    assert re.search(r"(?m)^-e \.$", (ROOT / "requirements.txt").read_text())
    assert re.search(r"(?m)^-e \.$", (ROOT / "requirements-colab.txt").read_text())
