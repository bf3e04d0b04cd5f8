"""Copy into each notebook the plumbing it uses from the tutorial_plumbing package.

    python tools/carry_plumbing.py           # rewrite the notebooks' plumbing cells
    python tools/carry_plumbing.py --check   # exit 1 when a copy differs (the tests do this too)

A notebook's plumbing cell is the code cell tagged `plumbing`, shown collapsed (Colab's form view,
Jupyter's and VS Code's hidden input). Its content is generated: the
package's definitions that the notebook's other cells use (and what those need in turn), in the
package's order (its modules as tutorial_plumbing/__init__.py imports them, each in source
order), after the imports they need that earlier cells have not already made. So a notebook
carries only what it uses, and Colab needs nothing but the notebook.
"""

import argparse
import ast
import dataclasses
import re
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "tutorial_plumbing"
NOTEBOOKS = ROOT / "notebooks"
TAG = "plumbing"
HEADER = (
    '# @title Plumbing (hidden): shared helpers { display-mode: "form" }\n'
    "# Copied from tutorial_plumbing/ by tools/carry_plumbing.py. Edit the package, not this cell."
)


@dataclasses.dataclass
class Definition:
    names: set  # names it binds at module level
    uses: set  # names it reads
    source: str
    group: int = 0  # imports only: blank-line separated block in the module (stdlib, third-party)
    first: int = 0  # first and last line in the module
    last: int = 0


def package_modules() -> list:
    """The package's modules, each after the modules it imports from (ties by name)."""
    needs = {}
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name != "__init__.py":
            tree = ast.parse(path.read_text())
            needs[path.stem] = {
                n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.level
            }
    ordered = []
    while len(ordered) < len(needs):
        ready = sorted(
            name for name in needs if name not in ordered and needs[name] <= set(ordered)
        )
        if not ready:
            raise SystemExit(f"circular imports between {sorted(set(needs) - set(ordered))}")
        ordered.append(ready[0])
    return [PACKAGE / f"{name}.py" for name in ordered]


def combined_source(sources: dict | None = None) -> str:
    """The package as one module: its absolute imports merged, then each module's body.

    `sources` ({module file name: text}) replaces what is on disk, for tests.
    """
    stdlib, third_party, from_imports, bodies = set(), set(), {}, []
    for path in package_modules():
        source = (sources or {}).get(path.name) or path.read_text()
        tree = ast.parse(source)
        body = [node for node in tree.body if not isinstance(node, ast.Import | ast.ImportFrom)]
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
            body = body[1:]  # the module's docstring
        for node in tree.body:
            if isinstance(node, ast.Import):
                for alias in node.names:
                    target = (
                        stdlib
                        if alias.name.split(".")[0] in sys.stdlib_module_names
                        else third_party
                    )
                    target.add(ast.unparse(ast.Import([alias])))
            elif isinstance(node, ast.ImportFrom) and not node.level:
                from_imports.setdefault(node.module, set()).update(
                    ast.unparse(alias) for alias in node.names
                )
        if body:
            lines = source.splitlines()
            first = min(
                [body[0].lineno] + [d.lineno for d in getattr(body[0], "decorator_list", [])]
            )
            while first > 1 and lines[first - 2].startswith("#"):
                first -= 1
            bodies.append("\n".join(lines[first - 1 :]).strip("\n"))
    for module, names in from_imports.items():
        line = f"from {module} import {', '.join(sorted(names))}"
        (stdlib if module.split(".")[0] in sys.stdlib_module_names else third_party).add(line)

    def ordered(block):
        return sorted(block, key=lambda line: (line.startswith("from"), line.split()[1].lower()))

    header = "\n".join(ordered(stdlib)) + "\n\n" + "\n".join(ordered(third_party))
    return header + "\n\n\n" + "\n\n\n".join(bodies) + "\n"


def module_parts(source: str) -> tuple[list, list]:
    """(imports, definitions) of a module, each a Definition, in source order."""
    lines = source.splitlines()
    imports, definitions, group, previous_end = [], [], 0, None
    for node in ast.parse(source).body:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while first > 1 and lines[first - 2].startswith("#"):
            first -= 1  # comment lines right above a definition belong to it
        text = "\n".join(lines[first - 1 : node.end_lineno])
        if isinstance(node, ast.Import | ast.ImportFrom):
            if previous_end is not None and first > previous_end + 1:
                group += 1
            bound = {(alias.asname or alias.name).split(".")[0] for alias in node.names}
            imports.append(Definition(bound, set(), text, group))
            previous_end = node.end_lineno
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.Assign | ast.AnnAssign):
            definitions.append(
                Definition(bound_names(node), used_names(node), text, 0, first, node.end_lineno)
            )
    return imports, definitions


def bound_names(node) -> set:
    if isinstance(node, ast.FunctionDef | ast.ClassDef):
        return {node.name}
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}


def used_names(tree) -> set:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}


def parse_cell(source: str) -> ast.Module:
    """Parse a notebook cell; IPython magics (%pip, !ls) become `pass`."""
    python = re.sub(r"(?m)^(\s*)[%!].*$", r"\1pass", source)
    return ast.parse(python)


def imports_in(tree) -> set:
    """Import statements of a cell, normalised, to avoid importing the same thing twice."""
    return {
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
    }


def plumbing_cell_source(notebook, module_source: str) -> str:
    """What the notebook's plumbing cell must contain."""
    imports, definitions = module_parts(module_source)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    position = next(i for i, c in enumerate(cells) if TAG in c.metadata.get("tags", []))
    used, earlier_imports = set(), set()
    for index, cell in enumerate(cells):
        if index == position:
            continue
        tree = parse_cell(cell.source)
        used |= used_names(tree)
        if index < position:
            earlier_imports |= imports_in(tree)

    needed = set(used)
    chosen = []
    while True:
        chosen = [d for d in definitions if d.names & needed]
        grown = needed | {name for d in chosen for name in d.uses}
        if grown == needed:
            break
        needed = grown

    blocks = {}
    for imported in imports:
        if imported.names & needed and imports_in(ast.parse(imported.source)) - earlier_imports:
            blocks.setdefault(imported.group, []).append(imported.source)
    import_text = "\n\n".join("\n".join(block) for _, block in sorted(blocks.items()))
    text = HEADER + ("\n" + import_text if import_text else "")
    previous = None
    for definition in chosen:
        adjacent = previous is not None and definition.first == previous.last + 1
        # After the imports, isort wants one blank line before a constant, two before a def.
        after_imports = previous is None and not re.match(r"(def|class|@)", definition.source)
        text += "\n" if adjacent else "\n\n" if after_imports else "\n\n\n"
        text += definition.source
        previous = definition
    return text


def collapse(cell) -> None:
    """Show the cell as its title only: a form in Colab, collapsed input in Jupyter and VS Code."""
    cell.metadata["cellView"] = "form"
    cell.metadata.setdefault("jupyter", {})["source_hidden"] = True


def is_collapsed(cell) -> bool:
    return (
        cell.metadata.get("cellView") == "form"
        and cell.metadata.get("jupyter", {}).get("source_hidden") is True
    )


def plumbing_notebooks() -> list:
    """(path, notebook) for every notebook that has a plumbing cell."""
    found = []
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        notebook = nbformat.read(path, as_version=4)
        if any(TAG in c.metadata.get("tags", []) for c in notebook.cells):
            found.append((path, notebook))
    return found


def carry(module_source: str | None = None, write: bool = True) -> list:
    """The notebooks whose plumbing cell differs from the module; with write, rewrite them."""
    module_source = module_source if module_source is not None else combined_source()
    stale = []
    for path, notebook in plumbing_notebooks():
        cell = next(c for c in notebook.cells if TAG in c.metadata.get("tags", []))
        expected = plumbing_cell_source(notebook, module_source)
        if cell.source != expected or not is_collapsed(cell):
            stale.append(path)
            if write:
                cell.source = expected
                collapse(cell)
                nbformat.write(notebook, path)
    return stale


def stale_copies(module_source: str | None = None) -> list:
    """The notebooks whose plumbing cell differs from the module, changing nothing."""
    return carry(module_source, write=False)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report stale copies")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_copies()
        for path in stale:
            print(f"{path.relative_to(ROOT)}: plumbing cell stale (or not collapsed)")
        if stale:
            print("Run: python tools/carry_plumbing.py")
        return 1 if stale else 0
    for path in carry():
        print(f"updated {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
