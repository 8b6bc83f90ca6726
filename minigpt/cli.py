"""`minigpt ...`: the command line. Thin on purpose: it parses arguments and calls the modules.

Each subcommand is a pair: `_add_<name>(subparsers)` declares its arguments, `_cmd_<name>(args)` runs
it and returns the exit code. A subcommand is listed in COMMANDS only once it works.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


# ---- minigpt lesson list | run NN | check NN [--impl FILE] ---------------------------------------------
def _add_lesson(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lesson", help="list, run or grade the lessons",
                       description="The chapters: list them, run a walk-through, or grade an implementation.")
    lsub = p.add_subparsers(dest="lesson_cmd", required=True)
    lsub.add_parser("list", help="the lessons, in order")
    run = lsub.add_parser("run", help="run a lesson's walk-through (lesson.py)")
    run.add_argument("number", help="lesson number, e.g. 04")
    check = lsub.add_parser("check", help="grade an implementation against a lesson's stored references",
                            description="Grade minigpt's own module, or your file with --impl, against the "
                                        "lesson's references. Exit code 1 if any check fails.")
    check.add_argument("number", help="lesson number, e.g. 04")
    check.add_argument("--impl", help="a .py file (e.g. the lesson's exercise.py once filled in) or a "
                                      "module name; default: minigpt's own implementation")
    check.add_argument("--quiet", action="store_true", help="print only the summary")


def _cmd_lesson(args: argparse.Namespace) -> int:
    from minigpt import grading

    if args.lesson_cmd == "list":
        for path in grading.list_lessons():
            title = _lesson_title(path)
            print(f"{path.name:<18} {title}")
        return 0
    folder = grading.find_lesson(args.number)
    if args.lesson_cmd == "run":
        env = dict(os.environ)
        if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
            env.setdefault("MPLBACKEND", "Agg")  # no screen: save the figures, don't show them
        return subprocess.call([sys.executable, "lesson.py"], cwd=folder, env=env)
    g = grading.grade(folder, impl=args.impl, verbose=not args.quiet)
    if args.quiet:
        print(g.summary())
    return 1 if g.failed else 0


def _lesson_title(path) -> str:
    readme = path / "README.md"
    if readme.is_file():
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.startswith("# "):
                return line[2:].strip()
    return ""


# ---- minigpt download NAME [--dest DIR] --------------------------------------------------------------------
def _add_download(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("download", help="fetch GPT-2 weights and tokenizer files from the Hugging Face Hub",
                       description="Download config.json, vocab.json, merges.txt and model.safetensors. "
                                   "Complete files are kept, interrupted ones resumed. Default folder: "
                                   "$MINIGPT_MODELS/NAME or ~/.cache/minigpt/models/NAME; base URL: "
                                   "$MINIGPT_HF_ENDPOINT or https://huggingface.co.")
    p.add_argument("name", help="gpt2, gpt2-medium, gpt2-large, gpt2-xl, or a Hub repo id 'owner/model'")
    p.add_argument("--dest", help="folder to put the files in")
    p.add_argument("--revision", default="main", help="branch, tag or commit on the Hub (default: main)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _cmd_download(args: argparse.Namespace) -> int:
    from minigpt import download

    try:
        folder = download.download(args.name, args.dest, revision=args.revision,
                                   progress=not args.no_progress)
    except download.DownloadError as exc:
        print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


COMMANDS = {
    "lesson": (_add_lesson, _cmd_lesson),
    "download": (_add_download, _cmd_download),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="minigpt", description="A GPT built from scratch in pure NumPy.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _, run = COMMANDS[args.command]
    try:
        return run(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, KeyError, ValueError) as exc:
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"minigpt: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
