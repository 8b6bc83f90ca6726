"""Write a lesson as a Jupyter notebook: the chapter's prose as markdown cells, the walk-through's cells as
code cells, the figures inline.

    notebook = lesson_notebook(Path("lessons/04_attention"), out_dir)      # a dict in nbformat 4.5
    path = write_notebook(Path("lessons/04_attention"))    # -> lessons/04_attention/04_attention.ipynb

The order, for a learner reading top to bottom:
  1. the README's title and its "What you will build", "The idea" and "The math" sections (the theory first);
  2. "The walk-through": lesson.py, cell by cell: "# %% [markdown]" cells become markdown (the leading "# "
     stripped, their headings one level deeper), "# %%" cells become code, and after a code cell that saves
     `figures/NAME.png` comes a markdown cell showing it;
  3. the rest of the README, section by section (the code tour, your turn, pitfalls, what you see, ...).

Figures are referenced by relative path (`figures/NAME.png`), not embedded as attachments: the PNGs are
committed next to the notebook, running the notebook rewrites them so the pictures show the learner's own
run, and the notebook stays a few kB of readable JSON instead of carrying copies of every image. Links
in the README are rewritten relative to the notebook's folder, so `--out` elsewhere keeps them working.

The first code cell sets `__file__` (lesson.py reads it to find its figures/ folder; a kernel has none).

Not here: running the notebook (Jupyter or nbclient does that), converting notebooks back to scripts, any
dependency on nbformat: the JSON is written with the standard library; the tests validate it against
nbformat's schema.
"""

from __future__ import annotations

import ast
import json
import os
import re
from pathlib import Path

from minigpt.files.atomic import write_text_atomic

BEFORE_CODE = re.compile(r"what you(?:'ll| will) build|the ideas?\b|the math", re.IGNORECASE)
LINK = re.compile(r"(!?\[[^\[\]]*\]\()([^)\s]+)(\))")            # [text](target) and ![alt](src)
PNG = re.compile(r"[\"']([\w.-]+\.png)[\"']")                    # a string literal naming a PNG
CELL = re.compile(r"^# %%(.*)$")


def split_script(source: str) -> list[tuple[str, str]]:
    """A percent-cell script -> [(kind, text)], kind "markdown" or "code", in order.

    What comes before the first "# %%" is a docstring (it becomes a markdown note) and/or code.
    """
    cells: list[tuple[str, str]] = []
    kind, lines = "code", []
    first = True
    for line in source.splitlines():
        m = CELL.match(line)
        if m:
            if first:
                cells.extend(_preamble("\n".join(lines)))
                first = False
            else:
                cells.append(_finish(kind, lines))
            kind = "markdown" if "[markdown]" in m.group(1) else "code"
            lines = []
        else:
            lines.append(line)
    cells.extend(_preamble("\n".join(lines)) if first else [_finish(kind, lines)])
    return [(k, t) for k, t in cells if t.strip()]


def _preamble(text: str) -> list[tuple[str, str]]:
    """The lines before the first cell marker: the module docstring as a quoted note, then any code."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [("code", text.strip("\n"))]
    doc = ast.get_docstring(tree)
    if doc is None:
        return [("code", text.strip("\n"))]
    rest = "\n".join(text.splitlines()[tree.body[0].end_lineno:]).strip("\n")
    note = "\n".join("> " + line if line else ">" for line in doc.splitlines())
    return [("markdown", note), ("code", rest)]


def _finish(kind: str, lines: list[str]) -> tuple[str, str]:
    if kind == "markdown":
        lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
    return kind, "\n".join(lines).strip("\n")


def split_readme(text: str) -> tuple[str, list[tuple[str, str]]]:
    """A chapter README -> (title block, [(heading, section text including its '## ' line)])."""
    head: list[str] = []
    sections: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((line[3:].strip(), [line]))
        elif sections:
            sections[-1][1].append(line)
        else:
            head.append(line)
    return "\n".join(head).strip("\n"), [(h, "\n".join(b).strip("\n")) for h, b in sections]


def relink(markdown: str, lesson_dir: Path, out_dir: Path) -> str:
    """Rewrite relative link targets so they resolve from out_dir instead of lesson_dir."""
    if lesson_dir.resolve() == out_dir.resolve():
        return markdown

    def fix(m: re.Match) -> str:
        target = m.group(2)
        if re.match(r"^(?:[a-z][a-z0-9+.-]*:|#|/)", target):     # URL, anchor or absolute path: keep
            return m.group(0)
        path, sep, anchor = target.partition("#")
        new = os.path.relpath(lesson_dir.resolve() / path, out_dir.resolve())
        return m.group(1) + Path(new).as_posix() + sep + anchor + m.group(3)

    return LINK.sub(fix, markdown)


def _cell(kind: str, text: str, index: int) -> dict:
    lines = text.splitlines(keepends=True)
    cell = {"cell_type": kind, "id": f"cell-{index:03d}", "metadata": {}, "source": lines}
    if kind == "code":
        cell.update(execution_count=None, outputs=[])
    return cell


def lesson_notebook(lesson_dir: Path, out_dir: Path | None = None) -> dict:
    """The notebook (an nbformat 4.5 dict) for one lesson folder, links relative to out_dir."""
    lesson_dir = Path(lesson_dir)
    out_dir = Path(out_dir) if out_dir is not None else lesson_dir
    script = lesson_dir / "lesson.py"
    readme = lesson_dir / "README.md"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: a lesson folder holds lesson.py and README.md")
    title, sections = split_readme(readme.read_text(encoding="utf-8")) if readme.is_file() else ("", [])
    before = [text for heading, text in sections if BEFORE_CODE.match(heading)]
    after = [text for heading, text in sections if not BEFORE_CODE.match(heading)]
    figures = lesson_dir / "figures"

    cells: list[tuple[str, str]] = [("markdown", relink(t, lesson_dir, out_dir))
                                    for t in (title, *before) if t]
    file_path = Path(os.path.relpath(script.resolve(), out_dir.resolve())).as_posix()
    cells.append(("markdown", f"## The walk-through ([lesson.py]({file_path}))"))
    cells.append(("code", "# lesson.py reads __file__ to find its figures/ folder; a notebook has none\n"
                          f"__file__ = {file_path!r}"))
    for kind, text in split_script(script.read_text(encoding="utf-8")):
        if kind == "markdown":                                 # nest its headings under the one above
            text = re.sub(r"^(#{1,5}) ", r"#\1 ", text, flags=re.M)
        cells.append((kind, text))
        if kind != "code" or "savefig" not in text:
            continue
        for name in dict.fromkeys(PNG.findall(text)):          # each figure once, in order of mention
            if (figures / name).is_file():
                src = relink(f"![{name}](figures/{name})", lesson_dir, out_dir)
                cells.append(("markdown", src))
    cells.extend(("markdown", relink(t, lesson_dir, out_dir)) for t in after)
    return {
        "cells": [_cell(kind, text, i) for i, (kind, text) in enumerate(cells)],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def write_notebook(lesson_dir: Path, out_dir: Path | None = None) -> Path:
    """Write lesson_dir's notebook to out_dir (default: the lesson folder) as NN_name.ipynb -> its path."""
    lesson_dir = Path(lesson_dir)
    out_dir = Path(out_dir) if out_dir is not None else lesson_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{lesson_dir.name}.ipynb"
    text = json.dumps(lesson_notebook(lesson_dir, out_dir), indent=1, ensure_ascii=False) + "\n"
    write_text_atomic(path, text)
    return path
