"""Generate the Brazilian Portuguese edition from the English one and gettext catalogs.

    python tools/translate.py            # update the catalogs, then write notebooks/pt-BR/,
                                         # README.pt-BR.md and the helpers' compiled catalog
    python tools/translate.py --check    # exit 1 when a translation is missing or stale, or a
                                         # generated file differs (the tests do this too)
    python tools/translate.py --missing  # list what needs a translator, catalog by catalog

The English notebooks, README.md and the helpers' messages are the source; nobody edits
notebooks/pt-BR/, README.pt-BR.md or the compiled catalog by hand. Every text a reader meets
is one entry of a gettext catalog in translations/pt-BR/: one per notebook and document, and
plumbing.po for the helpers (the tutorial_plumbing package). An entry's msgid is the English it
translates:
- a markdown cell, block by block (the paragraphs, lists and code examples between blank lines);
- a comment in a code cell, and the title of a `# @title` form;
- a string a reader sees in a notebook: one that reads like a sentence, or that is printed,
  raised in a message or drawn in a plot (see `reader_sees`). Docstrings are for developers
  and stay English;
- a message of the helpers: the template of each say("...") in tutorial_plumbing/. plumbing.po
  is compiled into tutorial_plumbing/locale/, and a Portuguese notebook's one call
  use_language("pt-BR") makes the helpers speak it at run time: their code is never rewritten.
When an English text changes, its entry no longer matches. The new text gets an empty
translation (with the old translation as a "fuzzy" suggestion), and --check fails until a
translator writes it. A notebook's code stays the same: only the language of these texts
changes (and the Portuguese one calls use_language), so it runs exactly like its English source.
"""

import argparse
import ast
import copy
import difflib
import inspect
import io
import re
import subprocess
import sys
import tempfile
import tokenize
from pathlib import Path

import nbformat
import polib

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
LANGUAGE = "pt-BR"
CATALOGS = ROOT / "translations" / LANGUAGE
OUTPUT = NOTEBOOKS / LANGUAGE
# Markdown documents translated like notebook markdown: {English: generated}.
DOCUMENTS = {
    ROOT / "README.md": ROOT / f"README.{LANGUAGE}.md",
    ROOT / "data" / "README.md": ROOT / "data" / f"README.{LANGUAGE}.md",
}
NOTEBOOK_LINK = re.compile(r"(\]\(|/blob/[^/]+/)notebooks/(?!" + LANGUAGE + r"/)")
DATA_README_LINK = re.compile(r"\]\(data/README\.md(#[^)]*)?\)")
PACKAGE = ROOT / "tutorial_plumbing"
COMPILED = PACKAGE / "locale" / LANGUAGE.replace("-", "_") / "LC_MESSAGES" / "tutorial_plumbing.mo"
# The one call that makes the helpers speak Portuguese: the generated notebooks make it in the
# cell that starts TensorFlow (tagged quiet-start), before any helper says anything.
QUIET_START_TAG = "quiet-start"
USE_LANGUAGE_IMPORT = "from tutorial_plumbing.messages import use_language"
USE_LANGUAGE = f'use_language("{LANGUAGE}")  # as mensagens das funções auxiliares, em português'
# Calls whose string arguments a reader sees, even when they are single words.
SHOWN_BY = {
    "print",
    "CannotContinue",
    "title",
    "set_title",
    "suptitle",
    "xlabel",
    "set_xlabel",
    "ylabel",
    "set_ylabel",
    "xticks",
    "yticks",
    "text",
    "show_images",
    "plot_history",
}
SHOWN_AS = {"label", "title", "titles"}  # keyword arguments a reader sees
TITLE = re.compile(r"^(\s*# @title )(.*?)( \{.*\})?\s*$")
BADGE = re.compile(
    r"(https://colab\.research\.google\.com/github/[^)\s\"]*?/notebooks/)([^/)\s\"]+)"
)


# ---------------------------------------------------------------------------------------------
# What a reader meets: the units of translation


def markdown_blocks(text: str) -> list:
    """A markdown cell split at blank lines (outside ``` fences): [(block, what follows it)].

    Joining every block with what follows it gives the cell back exactly.
    """
    spans, offset, fenced, current = [], 0, False, None
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            fenced = not fenced
        if line.strip() or fenced:
            current = [offset if current is None else current[0], offset + len(line)]
        elif current is not None:
            spans.append(current)
            current = None
        offset += len(line) + 1
    if current is not None:
        spans.append(current)
    starts = [start for start, _ in spans] + [len(text)]
    blocks = [("", text[: starts[0]])] if starts[0] else []
    for (start, end), following in zip(spans, starts[1:]):
        blocks.append((text[start:end], text[end:following]))
    return blocks


def python_source(cell_source: str) -> str:
    """A code cell as Python: IPython magics (%pip, !ls) become `pass` (same line numbers)."""
    return re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", cell_source)


def string_template(node) -> str:
    """The text of a string literal; an f-string keeps its {expressions} as placeholders."""
    if isinstance(node, ast.Constant):
        return node.value
    parts = []
    for value in node.values:
        if isinstance(value, ast.Constant):
            parts.append(value.value.replace("{", "{{").replace("}", "}}"))
        else:
            conversion = "" if value.conversion == -1 else "!" + chr(value.conversion)
            spec = ""
            if value.format_spec is not None:
                spec = ":" + "".join(
                    v.value if isinstance(v, ast.Constant) else "{" + ast.unparse(v.value) + "}"
                    for v in value.format_spec.values
                )
            parts.append("{" + ast.unparse(value.value) + conversion + spec + "}")
    return "".join(parts)


def placeholders(template: str) -> list:
    return sorted(
        re.findall(r"(?<!\{)\{(?!\{)[^{}]*\}", template.replace("{{", "").replace("}}", ""))
    )


# Containers a text passes through on its way to a call that shows it.
# `x or "none"`, `["augmented"] * 8`, `"a" + b`: the text goes on to what shows it.
PASSED_THROUGH = (ast.List, ast.Tuple, ast.IfExp, ast.Dict, ast.BoolOp, ast.BinOp)


def words_in(node) -> list:
    if isinstance(node, ast.JoinedStr):  # the literal parts, not the {expressions}
        letters = " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
    else:
        letters = node.value
    return re.findall(r"[A-Za-z]{2,}", letters)


def reads_as_text(node) -> bool:
    """A phrase (two words or more with a space between them), or a label with a value
    (`f"Skipped: {path}"`): never a name, a key or a path."""
    if isinstance(node, ast.JoinedStr):
        letters = " ".join(v.value for v in node.values if isinstance(v, ast.Constant))
        labelled = any(isinstance(v, ast.FormattedValue) for v in node.values)
        own = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
        if labelled and words_in(node) and " " in own:
            return True
    else:
        letters = node.value
    return len(words_in(node)) >= 2 and " " in letters.strip()


def same_column(node, ancestors) -> list:
    """The literals at the same place as `node` in the other rows of a table of tuples:
    (("blank", a), ("too small", b)) -> for "blank", ["too small"]."""
    if len(ancestors) < 2 or not isinstance(ancestors[-1], ast.Tuple):
        return []
    row, table = ancestors[-1], ancestors[-2]
    if not isinstance(table, ast.Tuple | ast.List):
        return []
    column = row.elts.index(node)
    return [
        other.elts[column]
        for other in table.elts
        if other is not row and isinstance(other, ast.Tuple) and len(other.elts) > column
    ]


def is_key(node, parent) -> bool:
    """Compared with or looked up: a key, not text for the reader."""
    if isinstance(parent, ast.Compare | ast.Subscript):
        return True
    return isinstance(parent, ast.Dict) and any(node is key for key in parent.keys)


def is_string(node) -> bool:
    return isinstance(node, ast.JoinedStr) or (
        isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def reader_sees(node, ancestors) -> bool:
    """Whether a string literal is text for the reader, not a name, key, path or format.

    It is when it reads as a phrase, when a call that shows text gets it (directly or inside
    a list, tuple, dict value or conditional), or when it sits in a list, tuple or dict of
    texts beside a phrase, or is one answer of a conditional whose other answer is a phrase
    (one collection of labels is all text or none).
    """
    parent = ancestors[-1] if ancestors else None
    if not words_in(node) or is_key(node, parent):
        return False
    for index in range(len(ancestors) - 1, -1, -1):
        holder = ancestors[index]
        if isinstance(holder, ast.keyword):
            if holder.arg in SHOWN_AS:
                return True
            if holder is parent:  # textcoords="offset points": an option, not text
                return False
            break
        if isinstance(holder, ast.Call):
            function = holder.func
            name = (
                function.attr
                if isinstance(function, ast.Attribute)
                else getattr(function, "id", "")
            )
            if name in SHOWN_BY:
                return True
            break
        if not isinstance(holder, PASSED_THROUGH):
            break
        if index < len(ancestors) - 1 and is_key(ancestors[index + 1], holder):
            break
    siblings = {ast.List: "elts", ast.Dict: "values"}  # not tuples: `a, b = "x", "y"`
    if isinstance(parent, ast.IfExp):
        siblings = [parent.body, parent.orelse]
    else:
        siblings = getattr(parent, siblings.get(type(parent), ""), [])
    siblings = list(siblings) + same_column(node, ancestors)
    if siblings:
        looks_like_a_name = isinstance(node, ast.Constant) and re.search(r"[\d_]", node.value)
        if not looks_like_a_name and any(
            is_string(s) and s is not node and reads_as_text(s) for s in siblings
        ):
            return True
    return reads_as_text(node)


def docstrings(tree) -> list:
    """The docstring nodes of the functions and classes defined in a notebook's cell."""
    return [
        node.body[0].value
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.ClassDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
        and isinstance(node.body[0].value.value, str)
    ]


def code_strings(tree) -> list:
    """(node, template) for each string literal a reader sees, outermost literals only.

    In a notebook, the docstrings of the functions the lesson defines are text for the reader
    too: their template is the docstring without its indentation (inspect.cleandoc).
    """
    found = [(node, inspect.cleandoc(node.value)) for node in docstrings(tree)]

    def visit(node, ancestors):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            return  # a docstring (above) or a bare string
        if is_string(node):
            if reader_sees(node, ancestors):
                found.append((node, string_template(node)))
            return
        for child in ast.iter_child_nodes(node):
            visit(child, ancestors + [node])

    visit(tree, [])
    keys = {
        node.value
        for parent in ast.walk(tree)
        for node in ast.iter_child_nodes(parent)
        if isinstance(node, ast.Constant) and is_key(node, parent)
    }
    for node, text in found:
        if text in keys:  # translated here, it would no longer match there
            raise SystemExit(
                f"{text!r} is both shown to the reader and compared or looked up as a key "
                f"(line {node.lineno}). Keep the text apart from the key."
            )
    return found


def code_comments(source: str) -> list:
    """(line, column, prefix, text, suffix) of each comment a reader should read in its language."""
    found = []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        line, column = token.start
        title = TITLE.match(token.string)
        if title:
            found.append((line, column, title.group(1).strip(), title.group(2), title.group(3)))
            continue
        if re.match(r"#\s*(@param|noqa|type:)", token.string):
            continue
        body = re.sub(r"\s*# @param.*$", "", token.string)
        prefix = re.match(r"#\s*", body).group(0)
        if body[len(prefix) :].strip():
            found.append((line, column, prefix, body[len(prefix) :], token.string[len(body) :]))
    return found


def cell_units(cell) -> list:
    """Each text of one cell, in order."""
    if cell.cell_type == "markdown":
        return [block for block, _ in markdown_blocks(cell.source) if not is_badge(block)]
    if cell.cell_type != "code":
        return []
    source = python_source(cell.source)
    texts = [text for _, text in code_strings(ast.parse(source))]
    return texts + [c[3] for c in code_comments(source)]


def package_messages() -> dict:
    """{template: [module file names]} for every say("...") in the helpers."""
    found = {}
    for path in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "say"):
                continue
            template = node.args[0] if node.args else None
            if not (isinstance(template, ast.Constant) and isinstance(template.value, str)):
                raise SystemExit(
                    f"{path.name}, line {node.lineno}: say() takes its English as one literal "
                    "(the key of its translation), never text built at run time."
                )
            names = found.setdefault(template.value, [])
            if path.name not in names:
                names.append(path.name)
    return found


def is_badge(block: str) -> bool:
    """The Colab button alone (its link changes with the file, its text is Colab's own), or
    nothing to translate."""
    return not block.strip() or (
        bool(BADGE.search(block)) and block.lstrip().startswith("[![Open In Colab]")
    )


# ---------------------------------------------------------------------------------------------
# Writing a translated cell


def python_literal(template: str, formatted: bool) -> str:
    """A double-quoted Python literal (an f-string when formatted) for a translated template."""

    def escape(text):
        return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    if not formatted:
        return '"' + escape(template) + '"'
    pieces = re.split(r"((?<!\{)\{(?!\{)[^{}]*\})", template)
    return 'f"' + "".join(p if i % 2 else escape(p) for i, p in enumerate(pieces)) + '"'


def wrapped_literal(template: str, formatted: bool, indent: int, width: int = 100) -> str:
    """Adjacent literals, one per line, breaking after spaces outside {placeholders}."""
    words = re.findall(r"(?:\{[^{}]*\}|[^\s{}]|\{\{|\}\})+\s*|\s+", template)
    lines, current = [], ""
    for word in words:
        candidate = current + word
        if current and indent + len(python_literal(candidate, formatted)) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    lines.append(current)
    pieces = [python_literal(line, formatted and "{" in line.replace("{{", "")) for line in lines]
    return ("\n" + " " * indent).join(pieces)


def char_column(line: str, byte_column: int) -> int:
    return len(line.encode()[:byte_column].decode())


def translate_code(source: str, lookup) -> str:
    """The cell with each reader-facing string and comment replaced by its translation."""
    lines = source.split("\n")
    edits = []  # (start line, start col, end line, end col, new text); lines 1-based, chars
    python = python_source(source)
    py_lines = python.split("\n")
    tree = ast.parse(python)
    documented = {id(node) for node in docstrings(tree)}
    for node, text in code_strings(tree):
        start = char_column(py_lines[node.lineno - 1], node.col_offset)
        end = char_column(py_lines[node.end_lineno - 1], node.end_col_offset)
        formatted = isinstance(node, ast.JoinedStr)
        if id(node) in documented:  # a docstring: triple quotes, its lines indented as before
            indented = (
                lookup(text)
                .replace("\n", "\n" + " " * start)
                .replace("\n" + " " * start + "\n", "\n\n")
            )
            closing = "\n" + " " * start if node.value.rstrip(" ").endswith("\n") else ""
            literal = '"""' + indented.replace('"""', '\\"\\"\\"') + closing + '"""'
        elif node.end_lineno > node.lineno:  # it spanned lines inside brackets: wrap it again
            literal = wrapped_literal(lookup(text), formatted, start)
        else:
            literal = python_literal(lookup(text), formatted)
        edits.append((node.lineno, start, node.end_lineno, end, literal))
    for line, column, prefix, text, suffix in code_comments(python):
        spacing = " " if prefix == "# @title" else ""
        new = prefix + spacing + lookup(text) + (suffix or "")
        edits.append((line, column, line, len(lines[line - 1]), new))
    for first, start, last, end, new in sorted(edits, reverse=True):
        head, tail = lines[first - 1][:start], lines[last - 1][end:]
        lines[first - 1 : last] = [head + new + tail]
    return "\n".join(lines)


def translate_cell(cell, lookup, notebook_name: str):
    translated = copy.deepcopy(cell)
    if cell.cell_type == "markdown":
        text = "".join(
            (block if is_badge(block) else lookup(block)) + separator
            for block, separator in markdown_blocks(cell.source)
        )
        translated.source = BADGE.sub(rf"\g<1>{LANGUAGE}/\g<2>", text)
    elif cell.cell_type == "code":
        translated.source = translate_code(cell.source, lookup)
        if QUIET_START_TAG in cell.metadata.get("tags", []):
            lines = translated.source.split("\n")
            imports = max(i for i, line in enumerate(lines) if line.startswith("from "))
            lines.insert(imports + 1, USE_LANGUAGE_IMPORT)
            translated.source = "\n".join(lines + [USE_LANGUAGE])
    return translated


# ---------------------------------------------------------------------------------------------
# Catalogs


def catalog_path(notebook: Path) -> Path:
    return CATALOGS / f"{notebook.stem}.po"


PLUMBING_CATALOG = CATALOGS / "plumbing.po"


def english_notebooks() -> list:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def document_path(document: Path) -> Path:
    """README.md's catalog is README.po; data/README.md's, data_README.po."""
    return CATALOGS / (str(document.relative_to(ROOT).with_suffix("")).replace("/", "_") + ".po")


# Between these markers a document holds measured figures that a program rewrites (the
# README's speed results, from benchmarks/speed.py). There an entry is the wording with each
# number as a placeholder, {n0}, {n1}, ...: a new measurement needs no new translation, and
# the translation always shows the numbers the English shows. Prose there is one line per
# paragraph, since the program re-wraps it to the width of its numbers.
MEASURED = ("<!-- speed:results:begin -->", "<!-- speed:results:end -->")
# Not the 16 of VGG16, nor a number that is part of a name (2.80GHz, 2cpu); 6.9x is one.
NUMBER = re.compile(r"(?<![A-Za-z_\d.,])\d++(?:[.,]\d++)*+(?![A-Za-wyz_])")


def numbers_as_placeholders(block: str) -> str:
    """The block with {n0}, {n1}, ... in place of its numbers (and its braces escaped)."""
    escaped = block.replace("{", "{{").replace("}", "}}")
    pieces = NUMBER.split(escaped)
    return "".join(
        piece + (f"{{n{index}}}" if index < len(pieces) - 1 else "")
        for index, piece in enumerate(pieces)
    )


def localized_number(number: str) -> str:
    """A measured figure as Brazilians write it: 18,610 -> 18.610 and 6.9 -> 6,9.

    Version numbers (2.21.0: more than one dot) and whole numbers stay as they are.
    """
    if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", number):
        return number.replace(",", " ").replace(".", ",").replace(" ", ".")
    if re.fullmatch(r"\d+\.\d+", number):
        return number.replace(".", ",")
    return number


def document_units(text: str) -> list:
    """(msgid, numbers or None, separator) for each block of a markdown document."""
    units, measured = [], False
    for block, separator in markdown_blocks(text):
        measured = measured or MEASURED[0] in block
        if measured:
            numbers = NUMBER.findall(block)
            if not block.lstrip().startswith("|"):  # prose: its line breaks move with the numbers
                block = " ".join(line.strip() for line in block.split("\n"))
            template = numbers_as_placeholders(block)
            units.append((template, numbers, separator))
        else:
            units.append((block, None, separator))
        measured = measured and MEASURED[1] not in block
    return units


def translated_document(document: Path) -> str:
    """A markdown document in the other language; its links lead to the translated notebooks."""
    found = {e.msgid: e.msgstr for e in load_catalog(document_path(document)) if usable(e)}

    def lookup(block, numbers):
        if not block.strip():
            return block
        if block not in found:
            raise SystemExit(f"{document.name}: no translation for {block[:70]!r}")
        if numbers is None:
            return found[block]
        figures = {f"n{i}": localized_number(number) for i, number in enumerate(numbers)}
        return found[block].format(**figures)

    text = "".join(
        lookup(block, numbers) + separator
        for block, numbers, separator in document_units(document.read_text())
    )
    text = NOTEBOOK_LINK.sub(rf"\g<1>notebooks/{LANGUAGE}/", text)
    return DATA_README_LINK.sub(rf"](data/README.{LANGUAGE}.md\g<1>)", text)


def wanted_entries(notebooks=None) -> dict:
    """{catalog path: {msgid: [file names]}} for the English notebooks (and documents, and the
    helpers' messages, when `notebooks` is None) now."""
    wanted = {}
    if notebooks is None:
        for document in DOCUMENTS:
            units = document_units(document.read_text())
            blocks = [block for block, _, _ in units if block.strip()]
            wanted[document_path(document)] = {block: [document.name] for block in blocks}
        wanted[PLUMBING_CATALOG] = package_messages()
    for path in notebooks or english_notebooks():
        notebook = nbformat.read(path, as_version=4)
        entries = wanted.setdefault(catalog_path(path), {})
        for cell in notebook.cells:
            for msgid in cell_units(cell):
                entries.setdefault(msgid, [])
                if path.name not in entries[msgid]:
                    entries[msgid].append(path.name)
    return wanted


def usable(entry) -> bool:
    """A translation the generated files may use: written, and not marked fuzzy."""
    return bool(entry.msgstr) and "fuzzy" not in entry.flags


def load_catalog(path: Path):
    return polib.pofile(str(path), wrapwidth=0) if path.exists() else polib.POFile(wrapwidth=0)


def updated_catalog(path: Path, msgids: dict):
    """The catalog with exactly these msgids: kept translations, new ones empty or fuzzy."""
    old = load_catalog(path)
    known = {entry.msgid: entry for entry in old if not entry.obsolete}
    unused = [entry for entry in known.values() if entry.msgid not in msgids and entry.msgstr]
    catalog = polib.POFile(wrapwidth=0)
    catalog.metadata = {
        "Project-Id-Version": "transfer-learning tutorial series",
        "Language": LANGUAGE.replace("-", "_"),
        "MIME-Version": "1.0",
        "Content-Type": "text/plain; charset=UTF-8",
        "Content-Transfer-Encoding": "8bit",
    }
    for msgid, notebooks in msgids.items():
        entry = known.get(msgid)
        if entry is None:
            entry = polib.POEntry(msgid=msgid, msgstr="")
            closest = max(
                unused,
                key=lambda e: difflib.SequenceMatcher(None, e.msgid, msgid).ratio(),
                default=None,
            )
            if closest and difflib.SequenceMatcher(None, closest.msgid, msgid).ratio() > 0.6:
                entry.msgstr = closest.msgstr
                entry.flags = ["fuzzy"]
                entry.previous_msgid = closest.msgid
        entry.occurrences = [(name, "") for name in notebooks]
        catalog.append(entry)
    return catalog


def catalog_problems(path: Path) -> list:
    """Entries a translator must write or check: empty, fuzzy, or with placeholders changed."""
    problems = []
    for entry in load_catalog(path):
        if entry.obsolete:
            continue
        if not entry.msgstr:
            problems.append(f"{path.name}: no translation for {entry.msgid[:70]!r}")
        elif "fuzzy" in entry.flags:
            problems.append(f"{path.name}: the English changed, check {entry.msgid[:70]!r}")
        elif placeholders(entry.msgid) != placeholders(entry.msgstr):
            problems.append(f"{path.name}: placeholders differ in {entry.msgid[:70]!r}")
    return problems


def translated_notebook(path: Path) -> str:
    """The generated notebook's file text (formatted by ruff like every notebook here)."""
    notebook = nbformat.read(path, as_version=4)
    found = {e.msgid: e.msgstr for e in load_catalog(catalog_path(path)) if usable(e)}

    def lookup(text):
        if text not in found:
            raise SystemExit(f"{path.name}: no translation for {text[:70]!r}")
        return found[text]

    generated = copy.deepcopy(notebook)
    for index, cell in enumerate(notebook.cells):
        generated.cells[index] = translate_cell(cell, lookup, path.name)
    with tempfile.TemporaryDirectory() as folder:
        output = Path(folder) / path.name
        nbformat.write(generated, output)
        subprocess.run(
            [sys.executable, "-m", "ruff", "format", "--quiet", "--no-cache", str(output)],
            check=True,
            cwd=ROOT,
        )
        return output.read_text()


# ---------------------------------------------------------------------------------------------
# Command line


def compiled_catalog() -> bytes:
    """plumbing.po as the binary catalog gettext reads: its written, non-fuzzy entries."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / COMPILED.name
        load_catalog(PLUMBING_CATALOG).save_as_mofile(str(path))
        return path.read_bytes()


def generated_files() -> list:
    """(output path, function that writes its content) for each file this tool generates."""
    notebooks = [
        (OUTPUT / notebook.name, lambda notebook=notebook: translated_notebook(notebook))
        for notebook in english_notebooks()
    ]
    documents = [
        (output, lambda document=document: translated_document(document))
        for document, output in DOCUMENTS.items()
    ]
    return notebooks + documents + [(COMPILED, compiled_catalog)]


def current(output: Path, like):
    """The file's content now, as text or bytes like `like`; None when it is missing."""
    if not output.exists():
        return None
    return output.read_bytes() if isinstance(like, bytes) else output.read_text()


def stale_files() -> list:
    """Catalogs and generated files that differ from what this tool would write now."""
    stale = []
    for path, msgids in wanted_entries().items():
        if not path.exists() or str(updated_catalog(path, msgids)) != str(load_catalog(path)):
            stale.append(path)
    for output, generate in generated_files():
        try:
            expected = generate()
        except SystemExit:
            expected = None
        if expected is None or current(output, expected) != expected:
            stale.append(output)
    return stale


def problems() -> list:
    return [p for path in sorted(CATALOGS.glob("*.po")) for p in catalog_problems(path)]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    mode.add_argument("--missing", action="store_true", help="list what needs a translator")
    args = parser.parse_args(argv)
    if args.check:
        found = problems() + [f"{p.relative_to(ROOT)} is out of date" for p in stale_files()]
        print("\n".join(found) or "Translations complete and up to date.")
        if found:
            print("Run: python tools/translate.py, then translate what it lists.")
        return 1 if found else 0
    if not args.missing:
        CATALOGS.mkdir(parents=True, exist_ok=True)
        for path, msgids in wanted_entries().items():
            updated_catalog(path, msgids).save(str(path))
    missing = problems()
    print("\n".join(missing))
    if args.missing:
        return 1 if missing else 0
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for output, generate in generated_files():
        try:
            content = generate()
        except SystemExit as incomplete:
            print(f"not written: {incomplete}")
            continue
        if current(output, content) != content:
            output.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                output.write_bytes(content)
            else:
                output.write_text(content)
            print(f"wrote {output.relative_to(ROOT)}")
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
