"""`minigpt ...`: the command line. Thin on purpose: it parses arguments and calls the modules.

Each subcommand is a pair: `_add_<name>(subparsers)` declares its arguments, `_cmd_<name>(args)` runs
it and returns the exit code. A subcommand is listed in COMMANDS only once it works.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from minigpt import hf
from minigpt.allocator import keep_freed_memory
from minigpt.course import grader as grading
from minigpt.datasets.recipes import RECIPES, prepare
from minigpt.files import checkpoint, download
from minigpt.files.paths import data_dir
from minigpt.finetune import run as finetune
from minigpt.finetune.run import FINETUNE_DEFAULTS, resolve_checkpoint
from minigpt.metrics import evaluate
from minigpt.sampling import EOT, stream
from minigpt.training import train
from minigpt.training.train import TrainConfig, list_presets


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
    try:
        folder = download.download(args.name, args.dest, revision=args.revision,
                                   progress=not args.no_progress)
    except download.DownloadError as exc:
        print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    print(folder)
    return 0


# ---- minigpt prepare NAME [PATH] [--from-file FILE] -------------------------------------------------------
def _add_prepare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="download (or read), clean, tokenize, split a dataset into data/NAME",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Recipes:\n" + "\n".join(f"  {k:<17} {v}" for k, v in RECIPES.items())
                       + "\nOutput: data/NAME/train.bin, val.bin, tokenizer.json, meta.json "
                         "(folder: $MINIGPT_DATA or data/ in the clone).")
    p.add_argument("name", choices=list(RECIPES), metavar="NAME", help="the recipe: " + ", ".join(RECIPES))
    p.add_argument("path", nargs="?", help="textfile only: the UTF-8 file to prepare")
    p.add_argument("--from-file", help="a local copy of the source instead of downloading it (offline)")
    p.add_argument("--name", dest="out_name", help="output folder name under data/ (default: the recipe's, "
                                                   "or the file's stem for textfile)")
    p.add_argument("--url", help="download from this URL instead of the recipe's")
    p.add_argument("--vocab", help="shakespeare: GPT-2's gpt2.tiktoken file, to use GPT-2's 50257 tokens "
                                   "instead of learning a 1024-token BPE")
    p.add_argument("--tokenizer", choices=("char", "bpe"), default="char", help="textfile: char or bpe")
    p.add_argument("--vocab-size", type=int, default=1024,
                   help="BPE vocabulary size (shakespeare; textfile --tokenizer bpe)")
    p.add_argument("--no-progress", action="store_true", help="no download progress bar")


def _cmd_prepare(args: argparse.Namespace) -> int:

    source = args.from_file or args.path
    out = data_dir() / args.out_name if args.out_name else None
    prepare(args.name, from_file=source, out=out, url=args.url, vocab=args.vocab, tokenizer=args.tokenizer,
            vocab_size=args.vocab_size, progress=not args.no_progress)
    return 0


# ---- minigpt train [--preset NAME] [--KEY VALUE ...] [--out DIR] [--resume] ------------------------------
def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GPT (no arguments: the offline default, minutes on a CPU)",
                       description="Train from a preset (minigpt/training/presets/*.toml); any setting can "
                                   "be "
                                   "overridden, e.g. --max_iters 500 --lr 3e-4. Checkpoints, log.jsonl and "
                                   "loss.png go to --out (default runs/PRESET). Ctrl-C saves and stops; "
                                   "--resume continues exactly where the run stopped.")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(list_presets())}, or a .toml file")
    p.add_argument("--out", help="run folder (default: runs/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", help="start from these weights: a run or checkpoint folder, or a GPT-2 "
                                        "folder")
    p.add_argument("--no-sample", action="store_true", help="don't print a sample at the end")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = p.add_argument_group("settings (override the preset)")
    for f in fields(TrainConfig):
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        group.add_argument(*names, dest=f"set_{f.name}", metavar=f.type.upper(), default=None,
                           help=f"(default {f.default!r})")


def _cmd_train(args: argparse.Namespace) -> int:
    raw = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    overrides = train.parse_overrides(raw)
    out = Path(args.out) if args.out else Path("runs") / Path(args.preset).stem
    if args.resume:
        try:
            saved = checkpoint.load(out / "last").state["train_config"]
        except checkpoint.CheckpointError as exc:
            print(f"minigpt: error: cannot resume: {exc}", file=sys.stderr)
            return 2
        cfg = train.TrainConfig(**(saved | overrides))
    else:
        cfg = train.config_from_preset(args.preset, overrides)
    try:
        summary = train.train(cfg, out, resume=args.resume, init_from=args.init_from,
                              progress=not args.no_progress, sample=not args.no_sample)
    except train.TrainingDiverged as exc:
        print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    return 130 if summary["interrupted"] else 0


# ---- minigpt sample (--checkpoint runs/NAME | --hf DIR) [--prompt TEXT] ... -----------------------------
def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate text from a trained checkpoint or a GPT-2 folder",
                       description="Generate text after a prompt. Output streams as it is sampled when "
                                   "stdout is a terminal. With --temperature 0 (greedy) and a GPT-2 folder, "
                                   "the text equals transformers' generate(do_sample=False).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="a training run (runs/NAME: best/, else last/) or a checkpoint "
                                          "folder")
    src.add_argument("--hf", metavar="DIR", help="a GPT-2 folder: config.json, model.safetensors, "
                                                 "vocab.json, merges.txt (`minigpt download gpt2`)")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--prompt", default="", help="the text to continue (default: empty, start from "
                                                   "<|endoftext|>)")
    text.add_argument("--prompt-file", help="read the prompt from this UTF-8 file")
    p.add_argument("--max-new-tokens", type=int, default=200, help="tokens to generate (default 200)")
    p.add_argument("--temperature", type=float, default=0.8, help="0 = greedy (default 0.8)")
    p.add_argument("--top-k", type=int, default=None, help="keep the k most likely tokens (default: off)")
    p.add_argument("--top-p", type=float, default=None, help="nucleus: keep the top tokens whose mass "
                                                             "reaches p (default: off)")
    p.add_argument("--seed", type=int, default=None, help="random seed; sample i uses seed + i")
    p.add_argument("--num-samples", type=int, default=1, help="how many samples (default 1)")
    p.add_argument("--stop", action="append", default=[], help="stop when this text appears (not printed; "
                                                               "repeatable; \\n and \\t mean newline, tab)")
    p.add_argument("--ignore-eos", action="store_true", help="do not stop at the <|endoftext|> token")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="print tokens as they come (default: when stdout is a terminal)")


def _cmd_sample(args: argparse.Namespace) -> int:
    if args.checkpoint:

        ckpt = checkpoint.load(resolve_checkpoint(args.checkpoint))   # a run folder: its best/, else last/
        model, tok = ckpt.model, ckpt.tokenizer
        eos = getattr(tok, "special_tokens", {}).get(EOT)
    else:
        model, tok = hf.load_gpt2(args.hf), hf.load_gpt2_tokenizer(args.hf)
        eos = None                                   # transformers stops at the generation config's EOS
        for name in ("generation_config.json", "config.json"):
            path = Path(args.hf) / name
            if path.is_file():
                eos = json.loads(path.read_text(encoding="utf-8")).get("eos_token_id")
                if eos is not None:
                    break
    prompt = Path(args.prompt_file).read_text(encoding="utf-8") if args.prompt_file else args.prompt
    try:
        ids = tok.encode(prompt, allowed_special="all")   # BPE: "<|endoftext|>" in a prompt is the token
    except TypeError:
        ids = tok.encode(prompt)                          # a character tokenizer
    stop: list = [s.replace("\\n", "\n").replace("\\t", "\t") for s in args.stop]
    if eos is not None and not args.ignore_eos:
        stop += [eos] if isinstance(eos, int) else list(eos)
    live = sys.stdout.isatty() if args.stream is None else args.stream
    for i in range(args.num_samples):
        if i:
            print("\n" + "-" * 40)
        seed = None if args.seed is None else args.seed + i
        pieces = stream(model, ids, tok, max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                        top_k=args.top_k, top_p=args.top_p, seed=seed, stop=stop or None)
        if live:
            print(prompt, end="", flush=True)
            for piece in pieces:
                print(piece, end="", flush=True)
            print()
        else:
            print(prompt + "".join(pieces))
    return 0


# ---- minigpt finetune (--init RUN | --hf DIR) --task FILE [--val FILE] [--KEY VALUE ...] ------------------
def _add_finetune(sub: argparse._SubParsersAction) -> None:

    description = ("Fine-tune a checkpoint (--init: a run folder -> its best/, or a checkpoint folder) or a "
                   "Hugging Face GPT-2 folder (--hf) on a JSONL task file: one "
                   '{"prompt": ..., "response": ...} per line. The training loop, checkpoints and --resume '
                   "are train's; the defaults differ: "
                   + ", ".join(f"{k}={v}" for k, v in FINETUNE_DEFAULTS.items())
                   + ". Other settings come from the base run.")
    p = sub.add_parser("finetune", help="continue training on prompt/response pairs, loss on responses only",
                       description=description)
    base = p.add_mutually_exclusive_group()
    base.add_argument("--init", help="our checkpoint: a run folder (uses best/, else last/) or a checkpoint "
                                     "folder")
    base.add_argument("--hf", help="a Hugging Face GPT-2 folder (config.json, model.safetensors, vocab.json, "
                                   "merges.txt)")
    p.add_argument("--task", required=True, help="the training pairs, JSONL (data/tang_couplets/train.jsonl)")
    p.add_argument("--val", help="validation pairs, JSONL (default: a seeded 10%% of --task)")
    p.add_argument("--out", help="run folder (default: runs/finetune_<task file name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    group = p.add_argument_group("settings (override the defaults)")
    for f in fields(TrainConfig):
        if f.name in ("dataset",):
            continue
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        group.add_argument(*names, dest=f"set_{f.name}", metavar=f.type.upper(), default=None,
                           help=f"(default {FINETUNE_DEFAULTS.get(f.name, 'the base run')!r})")


def _cmd_finetune(args: argparse.Namespace) -> int:
    if not args.resume and not (args.init or args.hf):
        print("minigpt: error: give the model to fine-tune: --init RUN or --hf FOLDER", file=sys.stderr)
        return 2
    raw = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    out = Path(args.out) if args.out else Path("runs") / f"finetune_{Path(args.task).stem}"
    try:
        summary = finetune.finetune(args.task, out, init=args.init, hf_dir=args.hf, val=args.val,
                                    overrides=train.parse_overrides(raw), resume=args.resume,
                                    progress=not args.no_progress)
    except train.TrainingDiverged as exc:
        print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    return 130 if summary["interrupted"] else 0


# ---- minigpt eval --checkpoint RUN [RUN ...] [--data NAME --split val] [--task FILE] ---------------------
def _add_eval(sub: argparse._SubParsersAction) -> None:
    description = ("Evaluate one or more models: perplexity on data/NAME/SPLIT.bin (--data), and greedy "
                   "answers to a JSONL task's prompts scored against its responses with BLEU, ROUGE (F1) and "
                   "exact match, plus the perplexity of the responses (--task). Chinese references are "
                   "detected: BLEU tokenize zh, ROUGE on characters. Prints a table; --json and --plot save "
                   "the report and a chart.")
    p = sub.add_parser("eval", help="perplexity on a dataset split; BLEU, ROUGE and perplexity on a task",
                       description=description)
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="RUN",
                   help="run folders (best/, else last/), checkpoint folders or Hugging Face GPT-2 folders")
    p.add_argument("--data", help="a prepared dataset (data/NAME): perplexity on its --split")
    p.add_argument("--split", default="val", help="train or val (default val)")
    p.add_argument("--task", help="a JSONL task file (e.g. data/tang_couplets/test.jsonl)")
    p.add_argument("--max-examples", type=int, help="score only the first N task examples")
    p.add_argument("--max-tokens", type=int, help="perplexity over only the first N tokens of the split")
    p.add_argument("--lang", choices=("auto", "zh", "en"), default="auto",
                   help="zh: BLEU tokenize zh + ROUGE on characters; en: 13a + rouge-score's tokenizer")
    p.add_argument("--json", help="write the report (scores and sample answers) to this JSON file")
    p.add_argument("--plot", help="write a bar chart comparing the models to this PNG file")


def _cmd_eval(args: argparse.Namespace) -> int:
    report = evaluate.evaluate(args.checkpoint, data=args.data, split=args.split, task=args.task,
                               max_examples=args.max_examples, max_tokens=args.max_tokens, lang=args.lang)
    print(evaluate.format_table(report))
    if args.json:
        evaluate.write_json(report, args.json)
        print(f"report: {args.json}")
    if args.plot:
        evaluate.plot(report, args.plot)
        print(f"chart: {args.plot}")
    return 0


COMMANDS = {
    "lesson": (_add_lesson, _cmd_lesson),
    "download": (_add_download, _cmd_download),
    "prepare": (_add_prepare, _cmd_prepare),
    "train": (_add_train, _cmd_train),
    "sample": (_add_sample, _cmd_sample),
    "finetune": (_add_finetune, _cmd_finetune),
    "eval": (_add_eval, _cmd_eval),
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
    keep_freed_memory()        # an entry point's choice, not an import side effect (see allocator.py)
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
