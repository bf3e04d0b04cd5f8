"""The Portuguese edition: generated from the English, complete, current, and it runs.

tools/translate.py writes notebooks/pt-BR/ from the English notebooks and the catalogs in
translations/pt-BR/. These tests fail on a missing or stale translation, on a generated
notebook that differs from what the tool writes now, and on code that is not the English code.
"""

import ast
import json
import re
import sys
from pathlib import Path

import nbformat
import papermill
import pytest
from conftest import TINY, imagenet_weights, kernel_startup, run_notebooks

import run_series

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import translate  # noqa: E402

ENGLISH = translate.english_notebooks()


def test_every_text_has_a_current_translation():
    assert translate.problems() == [], "run `python tools/translate.py` and translate the list"


def test_catalogs_and_generated_notebooks_are_what_the_tool_writes_now():
    stale = [str(path.relative_to(ROOT)) for path in translate.stale_files()]
    assert stale == [], "run `python tools/translate.py`"


def test_an_english_edit_without_its_translation_is_caught(tmp_path, monkeypatch):
    """A changed paragraph and a changed message of the helpers each need a translator again."""
    source = translate.NOTEBOOKS / "02_feature_extraction.ipynb"
    notebook = nbformat.read(source, as_version=4)
    markdown = next(cell for cell in notebook.cells if cell.cell_type == "markdown")
    markdown.source += "\n\nA sentence nobody has translated yet."
    edited = tmp_path / source.name
    nbformat.write(notebook, edited)
    helpers = tmp_path / "tutorial_plumbing"
    helpers.mkdir()
    machine = (translate.PACKAGE / "machine.py").read_text()
    assert '"Precision: {policy}, because {reason}."' in machine
    (helpers / "machine.py").write_text(machine.replace("because {reason}.", "since {reason}."))
    monkeypatch.setattr(translate, "PACKAGE", helpers)
    wanted = translate.wanted_entries([edited]) | {
        translate.PLUMBING_CATALOG: translate.package_messages()
    }
    for path, text in [
        (translate.catalog_path(edited), "A sentence nobody has translated yet."),
        (translate.PLUMBING_CATALOG, "Precision: {policy}, since {reason}."),
    ]:
        entry = translate.updated_catalog(path, wanted[path]).find(text)
        assert entry is not None, text
        assert not entry.msgstr or "fuzzy" in entry.flags, "a stale translation must be flagged"


def test_the_helpers_speak_portuguese_after_the_one_call():
    """use_language("pt-BR"): the compiled catalog, and numbers written the Brazilian way."""
    from tutorial_plumbing import messages

    template = "Frozen store: {images:,} images x {shape} float16 = {mib:,.1f} MiB in {folder}"
    values = {"images": 23262, "shape": "14 x 14 x 512", "mib": 4453.5, "folder": "artifacts"}
    assert messages.say(template, **values) == (
        "Frozen store: 23,262 images x 14 x 14 x 512 float16 = 4,453.5 MiB in artifacts"
    )
    try:
        messages.use_language("pt-BR")
        said = messages.say(template, **values)
    finally:
        messages.use_language("en")
    assert said.startswith("Cache das camadas congeladas") or "imagens" in said, said
    assert "23.262" in said and "4.453,5" in said and "14 x 14 x 512" in said


def code_only(source: str) -> str:
    """A code cell's syntax tree with every string emptied: what runs, not what it says."""
    tree = ast.parse(translate.python_source(source))
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            node.value = ""
        if isinstance(node, ast.JoinedStr):
            node.values = [v for v in node.values if isinstance(v, ast.FormattedValue)]
    return ast.dump(tree)


@pytest.mark.parametrize("english", ENGLISH, ids=lambda p: p.name)
def test_a_generated_notebook_runs_the_same_code(english):
    """The same code, but for the one call that makes the helpers speak Portuguese."""
    portuguese = nbformat.read(translate.OUTPUT / english.name, as_version=4)
    english = nbformat.read(english, as_version=4)
    assert [c.cell_type for c in portuguese.cells] == [c.cell_type for c in english.cells]
    calls = 0
    for ours, theirs in zip(english.cells, portuguese.cells):
        assert ours.metadata == theirs.metadata
        if ours.cell_type == "code":
            added = (translate.USE_LANGUAGE_IMPORT, translate.USE_LANGUAGE)
            kept = [line for line in theirs.source.split("\n") if line not in added]
            calls += len(theirs.source.split("\n")) - len(kept)
            assert code_only("\n".join(kept)) == code_only(ours.source)
    assert calls == 2, "one import and one call of use_language"


@pytest.fixture(scope="module")
def portuguese_folder_run(tmp_path_factory, easy_folder):
    """The Portuguese 01 to 04, run as a reader would: `run_series.py --lang pt-BR`.

    With the default WEIGHTS = "imagenet" (official-format files in KERAS_HOME).
    """
    runs = tmp_path_factory.mktemp("pt_BR")
    parameters = dict(TINY, EPOCHS=10, USE_FEATURE_CACHE=True)
    del parameters["WEIGHTS"]
    argv = ["--lang", "pt-BR", "--notebooks", "01", "02", "03", "04"]
    argv += ["--data-dir", str(easy_folder), "--runs-dir", str(runs)]
    for name, value in parameters.items():
        argv += ["-p", name, repr(value)]
    drawn = runs.parent / "drawn.jsonl"
    startup = imagenet_weights("VGG16") | {"drawn.py": RECORD_DRAWN_TEXT.format(path=str(drawn))}
    with kernel_startup(runs.parent / "ipython", startup):
        assert run_series.main(argv) == 0
    (run_dir,) = runs.iterdir()
    return run_dir


# Every text of every figure a notebook shows or saves (titles, labels, legends, tick labels),
# one JSON list per figure: what a reader sees drawn.
RECORD_DRAWN_TEXT = """
import json

import matplotlib.figure
import matplotlib.pyplot as plt
import matplotlib.text

_path = {path!r}


def _record(figure):
    figure.canvas.draw()
    texts = [t.get_text() for t in figure.findobj(matplotlib.text.Text) if t.get_visible()]
    with open(_path, "a") as file:
        file.write(json.dumps(texts) + "\\n")


_savefig, _show = matplotlib.figure.Figure.savefig, plt.show


def _saving(self, *args, **kwargs):
    _record(self)
    return _savefig(self, *args, **kwargs)


def _showing(*args, **kwargs):
    for number in plt.get_fignums():
        _record(plt.figure(number))
    return _show(*args, **kwargs)


matplotlib.figure.Figure.savefig, plt.show = _saving, _showing
"""


def test_the_portuguese_series_learns_the_folder(portuguese_folder_run):
    run_dir = portuguese_folder_run
    for english in ENGLISH[1:5]:
        executed = nbformat.read(run_dir / english.name, as_version=4)
        headings = [cell.source.split("\n")[0] for cell in executed.cells]
        assert "## Configuração" in headings, english.name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["class_names"] == ["blues", "reds"]
    assert metrics["test_accuracy"] >= 0.9
    evaluation = json.loads((run_dir / "evaluation.json").read_text())
    assert evaluation["test"]["accuracy"] == pytest.approx(metrics["test_accuracy"])


def translation_of(english: str) -> str:
    catalog = translate.load_catalog(translate.CATALOGS / "plumbing.po")
    return catalog.find(english).msgstr


def test_a_bad_data_dir_gets_a_portuguese_message_in_one_line(tmp_path):
    missing = tmp_path / "no_such_folder"
    with pytest.raises(papermill.PapermillExecutionError) as error:
        run_notebooks(tmp_path / "run", ["01"], dict(TINY, DATA_DIR=str(missing)), language="pt-BR")
    assert error.value.ename == "CannotContinue"
    message = translation_of(
        "DATA_DIR does not exist: {path}\nWhat to do: check the path. In Colab, paths on "
        "Google Drive start with /content/drive/MyDrive/."
    )
    assert message and not message.startswith("DATA_DIR does not exist")
    assert error.value.evalue == message.format(path=missing)
    executed = nbformat.read(tmp_path / "run" / "01_explore_the_data.ipynb", as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert len(errors) == 1 and len(errors[0].traceback) == 1


def scaled(value, factor):
    """Every measured float in a results file times `factor`: another run of the benchmark."""
    if isinstance(value, dict):
        return {key: scaled(item, factor) for key, item in value.items()}
    if isinstance(value, list):
        return [scaled(item, factor) for item in value]
    return value * factor if isinstance(value, float) else value


def test_new_speed_figures_need_no_new_translation():
    """The README's measured figures change with every benchmark run, the wording does not."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import speed_report as speed
    finally:
        sys.path.pop(0)
    (results,) = sorted((ROOT / "benchmarks" / "results").glob("*.json"))
    report = json.loads(results.read_text())
    english = (ROOT / "README.md").read_text()
    shown = speed.render_run(report, results.name)
    assert shown in english
    another_run = speed.render_run(scaled(report, 1.37), results.name)
    assert another_run != shown
    units = translate.document_units(english)
    changed = translate.document_units(english.replace(shown, another_run))
    assert [u[0] for u in changed] == [u[0] for u in units]  # the same entries to translate
    figures = [n for _, numbers, _ in changed if numbers is not None for n in numbers]
    before = [n for _, numbers, _ in units if numbers is not None for n in numbers]
    assert figures != before  # the new figures fill the same placeholders


@pytest.mark.parametrize(
    ("english", "portuguese"),
    [("18,610", "18.610"), ("6.9", "6,9"), ("1,234.5", "1.234,5"), ("252", "252")]
    + [("2.21.0", "2.21.0")],  # a version stays a version
)
def test_measured_figures_are_written_the_brazilian_way(english, portuguese):
    assert translate.localized_number(english) == portuguese


def test_the_portuguese_readme_shows_every_measured_figure_localized():
    def measured(text):
        return text[text.index(translate.MEASURED[0]) : text.index(translate.MEASURED[1])]

    english = measured((ROOT / "README.md").read_text())
    portuguese = measured((ROOT / f"README.{translate.LANGUAGE}.md").read_text())
    for number in translate.NUMBER.findall(english):
        assert translate.localized_number(number) in portuguese, number
    assert "18.610" in portuguese and "18,610" not in portuguese  # cats_vs_dogs' training split


# Words a Portuguese reader may meet in English: names in code (parameters, layers, files,
# classes, Keras's own metric keys in its progress lines), product names and units.
CODE_NAMES = {
    "train", "validation", "test", "reds", "blues", "keras", "tensorflow", "tflite",
    "savedmodel", "gpu", "cpu", "colab", "float", "mib", "gib", "kib", "px", "roc", "auc",
    "grad", "cam", "vgg", "imagenet", "tfds", "png", "jpeg", "jpg", "zip", "json", "loss",
    "accuracy", "val", "step", "epoch", "ms", "eta", "google", "drive", "python",
    "probability",  # the output layer's name
}  # fmt: skip
KERAS_PROGRESS = re.compile(r"^\s*(Epoch \d+/\d+|\d+/\d+ .*(step|ETA).*)$")
# 1,234,567 (two or more groups) or 0.54, 9.2207: never Brazilian. 131.585 is (thousands), and
# so is 1,000 (one, three decimals): a lone comma group is left alone. A value as the reader
# types it in code (THRESHOLD = 0.5) stays as code.
AMERICAN_NUMBER = re.compile(
    r"(?<![\w./,-])(?<!= )(\d{1,3}(,\d{3}){2,}|\d+\.(?!\d{3}(?!\d))\d+)(?![\w./-])"
)


def english_only_words() -> set:
    """Words the English catalogs use and the Portuguese translations never do."""
    english, portuguese = set(), set()
    for path in translate.CATALOGS.glob("*.po"):
        for entry in translate.load_catalog(path):
            english |= set(re.findall(r"[a-z]{3,}", entry.msgid.lower()))
            portuguese |= set(re.findall(r"[a-zà-ÿ]{3,}", entry.msgstr.lower()))
    return english - portuguese - CODE_NAMES


def readers_text(run_dir: Path) -> list:
    """Each line a pt-BR run printed, and each text it drew, without Keras's progress lines."""
    lines = []
    for path in sorted(run_dir.glob("[0-9][0-9]_*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                data = output.get("data", {})  # a plot shows as its image, not its text
                text = output.get("text", "") or (
                    "" if "image/png" in data else data.get("text/plain", "")
                )
                for line in "".join(text).splitlines():
                    line = run_series.visible_text(line)
                    if line and not KERAS_PROGRESS.match(line):
                        lines.append((path.name, line))
    drawn = run_dir.parent.parent / "drawn.jsonl"
    for figure in drawn.read_text().splitlines():
        lines += [("a plot", text) for text in json.loads(figure) if text.strip()]
    return lines


def plain_words(line: str) -> list:
    """The words of a line, leaving out names in code: paths, identifiers, CAPITALS."""
    words = []
    for token in re.split(r"[\s,;:()\[\]{}'\"=<>|*]+", line):
        if "/" in token or "_" in token or re.search(r"\d", token) or token.isupper():
            continue
        words += re.findall(r"[a-zà-ÿ]+", token.lower())  # "extração" is not "extra"
    return words


def test_a_portuguese_run_prints_and_draws_no_english_and_no_american_number(
    portuguese_folder_run,
):
    english = english_only_words()
    lines = readers_text(portuguese_folder_run)
    assert len(lines) > 50, "the run printed and drew its usual output"
    found = [(where, line) for where, line in lines if set(plain_words(line)) & english]
    assert not found, "English in the Portuguese run:\n" + "\n".join(map(str, found[:20]))
    american = [(where, line) for where, line in lines if AMERICAN_NUMBER.search(line)]
    assert not american, "American numbers:\n" + "\n".join(map(str, american[:20]))


EDITIONS = {
    "en": [ROOT / "README.md", ROOT / "data" / "README.md", *ENGLISH],
    translate.LANGUAGE: [
        ROOT / f"README.{translate.LANGUAGE}.md",
        ROOT / "data" / f"README.{translate.LANGUAGE}.md",
        *sorted(translate.OUTPUT.glob("[0-9][0-9]_*.ipynb")),
    ],
}
# "the README's *Performance* section", "see *Two ways to train* below", "a seção *Desempenho*".
SECTION_REFERENCE = re.compile(r"(?:README's|[Ss]ee|[Vv]eja|seção) \*([^*\n]+)\*")
LINK = re.compile(r"\]\(([^)\s]+)\)")


def markdown_of(path: Path) -> str:
    if path.suffix == ".ipynb":
        notebook = nbformat.read(path, as_version=4)
        return "\n\n".join(c.source for c in notebook.cells if c.cell_type == "markdown")
    return path.read_text()


def headings(text: str) -> set:
    prose = re.sub(r"(?ms)^```.*?^```", "", text)
    return {heading.strip() for heading in re.findall(r"(?m)^#{1,6} (.+)$", prose)}


@pytest.mark.parametrize("language", list(EDITIONS))
def test_every_link_and_section_reference_lands_in_the_same_edition(language):
    readme = EDITIONS[language][0]
    for path in EDITIONS[language]:
        text = markdown_of(path)
        known = headings(text) | headings(readme.read_text())
        for section in SECTION_REFERENCE.findall(text):
            assert section in known, (
                f"{path.name}: *{section}* is no heading here or in {readme.name}"
            )
        for target in LINK.findall(text):
            if target.startswith(("http://", "https://", "#")):
                continue
            linked = (path.parent / target.split("#")[0]).resolve()
            assert linked.exists(), f"{path.name}: {target} does not exist"
            if language != "en" and path != readme:  # the Portuguese files lead to Portuguese
                assert (
                    translate.LANGUAGE in linked.name
                    or translate.LANGUAGE in str(linked.parent)
                    or linked.name in {"LICENSE"}
                ), f"{path.name}: {target}"
