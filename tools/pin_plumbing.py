"""Point every notebook at one commit of the helpers, and at one repository and branch.

    python tools/pin_plumbing.py                         # after you commit a change of the helpers
    python tools/pin_plumbing.py --repository you/fork   # a fork: its badges and its helpers
    python tools/pin_plumbing.py --check                 # exit 1 when a notebook is out of step

Outside a clone (in Colab, say), a notebook's first code cell installs tutorial_plumbing from
GitHub at a fixed commit, so it runs the helpers it was written with; its Colab badge opens it
from a branch. All three come from [tool.tutorial] in pyproject.toml: github_repository,
github_branch and plumbing_commit. This tool sets plumbing_commit to the last commit that
changed tutorial_plumbing/ (so commit your change of the helpers first), writes the install
line and the badge of every English notebook from those settings, and has tools/translate.py
write the Portuguese notebooks again. A fork has the same commits: --repository is all it takes.
"""

import argparse
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
PACKAGE = "tutorial_plumbing"
NOTEBOOKS = ROOT / "notebooks"
INSTALL_LINE = re.compile(r'(?m)^(\s*PLUMBING = )"[^"]*"$')
BADGE = re.compile(
    r"https://colab\.research\.google\.com/github/[^/]+/[^/]+/blob/[^/]+/(notebooks/\S+?\.ipynb)"
)


def settings() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["tool"]["tutorial"]


def install_url(found: dict) -> str:
    return f"git+https://github.com/{found['github_repository']}@{found['plumbing_commit']}"


def badge_url(found: dict, relative: str) -> str:
    repository, branch = found["github_repository"], found["github_branch"]
    return f"https://colab.research.google.com/github/{repository}/blob/{branch}/{relative}"


def git(*arguments) -> str:
    return subprocess.run(
        ["git", *arguments], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()


def last_commit_of_the_helpers() -> str:
    return git("log", "-1", "--format=%H", "--", PACKAGE)


def helpers_differ_from(commit: str) -> bool:
    """Whether tutorial_plumbing/ here (committed or not) differs from the pinned commit."""
    if not re.fullmatch(r"[0-9a-f]{40}", commit or ""):
        return True
    result = subprocess.run(
        ["git", "diff", "--quiet", commit, "--", PACKAGE], cwd=ROOT, capture_output=True
    )
    untracked = git("ls-files", "--others", "--exclude-standard", "--", PACKAGE)
    return result.returncode != 0 or bool(untracked)


def english_notebooks() -> list:
    return sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def in_step(notebook, relative: str, found: dict):
    """The notebook with its install line and badge as the settings say."""
    for cell in notebook.cells:
        if cell.cell_type == "code":
            cell.source = INSTALL_LINE.sub(rf'\g<1>"{install_url(found)}"', cell.source)
        elif cell.cell_type == "markdown":
            cell.source = BADGE.sub(lambda m: badge_url(found, m.group(1)), cell.source)
    return notebook


def problems() -> list:
    found = settings()
    listed = []
    if helpers_differ_from(found["plumbing_commit"]):
        listed.append(
            f"plumbing_commit {found['plumbing_commit'] or '(none)'} does not hold the helpers "
            "of this tree: commit them, then run tools/pin_plumbing.py"
        )
    for path in english_notebooks():
        notebook = nbformat.read(path, as_version=4)
        sources = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
        lines = [line for source in sources for line in INSTALL_LINE.findall(source)]
        if len(lines) != 1:
            listed.append(f"{path.name}: {len(lines)} install lines (PLUMBING = ...), not 1")
        relative = str(path.relative_to(ROOT))
        expected = nbformat.writes(in_step(nbformat.read(path, as_version=4), relative, found))
        if expected != nbformat.writes(notebook):
            listed.append(f"{path.name}: install line or badge out of step with pyproject.toml")
    return listed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repository", help="OWNER/NAME on GitHub, for a fork")
    parser.add_argument("--branch", help="the branch the Colab badges open")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if stale")
    args = parser.parse_args(argv)
    if args.check:
        found = problems()
        print("\n".join(found) or "Every notebook installs the helpers of this tree.")
        return 1 if found else 0
    text = PYPROJECT.read_text()
    commit = last_commit_of_the_helpers()
    if helpers_differ_from(commit):
        print(f"Commit your changes in {PACKAGE}/ first: the notebooks install a commit.")
        return 1
    updates = {"plumbing_commit": commit}
    if args.repository:
        updates["github_repository"] = args.repository
    if args.branch:
        updates["github_branch"] = args.branch
    for key, value in updates.items():
        text = re.sub(rf'(?m)^{key} = "[^"]*"$', f'{key} = "{value}"', text)
    PYPROJECT.write_text(text)
    found = settings()
    for path in english_notebooks():
        relative = str(path.relative_to(ROOT))
        notebook = in_step(nbformat.read(path, as_version=4), relative, found)
        nbformat.write(notebook, path)
    print(f"The notebooks install {install_url(found)}")
    return subprocess.run([sys.executable, str(ROOT / "tools" / "translate.py")]).returncode


if __name__ == "__main__":
    sys.exit(main())
