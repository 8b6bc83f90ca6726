"""`minigpt lesson notebook`: every lesson's notebook validates against the nbformat 4 schema, carries the
chapter's text, code and figures, and one (lesson 06, the fastest walk-through) executes end to end.

nbformat, nbclient and ipykernel are in the dev extra; without them the schema and execution tests skip and
say which package is missing. Generated notebooks go to a temporary folder: the repository keeps none.
"""

import json
import re
from pathlib import Path

import pytest

from minigpt.cli import main
from minigpt.course.grader import list_lessons
from minigpt.course.notebook import lesson_notebook, split_readme, split_script, write_notebook

LESSONS = list_lessons()
IDS = [p.name for p in LESSONS]


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("notebooks")
    assert main(["lesson", "notebook", "all", "--out", str(out)]) == 0
    return out


def test_all_writes_one_notebook_per_lesson(written):
    names = sorted(p.name for p in written.glob("*.ipynb"))
    assert names == [f"{name}.ipynb" for name in IDS]
    assert len(names) >= 12


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_notebook_validates_against_the_schema(lesson, written):
    nbformat = pytest.importorskip("nbformat", reason="nbformat (dev extra) validates the notebooks")
    nb = nbformat.read(written / f"{lesson.name}.ipynb", as_version=4)
    nbformat.validate(nb)                                    # raises ValidationError on any schema breach
    assert nb.nbformat == 4 and nb.nbformat_minor == 5


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_notebook_has_the_chapter_the_code_and_the_figures(lesson, written):
    nb = json.loads((written / f"{lesson.name}.ipynb").read_text(encoding="utf-8"))
    md = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    readme = (lesson / "README.md").read_text(encoding="utf-8")
    title = next(line for line in readme.splitlines() if line.startswith("# "))
    assert md.lstrip().startswith(title)                      # the chapter's title opens the notebook
    for heading in re.findall(r"^## .+$", readme, flags=re.M):
        assert heading in md, f"README section {heading!r} missing"
    # theory before code: "The math" comes before the first code cell, "What you should see" after the last
    kinds = [c["cell_type"] for c in nb["cells"]]
    first_code = kinds.index("code")
    text_at = {i: "".join(c["source"]) for i, c in enumerate(nb["cells"])}
    math_at = next(i for i, t in text_at.items() if re.search(r"^## The math", t, re.M))
    see_at = next(i for i, t in text_at.items() if re.search(r"^## What you should see", t, re.M))
    assert math_at < first_code and see_at > len(kinds) - 1 - kinds[::-1].index("code")
    # every code line of lesson.py is in a code cell, nothing of it is left as markdown
    for kind, text in split_script((lesson / "lesson.py").read_text(encoding="utf-8")):
        if kind == "code":
            assert text in code
    # every figure lesson.py saves is shown inline, by a path that resolves from the notebook's folder
    for src in re.findall(r"!\[[^\]]*\]\(([^)]+\.png)\)", md):
        assert (written / src).resolve().is_file(), src
    for png in sorted((lesson / "figures").glob("*.png")):
        if png.name in (lesson / "lesson.py").read_text(encoding="utf-8"):
            assert f"{png.name})" in md, f"figure {png.name} not shown"


def test_default_folder_is_the_lesson_and_links_stay_relative(tmp_path):
    lesson = LESSONS[0]
    nb = lesson_notebook(lesson)                              # out_dir = the lesson folder
    md = "".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    assert "](../../minigpt/" in md and "](figures/" in md
    elsewhere = lesson_notebook(lesson, tmp_path)                 # --out elsewhere: links rewritten
    md2 = "".join("".join(c["source"]) for c in elsewhere["cells"] if c["cell_type"] == "markdown")
    targets = [t.split("#")[0] for t in re.findall(r"\]\(([^)\s]+)\)", md2) if not re.match(r"\w+:|#", t)]
    assert targets and all((tmp_path / t).exists() for t in targets), targets
    assert write_notebook(lesson, tmp_path) == tmp_path / f"{lesson.name}.ipynb"


def test_split_script_and_readme_on_a_small_example():
    src = '"""Doc line.\n\nMore."""\n\n# %% [markdown]\n# # Title\n# text\n\n# %%\nx = 1\n# a comment\n'
    assert split_script(src) == [("markdown", "> Doc line.\n>\n> More."), ("markdown", "# Title\ntext"),
                                 ("code", "x = 1\n# a comment")]
    title, sections = split_readme("# T\n\nintro\n\n## A\n```\n## not a heading\n```\n## B\nb\n")
    assert title == "# T\n\nintro" and [h for h, _ in sections] == ["A", "B"]
    assert "## not a heading" in sections[0][1]


def test_unknown_lesson_is_a_clear_error(capsys):
    assert main(["lesson", "notebook", "99"]) == 2
    assert "no lesson" in capsys.readouterr().err


def test_one_notebook_executes_end_to_end(tmp_path, monkeypatch):
    """Lesson 06's notebook (about 2 s as a script) runs in a fresh kernel with every cell succeeding."""
    nbformat = pytest.importorskip("nbformat", reason="nbformat (dev extra) reads the notebook")
    nbclient = pytest.importorskip("nbclient", reason="nbclient (dev extra) executes the notebook")
    pytest.importorskip("ipykernel", reason="ipykernel (dev extra) is the kernel the notebook runs in")
    lesson = next(p for p in LESSONS if p.name.startswith("06"))
    path = write_notebook(lesson, tmp_path)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.setenv("MINIGPT_QUICK", "1")
    monkeypatch.setenv("MINIGPT_FIGURES", str(tmp_path / "figures"))   # never rewrite the committed ones
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).resolve().parents[1]))   # this checkout's minigpt
    nb = nbformat.read(path, as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except Exception as e:                                     # a kernel that cannot start is not a failure
        if type(e).__name__ in ("NoSuchKernel", "DeadKernelError") or "Kernel died" in str(e):
            pytest.skip(f"the Jupyter kernel could not start ({type(e).__name__}: {e})")
        raise
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert not any(o.get("output_type") == "error" for c in nb.cells if c.cell_type == "code"
                   for o in c.outputs)
    assert "loss" in outputs.lower()                          # the walk-through printed its evidence
    assert (tmp_path / "figures" / "loss.png").is_file()      # and saved its figure where we pointed it
