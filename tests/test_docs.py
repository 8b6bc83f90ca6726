"""The prose matches the code: links, named functions, chapter sections, figures, commands.

Every Markdown file of the repository is read (README.md, lessons/README.md, lessons/*/README.md,
benchmarks/README.md, data/README.md). The checks:

- a relative link points at a file or folder that exists; `#heading` anchors into Markdown name a heading;
- code is linked by file and name, never by line number: no `#L12` anchors anywhere (every edit would move
  them); a code span linked to a .py file ([`couplets.split_couplets`](couplets.py), [`SGD.step`](optim.py))
  names a def, class or assignment in it, or, when it is code rather than a name (`att *= scale`), appears
  in the file as written;
- every chapter has the contract's sections in order, and every `figures/*.png` it mentions exists;
- every `minigpt ...` command in a bash block parses with `minigpt.cli`'s own parser, and every inline
  `minigpt ...` names a real subcommand and its real options; repository paths in commands exist; the
  options given to `benchmarks/*.py` exist in the script; the README shows every subcommand;
- the top-level README's Python blocks run (the GPT-2 one on lesson 10's tiny GPT-2 folder, offline), and
  every Python block compiles and imports only names minigpt has.

What this does not check: whether prose *describes* the code correctly (a person reads that), and links to
the web (the tests are offline).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
LESSON_READMES = sorted(ROOT.glob("lessons/[0-9][0-9]_*/README.md"))
MD_FILES = [ROOT / "README.md", ROOT / "lessons" / "README.md", ROOT / "benchmarks" / "README.md",
            ROOT / "data" / "README.md", *LESSON_READMES]

# The chapter contract (lessons/README.md), one regex per heading, in order; small wording variants pass.
SECTIONS = [
    ("What you will build", r"what you(?:'ll| will) build"),
    ("The idea", r"the ideas?\b"),
    ("The math", r"the math(?:s|ematics)?\b"),
    ("Your turn", r"your turn"),
    ("Pitfalls", r"(?:common )?pitfalls"),
    ("The code", r"the code\b.*"),                                    # "The code — read after you have tried"
    ("What you should see", r"what you should see"),
    ("Further reading", r"further reading"),
]

LINK = re.compile(r"(!?)\[([^\[\]]*)\]\(([^)\s]+)\)")                  # [text](target), ![alt](src)
CODE_SPAN_TEXT = re.compile(r"^`([^`]+)`$")
IDENT_PATH = re.compile(r"^([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)(?:\(.*\))?$")  # name, a.b.name, name(args)


@dataclass
class Link:
    md: Path
    line: int           # 1-based line in the Markdown file
    text: str
    target: str
    image: bool
    before: str         # the text of the line before the link, for "`name` ([L12](...))"

    def where(self) -> str:
        return f"{self.md.relative_to(ROOT)}:{self.line}: [{self.text}]({self.target})"


def prose_lines(md: Path) -> list[tuple[int, str]]:
    """The lines outside fenced code blocks, numbered from 1 (links inside code blocks are not links)."""
    out, fenced = [], False
    for i, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        if not fenced:
            out.append((i, line))
    return out


def code_blocks(md: Path, lang: str) -> list[tuple[int, str]]:
    """(first line, source) of every fenced block tagged `lang`."""
    blocks, current, tag, start = [], None, "", 0
    for i, line in enumerate(md.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip().startswith("```"):
            if current is None:
                current, tag, start = [], line.strip()[3:].strip(), i + 1
            else:
                if tag == lang:
                    blocks.append((start, "\n".join(current)))
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def links(md: Path) -> list[Link]:
    found = []
    for i, line in prose_lines(md):
        for m in LINK.finditer(line):
            found.append(Link(md, i, m.group(2), m.group(3), bool(m.group(1)), line[: m.start()]))
    return found


def local(link: Link) -> bool:
    return not re.match(r"^[a-z][a-z0-9+.-]*:", link.target) and not link.target.startswith("#")


ALL_LINKS = [link for md in MD_FILES for link in links(md)]
LOCAL_LINKS = [link for link in ALL_LINKS if local(link)]


def split_target(link: Link) -> tuple[Path, str]:
    path, _, anchor = link.target.partition("#")
    return (link.md.parent / path).resolve(), anchor


def slug(heading: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


# ---- definitions in a Python file ----------------------------------------------------------------------
def definitions(path: Path) -> dict[str, list[tuple[str, int, int]]]:
    """name -> [(qualified name, first line incl. decorators, def/class line)] for every def, class and
    module-level assignment in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defs: dict[str, list[tuple[str, int, int]]] = {}

    def add(name: str, qual: str, first: int, line: int) -> None:
        defs.setdefault(name, []).append((qual, first, line))

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                first = min([d.lineno for d in child.decorator_list] + [child.lineno])
                add(child.name, prefix + child.name, first, child.lineno)
                visit(child, prefix + child.name + ".")
            elif prefix == "" and isinstance(child, ast.Assign | ast.AnnAssign):
                targets = child.targets if isinstance(child, ast.Assign) else [child.target]
                for t in targets:
                    if isinstance(t, ast.Name):
                        add(t.id, t.id, child.lineno, child.lineno)

    visit(tree, "")
    return defs


def named_definitions(path: Path, dotted: str) -> list[tuple[str, int, int]]:
    """The definitions a link's name can mean: `SGD.step` -> the `step` inside `class SGD`; a module
    prefix (`data.get_batch`, when the file is data.py) is dropped."""
    parts = dotted.split(".")
    if len(parts) > 1 and parts[0] == path.stem:
        parts = parts[1:]
    cands = definitions(path).get(parts[-1], [])
    if len(parts) > 1:
        cands = [c for c in cands if c[0].endswith(".".join(parts))]
    return cands


# ---- the tests -------------------------------------------------------------------------------------------
def test_the_markdown_files_exist_and_have_links():
    missing = [str(p.relative_to(ROOT)) for p in MD_FILES if not p.is_file()]
    assert not missing, f"missing Markdown files: {missing}"
    assert len(LESSON_READMES) >= 12
    assert len(LOCAL_LINKS) > 100, "the link parser found too few links: is LINK broken?"


@pytest.mark.parametrize("link", LOCAL_LINKS, ids=lambda link: link.where())
def test_relative_link_exists(link: Link):
    path, anchor = split_target(link)
    assert path.exists(), f"{link.where()}: {path.relative_to(ROOT)} does not exist"
    assert ROOT in path.parents or path == ROOT, f"{link.where()}: points outside the repository"
    if anchor and path.suffix == ".md":
        headings = {slug(line.lstrip("#")) for line in path.read_text(encoding="utf-8").splitlines()
                    if line.startswith("#")}
        assert anchor in headings, f"{link.where()}: no heading #{anchor} in {path.name}"
    elif anchor:
        raise AssertionError(f"{link.where()}: link code by file and name, not by an anchor (#{anchor})")


@pytest.mark.parametrize("md", MD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_line_number_anchors(md: Path):
    """Chapters link code by file and name, never by line number: every edit would move a #L anchor."""
    bad = [link.where() for link in links(md) if re.fullmatch(r"L\d+(?:-L\d+)?", split_target(link)[1])]
    assert not bad, f"line-number anchors (link the file and name the function instead): {bad[:5]}"


NAMED_FILE_LINKS = [link for link in LOCAL_LINKS
                    if link.target.endswith(".py") and CODE_SPAN_TEXT.match(link.text.strip())
                    and not link.text.strip().strip("`").endswith(".py")]


def name_problem(link: Link) -> str | None:
    """Why [`name`](file.py) does not hold, or None: the span names a def/class/assignment in the file
    (`block_backward`, `SGD.step`, `prepared.load_meta`), or, when it is code rather than a name
    (`att *= scale`), appears in the file as written (spacing aside)."""
    path, _ = split_target(link)
    span = CODE_SPAN_TEXT.match(link.text.strip()).group(1).strip()
    ident = IDENT_PATH.match(span)
    if ident and named_definitions(path, ident.group(1)):
        return None
    source = " ".join(path.read_text(encoding="utf-8").split())
    if " ".join(span.split()) in source and not (ident and "." not in span and "(" not in span
                                                 and re.fullmatch(r"[A-Za-z_]\w*", span) and
                                                 re.search(rf"(?<![\w.]){re.escape(span)}(?!\w)", source)
                                                 is None):
        return None
    return f"{path.name} neither defines nor contains `{span}`"


@pytest.mark.parametrize("link", NAMED_FILE_LINKS, ids=lambda link: link.where())
def test_a_name_linked_to_a_file_is_defined_there(link: Link):
    """[`couplets.split_couplets`](couplets.py): the file defines the name (or contains the code)."""
    problem = name_problem(link)
    assert problem is None, f"{link.where()}: {problem}"


def test_the_name_rule_catches_wrong_names(tmp_path):
    """A name the file does not define must fail, a defined one pass: the rule is not vacuous."""
    code = tmp_path / "mod.py"
    code.write_text('"""doc"""\n\nLIMIT = 3\n\n\ndef first(x):\n    y = x * 2\n    return y\n\n\n'
                    "class Box:\n    def step(self):\n        pass\n", encoding="utf-8")
    md = tmp_path / "README.md"

    def problem(text: str) -> str | None:
        return name_problem(Link(md, 1, text, "mod.py", False, ""))

    assert problem("`first`") is None
    assert problem("`mod.first`") is None
    assert problem("`Box.step`") is None
    assert problem("`LIMIT`") is None
    assert problem("`y = x * 2`") is None                  # code, found as written
    assert problem("`second`") is not None                 # not defined
    assert problem("`Box.first`") is not None              # first is not a method of Box
    assert problem("`y = x * 3`") is not None              # code that is not there


def section_problem(headings: list[str]) -> str | None:
    """Why these `## ` headings do not follow the chapter contract, or None."""
    positions = []
    for name, pattern in SECTIONS:
        hits = [i for i, h in enumerate(headings) if re.fullmatch(pattern, h, flags=re.IGNORECASE)]
        if not hits:
            return f"no '## {name}' section (headings: {headings})"
        positions.append(hits[0])
    if positions != sorted(positions):
        return f"sections out of order: {[headings[i] for i in positions]}"
    return None


@pytest.mark.parametrize("md", LESSON_READMES, ids=lambda p: p.parent.name)
def test_chapter_sections_in_order(md: Path):
    headings = [line[3:].strip() for _, line in prose_lines(md) if line.startswith("## ")]
    problem = section_problem(headings)
    assert problem is None, f"{md.relative_to(ROOT)}: {problem}"
    assert md.read_text(encoding="utf-8").startswith("# "), f"{md.relative_to(ROOT)}: no '# ' title"


def test_the_section_rule_catches_a_missing_or_moved_section():
    good = [name for name, _ in SECTIONS]
    assert section_problem(good) is None
    assert section_problem(["What you'll build", *good[1:4], "Common pitfalls", *good[5:]]) is None
    assert "no '## Pitfalls'" in section_problem(good[:4] + good[5:])
    assert "out of order" in section_problem(good[:3] + [good[4], good[3]] + good[5:])


@pytest.mark.parametrize("md", MD_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_referenced_figures_exist(md: Path):
    text = md.read_text(encoding="utf-8")
    missing = sorted({f for f in re.findall(r"figures/[\w.\-]+\.png", text) if not (md.parent / f).is_file()})
    assert not missing, f"{md.relative_to(ROOT)}: figures not found: {missing}"


# ---- commands and Python snippets --------------------------------------------------------------------
def minigpt_commands(md: Path) -> list[tuple[int, list[str]]]:
    """(line, argv) of every `minigpt ...` command in the file's bash blocks; usage lines with
    [optional] parts and A | B alternatives are expanded into one argv per alternative."""
    out = []
    for start, block in code_blocks(md, "bash"):
        logical: list[tuple[int, str]] = []                # continued lines (ending in \\) joined
        for offset, raw in enumerate(block.splitlines()):
            if logical and logical[-1][1].endswith("\\"):
                logical[-1] = (logical[-1][0], logical[-1][1][:-1] + " " + raw)
            else:
                logical.append((offset, raw))
        for offset, raw in logical:
            for cmd in raw.split("#", 1)[0].split("&&"):
                cmd = cmd.strip()
                if not cmd.startswith("minigpt "):
                    continue
                for argv in expand_usage(cmd):
                    out.append((start + offset, argv))
    return out


def expand_usage(cmd: str) -> list[list[str]]:
    """`minigpt lesson list | run NN | check NN [--impl FILE]` -> concrete argvs to parse.

    Placeholders in capitals become a sample value; `[...]` parts are kept (each one is an option that must
    exist); `--KEY VALUE ...` becomes a real setting; `A | B` at the top level splits the usage."""
    cmd = cmd.replace("--KEY VALUE ...", "--max_iters 10").replace("[...]", "")
    cmd = re.sub(r"\[([^\[\]]*)\]", r"\1", cmd)         # [--flag X] -> --flag X (twice: nested)
    cmd = re.sub(r"\[([^\[\]]*)\]", r"\1", cmd)
    words = shlex.split(cmd)[1:]
    if "|" not in words:
        return [words]
    head: list[str] = []
    if words[0] == "lesson":                             # lesson list | run NN | check NN ...
        head, words = ["lesson"], words[1:]
    alternatives, current = [], []
    for w in words + ["|"]:
        if w == "|":
            alternatives.append(current)
            current = []
        else:
            current.append(w)
    if head:
        return [head + alt for alt in alternatives]
    # "sample --checkpoint A | --hf DIR  --prompt ...": the first alternative's flag vs the second's
    first, rest = alternatives[0], [w for alt in alternatives[1:] for w in alt]
    return [first + rest[2:], first[:-2] + rest]


def parse_like_cli(argv: list[str]) -> None:
    from minigpt import cli

    parser = cli.build_parser()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            parser.parse_args(argv)
        except SystemExit as exc:
            msg = f"`minigpt {' '.join(argv)}` does not parse: {err.getvalue().strip()}"
            raise AssertionError(msg) from exc


def placeholder(word: str) -> str:
    """Usage placeholders (NAME, FILE, NN, PATH...) become values the parser accepts."""
    return {"NN": "04", "NAME": "pystdlib", "K": "40", "P": "0.9"}.get(word, word)


COMMANDS = [(md, line, argv) for md in MD_FILES for line, argv in minigpt_commands(md)]


def test_commands_were_found():
    assert len(COMMANDS) >= 10, "the bash-block parser found too few `minigpt` commands"


@pytest.mark.parametrize("md,line,argv", COMMANDS,
                         ids=[f"{m.relative_to(ROOT)}:{n}:{' '.join(a)}" for m, n, a in COMMANDS])
def test_command_in_docs_parses(md: Path, line: int, argv: list[str]):
    parse_like_cli([placeholder(w) for w in argv])


def inline_commands() -> list[tuple[Path, int, str]]:
    """`minigpt ...` and `python path.py ...` written inline in the prose."""
    out = []
    for md in MD_FILES:
        for i, line in prose_lines(md):
            for m in re.finditer(r"`((?:minigpt|python) [^`]+)`", line):
                out.append((md, i, m.group(1)))
    return out


def unknown_flags(words: list[str]) -> list[str]:
    """The --options in `minigpt WORDS...` that its subcommand does not have (required arguments may be
    left out: the prose names a command, it need not be complete)."""
    from minigpt import cli

    parser = cli.build_parser()
    for w in words:
        if w.startswith("-"):
            break
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None or w not in sub.choices:
            break
        parser = sub.choices[w]
    flags = [w.split("=", 1)[0] for w in words if w.startswith("--")]
    return [f for f in flags if f not in parser._option_string_actions]


INLINE = inline_commands()


@pytest.mark.parametrize("md,line,cmd", INLINE, ids=[f"{m.relative_to(ROOT)}:{n}:{c}" for m, n, c in INLINE])
def test_inline_command_exists(md: Path, line: int, cmd: str):
    words = shlex.split(cmd)
    where = f"{md.relative_to(ROOT)}:{line}: `{cmd}`"
    if words[0] == "minigpt":
        from minigpt import cli

        assert words[1] in cli.COMMANDS, f"{where}: minigpt has no subcommand {words[1]!r}"
        assert not unknown_flags(words[1:]), f"{where}: unknown options {unknown_flags(words[1:])}"
    for w in words[1:]:                              # paths into the repository must exist
        if re.match(r"^(?:lessons|minigpt|benchmarks|tests)/\S+\.py$", w) or w == "lesson.py":
            path = ROOT / w if w != "lesson.py" else md.parent / w
            assert path.is_file(), f"{where}: {w} does not exist"


def benchmark_mentions() -> list[tuple[Path, int, str, list[str]]]:
    """`benchmarks/x.py --flag ...`, `python benchmarks/x.py ...` or a bare `x.py --flag` naming a script
    in benchmarks/: (file, line, script, flags)."""
    out = []
    for md in MD_FILES:
        for i, line in prose_lines(md):
            for m in re.finditer(r"`(?:python )?(?:benchmarks/)?(\w+\.py)((?: [^`]*)?)`", line):
                script = ROOT / "benchmarks" / m.group(1)
                bare_ok = md in (ROOT / "README.md", ROOT / "benchmarks" / "README.md")   # else sampling.py
                if script.is_file() and ("benchmarks/" in m.group(0) or bare_ok):        # may be minigpt's
                    flags = re.findall(r"--[\w-]+", m.group(2))
                    out.append((md, i, m.group(1), flags))
    return out


BENCH = [b for b in benchmark_mentions() if b[3]]


@pytest.mark.parametrize("md,line,script,flags", BENCH,
                         ids=[f"{m.relative_to(ROOT)}:{n}:{s} {' '.join(f)}" for m, n, s, f in BENCH])
def test_benchmark_flags_exist(md: Path, line: int, script: str, flags: list[str]):
    """The scripts' parsers live in their main(); an option they define appears in their source as "--x"."""
    source = (ROOT / "benchmarks" / script).read_text(encoding="utf-8")
    missing = [f for f in flags if f'"{f}"' not in source]
    assert not missing, f"{md.relative_to(ROOT)}:{line}: benchmarks/{script} has no option {missing}"


def test_command_checker_rejects_a_wrong_flag():
    assert unknown_flags(["sample", "--checkpoint", "x", "--top_q", "3"]) == ["--top_q"]
    assert unknown_flags(["lesson", "check", "04", "--impl", "f.py"]) == []
    assert unknown_flags(["lesson", "check", "04", "--imp", "f.py"]) == ["--imp"]
    with pytest.raises(AssertionError, match="does not parse"):
        parse_like_cli(["sample", "--checkpoint", "runs/x", "--top_q", "3"])
    parse_like_cli(["sample", "--checkpoint", "runs/x", "--top-k", "3"])


GPT2_FOLDER = 'Path.home() / ".cache/minigpt/models/gpt2"'          # the README's downloaded GPT-2
TINY_GPT2 = ROOT / "lessons" / "10_sampling" / "reference" / "tiny_gpt2"   # a GPT-2 folder, 2 layers


def readme_python_blocks() -> list[tuple[int, str]]:
    return code_blocks(ROOT / "README.md", "python")


@pytest.mark.parametrize("start,source", readme_python_blocks(), ids=lambda v: str(v)[:20])
def test_readme_python_block_runs(start: int, source: str):
    """Every Python block of the README runs as printed. The GPT-2 block runs on lesson 10's tiny GPT-2
    folder (same files, random weights) in place of the downloaded one; a block may use `idx` and `targets`
    as given (the README leaves the batch to the reader), so they are a seeded batch."""
    if ".cache/minigpt/models" in source:
        assert GPT2_FOLDER in source, f"README.md:{start}: the GPT-2 folder is no longer {GPT2_FOLDER}"
        source = source.replace(GPT2_FOLDER, f"Path({str(TINY_GPT2)!r})")
    code = compile(source, f"README.md:{start}", "exec")
    rng = np.random.default_rng(0)
    idx = rng.integers(0, 65, size=(2, 16))                                       # (B, T)
    namespace = {"idx": idx, "targets": np.roll(idx, -1, axis=1), "__name__": "readme"}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(code, namespace)


ALL_PY_BLOCKS = [(md, n, src) for md in MD_FILES for n, src in code_blocks(md, "python")]


@pytest.mark.parametrize("md,start,source", ALL_PY_BLOCKS,
                         ids=[f"{m.relative_to(ROOT)}:{n}" for m, n, _ in ALL_PY_BLOCKS])
def test_python_block_compiles(md: Path, start: int, source: str):
    """The chapters' Python blocks are fragments (they use a model or a batch from the text around them),
    so they are only compiled; the names they import from minigpt must exist."""
    tree = ast.parse(source, f"{md.relative_to(ROOT)}:{start}")
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "minigpt":
            module = __import__(node.module, fromlist=["_"])
            missing = [a.name for a in node.names if not hasattr(module, a.name)
                       and not (ROOT / node.module.replace(".", "/") / f"{a.name}.py").is_file()]
            assert not missing, f"{md.relative_to(ROOT)}:{start}: {node.module} has no {missing}"
    modules = {}                                       # `from minigpt import hf` -> hf.load_gpt2 must exist
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "minigpt":
            for a in node.names:
                modules[a.asname or a.name] = __import__(f"minigpt.{a.name}", fromlist=["_"])
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in modules:
            assert hasattr(modules[node.value.id], node.attr), \
                f"{md.relative_to(ROOT)}:{start}: minigpt.{node.value.id} has no {node.attr}"


def test_readme_names_the_commands_it_documents():
    """Every subcommand the CLI has is shown in the top-level README's command-line section."""
    from minigpt import cli

    shown = {argv[0] for md, _, argv in COMMANDS if md == ROOT / "README.md"}
    assert set(cli.COMMANDS) <= shown, f"README.md does not show: {sorted(set(cli.COMMANDS) - shown)}"


def test_usage_expansion():
    assert expand_usage("minigpt lesson list | run NN | check NN [--impl FILE]") == [
        ["lesson", "list"], ["lesson", "run", "NN"], ["lesson", "check", "NN", "--impl", "FILE"]]
    assert expand_usage("minigpt eval --checkpoint runs/NAME | --data NAME  [--task FILE]") == [
        ["eval", "--checkpoint", "runs/NAME", "--task", "FILE"],
        ["eval", "--data", "NAME", "--task", "FILE"]]
