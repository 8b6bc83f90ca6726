"""`minigpt ...`: the command line. Thin on purpose: it parses arguments and calls the modules.

Each subcommand is a pair: `_add_<name>(subparsers)` declares its arguments, `_cmd_<name>(args)` runs
it and returns the exit code. A subcommand is listed in COMMANDS only once it works.

Conventions, the same for every subcommand: every long option answers to both spellings
(`--max-new-tokens` and `--max_new_tokens`); a model is given by any folder load_model takes (a run, a
checkpoint or a Hugging Face GPT-2 folder): `--init-from` where training starts from it, `--checkpoint`
where it is only read; progress bars are drawn only when stderr is a terminal (`--progress` forces them).
Every expected error (bad input, a missing or unreadable file, a full disk) is one line on stderr and a
non-zero exit code, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import fields
from pathlib import Path

from minigpt import engines
from minigpt.allocator import keep_freed_memory
from minigpt.course import grader as grading
from minigpt.course.hints import load_hints
from minigpt.course.notebook import write_notebook
from minigpt.datasets.recipes import RECIPES, prepare
from minigpt.files import checkpoint, download
from minigpt.files.boundary import read_text
from minigpt.files.models import load_model
from minigpt.files.paths import data_dir
from minigpt.finetune import run as finetune
from minigpt.finetune.lora import LoRAConfig
from minigpt.finetune.run import FINETUNE_DEFAULTS
from minigpt.metrics import evaluate
from minigpt.parallel.comm import ParallelError, world
from minigpt.parallel.team import TeamError
from minigpt.sampling import EOT, stream
from minigpt.training.config import (
    MODEL_KEYS,
    TrainConfig,
    config_from_preset,
    list_presets,
    parse_overrides,
    resume_config,
)
from minigpt.training.loop import TrainingDiverged, train


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose long options answer to both spellings: --max-new-tokens, --max_new_tokens."""

    def add_argument(self, *names, **kwargs):
        alts = []
        for name in names:
            if name.startswith("--") and ("-" in name[2:] or "_" in name[2:]):
                alt = "--" + (name[2:].replace("-", "_") if "-" in name[2:] else name[2:].replace("_", "-"))
                if alt not in names:
                    alts.append(alt)
        return super().add_argument(*names, *alts, **kwargs)


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars: --progress / --no-progress, else only when stderr is a terminal (not in logs)."""
    return sys.stderr.isatty() if args.progress is None else args.progress


def _add_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="draw progress bars (default: only when stderr is a terminal)")


# ---- minigpt lesson list | run NN | hint NN [STEP] | check NN [--impl FILE] [--step K] -------------------
def _add_lesson(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("lesson", help="list, run, hint or grade the lessons",
                       description="The chapters: list them, run a walk-through, show an exercise's hints, "
                                   "or grade an implementation.")
    lsub = p.add_subparsers(dest="lesson_cmd", required=True)
    lsub.add_parser("list", help="the lessons, in order")
    run = lsub.add_parser("run", help="run a lesson's walk-through (lesson.py)")
    run.add_argument("number", help="lesson number, e.g. 04")
    hint = lsub.add_parser("hint", help="progressive hints for an exercise step",
                           description="Without STEP: the exercise's steps. With STEP: its hints up to "
                                       "--level (the first nudges, the last nearly gives the answer).")
    hint.add_argument("number", help="lesson number, e.g. 03")
    hint.add_argument("step", nargs="?", type=int, help="step number (see `minigpt lesson hint NN`)")
    hint.add_argument("--level", type=int, default=1, help="show hints 1..LEVEL (default 1)")
    hint.add_argument("--all", action="store_true", help="show every hint of the step")
    check = lsub.add_parser("check", help="grade an implementation against a lesson's stored references",
                            description="Grade minigpt's own module, or your file with --impl, against the "
                                        "lesson's references, step by step. Exit code 1 unless every graded "
                                        "step passes.")
    check.add_argument("number", help="lesson number, e.g. 04")
    check.add_argument("--impl", help="a .py file (e.g. the lesson's exercise.py once filled in) or a "
                                      "module name; default: minigpt's own implementation")
    check.add_argument("--step", type=int, help="grade only this step of the exercise")
    check.add_argument("--quiet", action="store_true", help="print only the summary")
    _add_lesson_notebook(lsub)


def _cmd_lesson(args: argparse.Namespace) -> int:
    if args.lesson_cmd == "list":
        for path in grading.list_lessons():
            title = _lesson_title(path)
            print(f"{path.name:<18} {title}")
        return 0
    if args.lesson_cmd == "notebook":
        return _cmd_lesson_notebook(args)
    folder = grading.find_lesson(args.number)
    if args.lesson_cmd == "run":
        env = dict(os.environ)
        if not os.environ.get("DISPLAY") and sys.platform.startswith("linux"):
            env.setdefault("MPLBACKEND", "Agg")  # no screen: save the figures, don't show them
        return subprocess.call([sys.executable, "lesson.py"], cwd=folder, env=env)
    if args.lesson_cmd == "hint":
        return _show_hints(folder, args.step, len(load_hints(folder).steps.get(args.step or 0, []))
                           if args.all else args.level)
    g = grading.grade(folder, impl=args.impl, verbose=not args.quiet, step=args.step)
    if args.quiet:
        print(g.summary())
    return 0 if g.ok else 1


def _show_hints(folder, step: int | None, level: int) -> int:
    steps = {s.number: s for s in grading.list_steps(folder)}
    hints = load_hints(folder)
    number = folder.name.split("_", 1)[0]
    if step is None:
        print(f"{folder.name}: the exercise's steps (hints: minigpt lesson hint {number} STEP)")
        for n, s in steps.items():
            print(f"  step {n}  {s.title} ({', '.join(s.functions)}): {len(hints.steps.get(n, []))} hints")
        return 0
    if step not in steps:
        print(f"error: {folder.name} has no step {step}; its steps are {sorted(steps)}", file=sys.stderr)
        return 2
    shown = hints.steps.get(step, [])
    s = steps[step]
    print(f"{folder.name}, step {step}: {s.title} ({', '.join(s.functions)})")
    for i, text in enumerate(shown[:max(level, 1)], start=1):
        print(f"  hint {i}/{len(shown)}: {text}")
    if level < len(shown):
        print(f"  (next: minigpt lesson hint {number} {step} --level {max(level, 1) + 1}; "
              f"then grade it alone: minigpt lesson check {number} --impl FILE --step {step})")
    return 0


def _add_lesson_notebook(lsub: argparse._SubParsersAction) -> None:
    nb = lsub.add_parser("notebook", help="write a lesson's walk-through as a Jupyter notebook",
                         description="Write the chapter's text and lesson.py's cells as a Jupyter notebook "
                                     "(NN_name.ipynb), figures inline. Default folder: the lesson's own, so "
                                     "its links and figures resolve.")
    nb.add_argument("number", help="lesson number, e.g. 04, or 'all'")
    nb.add_argument("--out", type=Path, help="folder for the notebooks (default: each lesson's folder)")


def _cmd_lesson_notebook(args: argparse.Namespace) -> int:
    lessons = grading.list_lessons() if args.number == "all" else [grading.find_lesson(args.number)]
    for folder in lessons:
        print(write_notebook(folder, args.out))
    return 0


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
    _add_progress(p)


def _cmd_download(args: argparse.Namespace) -> int:
    try:
        folder = download.download(args.name, args.dest, revision=args.revision,
                                   progress=_progress(args))
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
    _add_progress(p)


def _cmd_prepare(args: argparse.Namespace) -> int:

    source = args.from_file or args.path
    out = data_dir() / args.out_name if args.out_name else None
    prepare(args.name, from_file=source, out=out, url=args.url, vocab=args.vocab, tokenizer=args.tokenizer,
            vocab_size=args.vocab_size, progress=_progress(args))
    return 0


# ---- minigpt train [--preset NAME] [--KEY VALUE ...] [--out DIR] [--resume] ------------------------------
def _add_settings(p: argparse.ArgumentParser, title: str, skip: tuple[str, ...], defaults: dict) -> None:
    """One option per TrainConfig field, in both spellings; skip the ones this command does not accept."""
    group = p.add_argument_group(title)
    for f in fields(TrainConfig):
        if f.name in skip:
            continue
        names = [f"--{f.name}"] + ([f"--{f.name.replace('_', '-')}"] if "_" in f.name else [])
        group.add_argument(*names, dest=f"set_{f.name}", metavar=f.type.upper(), default=None,
                           help=f"(default {defaults.get(f.name, f.default)!r})")


def _overrides(args: argparse.Namespace) -> dict:
    given = {k[4:]: v for k, v in vars(args).items() if k.startswith("set_") and v is not None}
    return parse_overrides(given)


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GPT (no arguments: the offline default, minutes on a CPU)",
                       description="Train from a preset (minigpt/training/presets/*.toml); any setting can "
                                   "be overridden, e.g. --max_iters 500 --lr 3e-4. Checkpoints, log.jsonl "
                                   "and loss.png go to --out (default runs/PRESET). Ctrl-C saves and stops; "
                                   "--resume continues exactly where the run stopped. Under `mpiexec -n N` "
                                   "it trains data-parallel: N ranks x --batch_size each (lesson 13).")
    p.add_argument("--preset", default="default", help=f"one of {', '.join(list_presets())}, or a .toml file")
    p.add_argument("--out", help="run folder (default: runs/PRESET)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    p.add_argument("--init-from", help="start from these weights: a run, checkpoint or GPT-2 folder")
    p.add_argument("--no-sample", action="store_true", help="don't print a sample at the end")
    _add_progress(p)
    _add_settings(p, "settings (override the preset)", (), {})


def _cmd_train(args: argparse.Namespace) -> int:
    overrides = _overrides(args)
    out = Path(args.out) if args.out else Path("runs") / Path(args.preset).stem
    if args.resume:
        try:
            state = checkpoint.load(out / "last").state
        except checkpoint.CheckpointError as exc:
            raise checkpoint.CheckpointError(f"cannot resume: {exc}") from None
        cfg = resume_config(state["train_config"], overrides, str(out / "last" / "state.json"))
    else:
        cfg = config_from_preset(args.preset, overrides)
    comm = world()                              # one process, or every rank under mpiexec -n N
    if comm.rank == 0:
        _prepare_if_missing(cfg.dataset)
        _hint_blas_threads()
    comm.barrier()                              # the dataset is there before any rank reads it
    try:
        summary = train(cfg, out, resume=args.resume, init_from=args.init_from, progress=_progress(args),
                        sample=not args.no_sample, comm=comm)
    except (TrainingDiverged, ParallelError) as exc:      # every rank stops together; rank 0 says why
        if comm.rank == 0:
            print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    except TeamError as exc:                              # a step engine's worker died: last/ is intact
        print(f"minigpt: error: {exc}; {out / 'last'} holds the last checkpoint (--resume continues)",
              file=sys.stderr)
        return 1
    return 130 if summary["interrupted"] else 0


def _prepare_if_missing(name: str) -> None:
    """data/<name> prepared first if it is a recipe that needs no input and is not there yet."""
    folder = data_dir() / name
    if (folder / "meta.json").is_file():
        return
    if name not in RECIPES or name in ("textfile", "tang_couplets"):
        raise ValueError(f"dataset {name!r} is not prepared ({folder} has no meta.json): run "
                         f"`minigpt prepare NAME` first; the recipes are {', '.join(RECIPES)}")
    print(f"preparing dataset {name} (first use) ...")
    prepare(name)


def _hint_blas_threads() -> None:
    """On a busy machine, BLAS threads that wait for a core slow training down: say so, once. Not with the
    engines on: then each step runs on worker processes with one BLAS thread each (parallel/team.py)."""
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")):
        return
    if engines.enabled():
        return
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return
    if cores > 1 and load > cores / 2:
        print(f"note: this machine is busy (load {load:.1f} on {cores} cores); BLAS uses {cores} threads, "
              "which then wait for each other. If steps are slow, try OMP_NUM_THREADS=1 minigpt ...",
              file=sys.stderr)


# ---- minigpt sample --checkpoint FOLDER [--prompt TEXT] ... ------------------------------------------------
def _add_sample(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sample", help="generate text from a trained model or a GPT-2 folder",
                       description="Generate text after a prompt. Output streams as it is sampled when "
                                   "stdout is a terminal. With --temperature 0 (greedy) and a GPT-2 folder, "
                                   "the text equals transformers' generate(do_sample=False).")
    p.add_argument("--checkpoint", required=True, metavar="FOLDER",
                   help="a training run (runs/NAME: best/, else last/), a checkpoint folder, or a GPT-2 "
                        "folder (config.json, model.safetensors, vocab.json, merges.txt)")
    text = p.add_mutually_exclusive_group()
    text.add_argument("--prompt", default="", help="the text to continue (default: empty: start from "
                                                   "<|endoftext|>, or a newline for a character model)")
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
    p.add_argument("--allow-special", action="store_true", help="special-token text in the prompt (e.g. "
                   "<|endoftext|>) becomes the control token; without it such a prompt is refused")
    p.add_argument("--stream", action=argparse.BooleanOptionalAction, default=None,
                   help="print tokens as they come (default: when stdout is a terminal)")


def _cmd_sample(args: argparse.Namespace) -> int:
    loaded = load_model(args.checkpoint)
    model, tok = loaded.model, loaded.tokenizer
    prompt = read_text(args.prompt_file, "prompt file") if args.prompt_file else args.prompt
    ids = _encode_prompt(tok, prompt, args.allow_special)
    stop: list = [s.replace("\\n", "\n").replace("\\t", "\t") for s in args.stop]
    if loaded.eos_id is not None and not args.ignore_eos:
        stop += [loaded.eos_id] if isinstance(loaded.eos_id, int) else list(loaded.eos_id)
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


def _encode_prompt(tok, prompt: str, allow_special: bool = False) -> list[int]:
    """The prompt's ids. A prompt is text: its special-token text (e.g. <|endoftext|>) is refused unless
    allow_special (--allow-special) makes it the control token. An empty prompt starts from <|endoftext|>
    if the tokenizer has it, else from a newline (a character model's natural start), else it is refused
    with a clear message."""
    if hasattr(tok, "special_tokens"):                    # BPE, with tiktoken's rules
        try:
            ids = tok.encode(prompt, allowed_special="all" if allow_special else set())
        except ValueError:
            raise ValueError("the prompt contains special-token text (e.g. <|endoftext|>); pass "
                             "--allow-special to make it the control token") from None
    else:
        ids = tok.encode(prompt)                          # a character tokenizer
    if ids or EOT in (getattr(tok, "special_tokens", None) or {}):
        return ids
    try:
        ids = tok.encode("\n")
    except ValueError:
        ids = []
    if not ids:
        raise ValueError("an empty prompt needs a start token, and this model's tokenizer has neither "
                         "<|endoftext|> nor a newline: give a --prompt")
    print("(empty prompt: starting from a newline)", file=sys.stderr)
    return ids


# ---- minigpt finetune --init-from FOLDER --task FILE [--val FILE] [--KEY VALUE ...] -----------------------
def _add_finetune(sub: argparse._SubParsersAction) -> None:
    description = ("Fine-tune a model (--init-from: a run folder -> its best/, a checkpoint folder, or a "
                   "Hugging Face GPT-2 folder) on a JSONL task file: one "
                   '{"prompt": ..., "response": ...} per line. The training loop, checkpoints and --resume '
                   "are train's; the defaults differ: "
                   + ", ".join(f"{k}={v}" for k, v in FINETUNE_DEFAULTS.items())
                   + ". Other settings come from the base run; the model's shape is the base model's.")
    p = sub.add_parser("finetune", help="continue training on prompt/response pairs, loss on responses only",
                       description=description)
    p.add_argument("--init-from", help="the base model: a run, checkpoint or Hugging Face GPT-2 folder")
    p.add_argument("--task", required=True, help="the training pairs, JSONL (data/tang_couplets/train.jsonl)")
    p.add_argument("--val", help="validation pairs, JSONL (default: a seeded 10%% of --task)")
    p.add_argument("--out", help="run folder (default: runs/finetune_<task file name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    g = p.add_argument_group("LoRA (lessons/14_lora): freeze the model, train low-rank adapters")
    g.add_argument("--lora", type=int, metavar="RANK",
                   help="train rank-RANK adapters instead of every weight")
    g.add_argument("--lora-alpha", "--lora_alpha", type=float, metavar="A",
                   help="the update is scaled by A / RANK (default 8, PEFT's)")
    g.add_argument("--lora-dropout", "--lora_dropout", type=float, metavar="P",
                   help="dropout on the adapters' input (default 0)")
    g.add_argument("--lora-targets", "--lora_targets", metavar="NAMES",
                   help="comma-separated layers to adapt: c_attn, c_proj (attention's and the MLP's), c_fc, "
                        "attn.c_proj, mlp.c_proj (default c_attn)")
    g.add_argument("--merge", action="store_true", help="at the end, fold the adapters into the base and "
                   "write OUT/merged/, a Hugging Face GPT-2 folder")
    _add_progress(p)
    _add_settings(p, "settings (override the defaults)", ("dataset", *MODEL_KEYS), FINETUNE_DEFAULTS)


def _lora_config(args: argparse.Namespace) -> LoRAConfig | None:
    """--lora RANK [--lora-alpha A] [--lora-dropout P] [--lora-targets a,b] -> a LoRAConfig, or None."""
    if args.lora is None:
        given = [f"--{k.replace('_', '-')}" for k in ("lora_alpha", "lora_dropout", "lora_targets")
                 if getattr(args, k) is not None]
        if given:
            raise ValueError(f"{', '.join(given)} without --lora RANK: give the rank too")
        return None
    settings: dict = {"r": args.lora}
    if args.lora_alpha is not None:
        settings["alpha"] = args.lora_alpha
    if args.lora_dropout is not None:
        settings["dropout"] = args.lora_dropout
    if args.lora_targets is not None:
        settings["targets"] = tuple(t.strip() for t in args.lora_targets.split(",") if t.strip())
    return LoRAConfig(**settings)


def _cmd_finetune(args: argparse.Namespace) -> int:
    if not args.resume and not args.init_from:
        print("minigpt: error: give the model to fine-tune: --init-from FOLDER", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path("runs") / f"finetune_{Path(args.task).stem}"
    rank = world().rank                         # under mpiexec -n N only rank 0 prints
    try:
        summary = finetune.finetune(args.task, out, init=args.init_from, val=args.val,
                                    overrides=_overrides(args), resume=args.resume, progress=_progress(args),
                                    lora=_lora_config(args), merge=args.merge,
                                    log=print if rank == 0 else _quiet)
    except (TrainingDiverged, ParallelError) as exc:      # under mpiexec: every rank stops, rank 0 says why
        if rank == 0:
            print(f"minigpt: error: {exc}", file=sys.stderr)
        return 1
    except TeamError as exc:                              # a step engine's worker died: last/ is intact
        print(f"minigpt: error: {exc}; {out / 'last'} holds the last checkpoint (--resume continues)",
              file=sys.stderr)
        return 1
    return 130 if summary["interrupted"] else 0


def _quiet(_msg: str) -> None:
    """The log of MPI ranks other than 0."""


# ---- minigpt eval --checkpoint FOLDER [FOLDER ...] [--data NAME --split val] [--task FILE] -------------
def _add_eval(sub: argparse._SubParsersAction) -> None:
    description = ("Evaluate one or more models: perplexity on data/NAME/SPLIT.bin (--data), and greedy "
                   "answers to a JSONL task's prompts scored against its responses with BLEU, ROUGE (F1) and "
                   "exact match, plus the perplexity of the responses (--task). Every model is loaded and "
                   "checked before anything is computed. Chinese references are detected: BLEU tokenize zh, "
                   "ROUGE on characters. Prints a table with example answers; --json and --plot save the "
                   "report and a chart.")
    p = sub.add_parser("eval", help="perplexity on a dataset split; BLEU, ROUGE and perplexity on a task",
                       description=description)
    p.add_argument("--checkpoint", nargs="+", required=True, metavar="FOLDER",
                   help="run folders (best/, else last/), checkpoint folders or Hugging Face GPT-2 folders")
    p.add_argument("--data", help="a prepared dataset (data/NAME): perplexity on its --split")
    p.add_argument("--split", default="val", choices=("train", "val"), help="train or val (default val)")
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
    parser = _Parser(prog="minigpt", description="A GPT built from scratch in pure NumPy.")
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
    except (ValueError, KeyError) as exc:      # every minigpt error about bad input is a ValueError
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"minigpt: error: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:                     # missing or unreadable files, a read-only folder, a full disk
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        print(f"minigpt: error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
