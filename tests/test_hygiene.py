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
import carry_plumbing  # noqa: E402

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


def test_plumbing_copies_match_the_module():
    stale = carry_plumbing.stale_copies()
    assert not stale, f"run `python tools/carry_plumbing.py`; stale: {stale}"


def test_a_changed_module_makes_copies_stale():
    machine = (carry_plumbing.PACKAGE / "machine.py").read_text()
    changed = machine.replace("def check_gpu() -> bool:", "def check_gpu() -> bool:  # edited")
    assert changed != machine
    source = carry_plumbing.combined_source({"machine.py": changed})
    assert carry_plumbing.stale_copies(source), "an edit of a used function must be detected"


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


def test_ci_runs_the_readme_test_command():
    ci_lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    test_command = ci_lines[-1]
    assert "pytest" in test_command
    assert f"\n{test_command}\n" in (ROOT / "README.md").read_text()


def test_requirements_admit_the_stack_we_test_on():
    """The floors are the versions the tests run on; Colab's own stack is older (README)."""
    requirements = (ROOT / "requirements.txt").read_text()
    assert re.search(r"(?m)^tensorflow>=2\.20,<", requirements)
    assert re.search(r"(?m)^keras>=3\.13,<", requirements)
    assert re.search(r"(?m)^tensorflow-datasets>=4\.9\.10,<", requirements)
