"""The docs a person reads first stay true to the code: every Python block compiles, every
relative link and image points at a file that exists (and a heading that exists, for a
`#fragment`), and the README stays a front door."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted(
    [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "CHANGELOG.md", *ROOT.glob("docs/*.md")]
)
PYTHON_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _id(page: Path) -> str:
    return str(page.relative_to(ROOT))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it: lower case, punctuation dropped, spaces to -."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    text = PYTHON_BLOCK.sub("", page.read_text(encoding="utf-8"))
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    return {slug(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_python_block_compiles(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for number, block in enumerate(PYTHON_BLOCK.findall(text), start=1):
        compile(block, f"{_id(page)} block {number}", "exec")


@pytest.mark.parametrize("page", PAGES, ids=_id)
def test_every_relative_link_resolves(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    broken = []
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # http(s), mailto: not checked here
        path, _, fragment = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.exists():
            broken.append(target)
        elif fragment and file.suffix == ".md" and fragment not in anchors(file):
            broken.append(target)
    assert not broken, f"{_id(page)}: broken links {broken}"


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 150, len(lines)
    text = "\n".join(lines)
    for command in ("make demo", "make test", "make check"):
        assert command in text


def test_the_slug_matches_githubs() -> None:
    assert slug("When things fail: nothing lost, nothing twice") == (
        "when-things-fail-nothing-lost-nothing-twice"
    )
    assert slug("Sweeps: `newsdesk sweep`") == "sweeps-newsdesk-sweep"


DOTTED = re.compile(r"`((?:tracker|trainers)(?:\.\w+)+)`")
FROM_IMPORT = re.compile(r"^\s*from ((?:tracker|trainers)[\w.]*) import \(?([\w, ]+)", re.M)


def _resolves(dotted: str) -> bool:
    """Whether `a.b.c` names a module, or an attribute of the longest module prefix."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for name in parts[cut:]:
            if not hasattr(found, name):
                return False
            found = getattr(found, name)
        return True
    return False


@pytest.mark.parametrize("page", [p for p in PAGES if p.name != "CHANGELOG.md"], ids=_id)
def test_every_module_path_the_docs_name_exists(page: Path) -> None:
    """`tracker.dashboard.compare.runs_frame` in a page, or `from tracker.x import y` in its
    code, must import: a renamed module is a broken page. (The changelog names old paths on
    purpose.)"""
    text = page.read_text(encoding="utf-8")
    named = set(DOTTED.findall(text))
    for module, names in FROM_IMPORT.findall(text):
        named |= {f"{module}.{n.strip()}" for n in names.split(",") if n.strip()}
    broken = sorted(path for path in named if not _resolves(path))
    assert not broken, f"{_id(page)} names what does not exist: {broken}"


def test_the_readme_says_how_to_install_without_pypi_or_a_gpu() -> None:
    """newsdesk is not on PyPI, and an unpinned torch on a machine without a GPU pulls the CUDA
    build: the README says what to run instead (issue 38, item 6)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    install = text.split("## Install", 1)[1].split("\n## ", 1)[0]
    assert "https://download.pytorch.org/whl/cpu" in install
    assert "git+" in install and "not on PyPI" in install
    commands = [line for line in install.splitlines() if line.startswith("pip install")]
    assert commands and not any(re.match(r"pip install newsdesk\b", c) for c in commands)
