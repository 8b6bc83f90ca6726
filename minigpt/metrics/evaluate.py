"""`minigpt eval`: compare checkpoints by perplexity on a prepared split and by BLEU / ROUGE on a task.

    report = evaluate(["runs/tang", "runs/couplets"], data="tang_poems", split="val",
                      task="data/tang_couplets/test.jsonl", max_examples=200)
    print(format_table(report)); write_json(report, "eval.json"); plot(report, "eval.png")

For each model (a run folder -> its best/, else last/; a checkpoint folder; or a Hugging Face GPT-2
folder with config.json, model.safetensors, vocab.json and merges.txt):

- perplexity on data/<NAME>/<split>.bin (metrics.perplexity, disjoint windows of block_size: the same
  number as training's val loss, exponentiated). The dataset's tokenizer must be the model's, or the ids
  mean different things: a different tokenizer is an error, not a number.
- on a task file (JSONL prompt/response, tasks.py): the greedy answer to every prompt
  (sampling.generate, temperature 0, stopped at the end token "\\n", capped at twice the reference's
  length in tokens + 4), with the end token and surrounding spaces removed; then
    bleu        corpus BLEU, sacrebleu's definition (metrics.bleu), tokenize "zh" for Chinese references;
    rouge1/2/L  the mean over examples of ROUGE F1 (metrics.rouge), tokenizer "char" for Chinese;
    exact       the share of answers equal to the reference;
    perplexity  exp of the mean loss over the response tokens (end token included) given the prompt:
                the masked loss fine-tuning minimises, so it measures the task directly.
  "Chinese" means: more than half of the references' non-space characters are CJK (bleu_tokenizers'
  ranges); force it with lang="zh" or lang="en" (13a BLEU, rouge-score's default tokenizer).

Scores are reported as sacrebleu and rouge-score print them: BLEU 0..100, ROUGE 0..1.

What this file deliberately does not do: sampling-based metrics (greedy only, so a report is exactly
reproducible), confidence intervals, or human judgement — read the samples the report keeps.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from minigpt import metrics
from minigpt.datasets.prepared import load_tokenizer, load_tokens
from minigpt.files.atomic import write_text_atomic
from minigpt.files.models import load_model
from minigpt.files.paths import data_dir
from minigpt.finetune.tasks import END, TaskBatches, encode_pair, read_jsonl
from minigpt.sampling import generate

N_SHOWN = 3            # of them, printed under the table
N_SAMPLES = 8          # answers kept in the report per model, to read next to the numbers
SCORES = ("bleu", "rouge1", "rouge2", "rougeL", "exact")


# ---- perplexity on a prepared split --------------------------------------------------------------------
def data_folder(data: str | Path) -> Path:
    return Path(data) if Path(data).is_dir() else data_dir() / str(data)


def check_tokenizer(name: str, tokenizer: Any, data: str | Path) -> None:
    """The dataset was tokenized with the model's tokenizer, or its perplexity would compare different
    things. evaluate() checks every model before computing anything."""
    folder = data_folder(data)
    theirs = load_tokenizer(folder / "tokenizer.json")
    if not _same_tokenizer(tokenizer, theirs):
        raise ValueError(f"{name}: {folder} was tokenized with another tokenizer than the model's "
                         f"({theirs.vocab_size} vs {tokenizer.vocab_size} tokens, or different ones): its "
                         "perplexity would compare different things. Evaluate on a dataset prepared with the "
                         "model's tokenizer")


def split_perplexity(model: Any, tokenizer: Any, data: str | Path, split: str,
                     max_tokens: int | None = None) -> dict[str, Any]:
    """Perplexity of model on data/<data>/<split>.bin (or a dataset folder), first max_tokens tokens."""
    folder = data_folder(data)
    check_tokenizer(str(folder), tokenizer, data)
    ids = load_tokens(folder, split)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    nll, n = metrics.mean_nll(model, np.asarray(ids, dtype=np.int64))
    return {"data": str(folder.name), "split": split, "tokens": n, "loss": nll, "perplexity": math.exp(nll)}


def _same_tokenizer(a: Any, b: Any) -> bool:
    if type(a) is not type(b) or a.vocab_size != b.vocab_size:
        return False
    if hasattr(a, "chars"):
        return a.chars == b.chars
    return getattr(a, "merges", None) == getattr(b, "merges", None)


# ---- a task: greedy answers, BLEU, ROUGE, response perplexity ------------------------------------------
def detect_lang(texts: list[str]) -> str:
    """"zh" when more than half of the non-space characters are CJK, else "en"."""
    chars = [c for t in texts for c in t if not c.isspace()]
    cjk = sum(metrics.is_chinese_char(c) for c in chars)
    return "zh" if chars and cjk > len(chars) / 2 else "en"


def answer(model: Any, tokenizer: Any, prompt_ids: list[int], max_new_tokens: int, end: str = END) -> str:
    """The greedy continuation of prompt_ids, up to the end string (not included), stripped."""
    new = generate(model, prompt_ids, max_new_tokens=max_new_tokens, temperature=0, stop=end,
                   tokenizer=tokenizer)
    text = tokenizer.decode(new)
    cut = text.find(end)
    return (text if cut < 0 else text[:cut]).strip()


def task_scores(model: Any, tokenizer: Any, task: str | Path, max_examples: int | None = None,
                lang: str = "auto", end: str = END, log=None) -> dict[str, Any]:
    """Greedy answers to the task's prompts scored against its responses (see the module docstring)."""
    examples = read_jsonl(task)[:max_examples]
    refs = [ex.response.strip() for ex in examples]
    lang = detect_lang(refs) if lang == "auto" else lang
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be auto, zh or en, got {lang!r}")
    pairs = [encode_pair(tokenizer, ex, end) for ex in examples]
    hyps = []
    t0 = time.time()
    for k, (prompt_ids, response_ids) in enumerate(pairs):
        hyps.append(answer(model, tokenizer, prompt_ids, 2 * len(response_ids) + 4, end))
        if log is not None and (k + 1) % 100 == 0:
            log(f"  {k + 1}/{len(pairs)} answers, {time.time() - t0:.0f} s")
    rouge_tok = "char" if lang == "zh" else "default"
    rouges = [metrics.rouge(h, r, tokenizer=rouge_tok) for h, r in zip(hyps, refs, strict=True)]
    out: dict[str, Any] = {
        "file": str(task), "examples": len(examples), "lang": lang,
        "bleu": metrics.bleu(hyps, refs, tokenize="zh" if lang == "zh" else "13a"),
        **{k: float(np.mean([s[k][2] for s in rouges])) for k in ("rouge1", "rouge2", "rougeL")},
        "exact": float(np.mean([h == r for h, r in zip(hyps, refs, strict=True)])),
    }
    out.update(response_perplexity(model, pairs))
    out["samples"] = [{"prompt": ex.prompt, "reference": r, "answer": h}
                      for ex, r, h in list(zip(examples, refs, hyps, strict=True))[:N_SAMPLES]]
    out["degenerate"] = degenerate(hyps)
    return out


def degenerate(answers: list[str]) -> str:
    """Why a model's answers are not worth scoring, or "": all empty, all identical, or looping."""
    if not answers:
        return ""
    if all(not a for a in answers):
        return "every answer is empty"
    distinct = len(set(answers))
    if len(answers) >= 4 and distinct <= max(1, len(answers) // 20):
        return f"{distinct} distinct answer(s) to {len(answers)} prompts, e.g. {answers[0][:30]!r}"
    looping = sum(_repeats(a) for a in answers)
    if looping > len(answers) / 2:
        return f"{looping} of {len(answers)} answers repeat one short piece over and over"
    return ""


def _repeats(text: str) -> bool:
    """True if text is one piece of 1-4 characters repeated at least 4 times (with a partial tail)."""
    for k in range(1, 5):
        if len(text) >= 4 * k and text == (text[:k] * (len(text) // k + 1))[:len(text)]:
            return True
    return False


def response_perplexity(model: Any, pairs: list[tuple[list[int], list[int]]],
                        batch_size: int = 32) -> dict[str, float]:
    """exp(mean loss over the response tokens), each example once, prompts masked (tasks.make_batch)."""
    rows = TaskBatches(pairs, model.config.block_size, batch_size)
    total, count = 0.0, 0
    for x, y in rows.batches():                                  # (B, T), (B, T)
        n = int((y != -100).sum())
        total += model.loss(x, y) * n                            # the batch mean, back to a sum
        count += n
    return {"response_tokens": count, "response_loss": total / count, "perplexity": math.exp(total / count)}


# ---- the whole report ----------------------------------------------------------------------------------
def evaluate(checkpoints: list[str | Path], data: str | None = None, split: str = "val",
             task: str | Path | None = None, max_examples: int | None = None, max_tokens: int | None = None,
             lang: str = "auto", log=print) -> dict[str, Any]:
    """The report: one entry per model with "perplexity" (data given) and "task" (task given)."""
    if not checkpoints:
        raise ValueError("give at least one --checkpoint")
    if data is None and task is None:
        raise ValueError("nothing to evaluate: give --data NAME (perplexity on a split) and/or --task FILE")
    loaded = [load_model(path) for path in checkpoints]      # every model checked before any output
    if data is not None:
        for m in loaded:
            check_tokenizer(m.name, m.tokenizer, data)
    if task is not None:
        examples = read_jsonl(task)[:max_examples]
        for m in loaded:
            for ex in examples:
                encode_pair(m.tokenizer, ex, END)              # a task line a tokenizer cannot encode
    models = []
    for path, m in zip(checkpoints, loaded, strict=True):
        name, model, tokenizer = m.name, m.model, m.tokenizer
        entry: dict[str, Any] = {"name": name, "path": str(path), "params": model.num_params()}
        log(f"{name}: {entry['params']:,} parameters")
        if data is not None:
            entry["perplexity"] = split_perplexity(model, tokenizer, data, split, max_tokens)
            log(f"  perplexity on {data}/{split}: {entry['perplexity']['perplexity']:.2f}")
        if task is not None:
            entry["task"] = task_scores(model, tokenizer, task, max_examples, lang, log=log)
            t = entry["task"]
            log(f"  {Path(task).name}: BLEU {t['bleu']:.2f}, ROUGE-L {t['rougeL']:.3f}, "
                f"perplexity {t['perplexity']:.2f}")
            if t["degenerate"]:
                log(f"  warning: {name}'s answers look degenerate ({t['degenerate']}): its scores measure "
                    "that, not the task")
        models.append(entry)
    return {"format": "minigpt-eval", "version": 1, "data": data, "split": split,
            "task": str(task) if task else None, "max_examples": max_examples, "models": models}


def format_table(report: dict[str, Any]) -> str:
    """The terminal table: one row per model."""
    head = ["model"]
    if report["data"]:
        head.append(f"ppl {report['data']}/{report['split']}")
    if report["task"]:
        head += ["task ppl", "BLEU", "ROUGE-1", "ROUGE-2", "ROUGE-L", "exact"]
    rows = []
    for m in report["models"]:
        row = [m["name"]]
        if report["data"]:
            row.append(f"{m['perplexity']['perplexity']:.2f}")
        if report["task"]:
            t = m["task"]
            row += [f"{t['perplexity']:.2f}", f"{t['bleu']:.2f}", f"{t['rouge1']:.3f}", f"{t['rouge2']:.3f}",
                    f"{t['rougeL']:.3f}", f"{t['exact']:.1%}"]
        rows.append(row)
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i == 0 else c.rjust(w)
                       for i, (c, w) in enumerate(zip(r, widths, strict=True))) for r in [head, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if report["task"]:
        m = report["models"][0]["task"]
        zh = m["lang"] == "zh"
        lines.append(f"task: {report['task']} ({m['examples']} examples, {m['lang']}: BLEU tokenize "
                     f"{'zh' if zh else '13a'}, ROUGE F1 on {'char' if zh else 'default'} tokens, mean over "
                     "examples)")
        lines += ["", "examples (prompt -> reference | each model's answer):"]
        for k, s in enumerate(m["samples"][:N_SHOWN]):
            lines.append(f"  {s['prompt']!r} -> {s['reference']!r}")
            for model in report["models"]:
                lines.append(f"      {model['name']}: {model['task']['samples'][k]['answer']!r}")
        for model in report["models"]:
            if model["task"].get("degenerate"):
                lines.append(f"warning: {model['name']}: {model['task']['degenerate']}")
    return "\n".join(lines)


def write_json(report: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(report, indent=1, ensure_ascii=False) + "\n")


def plot(report: dict[str, Any], path: str | Path) -> None:
    """A grouped bar chart: task scores (BLEU/100, ROUGE, exact) and perplexities, one colour per model."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = report["models"]
    panels = []
    if report["task"]:
        panels.append(("BLEU, 0-100 (higher is better)", ["corpus BLEU"],
                       [[m["task"]["bleu"]] for m in models]))
        names = ["ROUGE-1", "ROUGE-2", "ROUGE-L", "exact match"]
        values = [[m["task"][k] for k in ("rouge1", "rouge2", "rougeL", "exact")] for m in models]
        panels.append(("ROUGE F1 and exact match, 0-1", names, values))
    ppl_names, ppl_values = [], [[] for _ in models]
    if report["data"]:
        ppl_names.append(f"{report['data']}/{report['split']}")
        for v, m in zip(ppl_values, models, strict=True):
            v.append(m["perplexity"]["perplexity"])
    if report["task"]:
        ppl_names.append("task responses")
        for v, m in zip(ppl_values, models, strict=True):
            v.append(m["task"]["perplexity"])
    panels.append(("perplexity (lower is better)", ppl_names, ppl_values))
    widths = [max(1.5, len(names)) for _, names, _ in panels]        # one unit of width per group of bars
    fig = Figure(figsize=(2.5 + 1.6 * sum(widths), 4.2))
    FigureCanvasAgg(fig)
    grid = fig.add_gridspec(1, len(panels), width_ratios=widths)
    for k, (title, names, values) in enumerate(panels):
        ax = fig.add_subplot(grid[0, k])
        width = 0.8 / len(models)
        for i, (m, vals) in enumerate(zip(models, values, strict=True)):
            xs = np.arange(len(names)) + (i - (len(models) - 1) / 2) * width
            bars = ax.bar(xs, vals, width, label=m["name"])
            ax.bar_label(bars, fmt="%.3g", fontsize=7, rotation=90, padding=2)
        ax.set_xticks(np.arange(len(names)), names, fontsize=8)
        ax.set_title(title, fontsize=9)
        ax.margins(y=0.2)                                           # room for the vertical labels
        ax.grid(axis="y", alpha=0.3)
        if k == len(panels) - 1:
            ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
