"""The grader must fail known bugs, and name them: mutants of minigpt's own solution, one per classic bug.

Each mutant is minigpt's module with one piece of source text replaced (the replacement must occur in
the source exactly `count` times, so a mutant cannot silently stop mutating when the code changes). The
lesson's check grades the mutant on the step that covers the bug; the test asserts the step fails and
the report contains the expected diagnosis (a named bug signature or the chapter's pitfall). A grader that
passes a known bug is a failing test.
"""

from __future__ import annotations

import importlib
import inspect
import io
import sys
import types
from dataclasses import dataclass

import pytest

from minigpt import engines
from minigpt.course.grader import grade, load_impl

pytestmark = pytest.mark.filterwarnings("ignore::RuntimeWarning")     # the mutants overflow on purpose


@dataclass(frozen=True)
class Mutant:
    lesson: str
    step: int
    bug: str                      # the classic bug, in words (the test id)
    module: str                   # where minigpt defines the mutated code
    old: str
    new: str
    expect: tuple[str, ...]       # every phrase must appear in the report
    impl: str | tuple[str, ...] | None = None   # the module graded (default: module), or what re-exports it
    count: int = 1
    also: tuple[tuple[str, str], ...] = ()  # further (old, new) edits of the same bug elsewhere in the module
    alt: tuple[tuple[tuple[str, str], ...], ...] = ()   # the same bug's edits in other versions of the module


def build(m: Mutant) -> types.ModuleType:
    """minigpt's module with m.old replaced by m.new, as a fresh module object (nothing else changes)."""
    original = importlib.import_module(m.module)
    source = inspect.getsource(original)
    versions = (((m.old, m.new), *m.also), *m.alt)
    edits = next((v for v in versions if source.count(v[0][0]) == m.count
                  and all(source.count(o) == 1 for o, _ in v[1:])), None)
    assert edits is not None, f"{m.module}: no version of the mutant's text matches the source: {versions}"
    name = f"_mutant_{m.module.replace('.', '_')}"
    mod = types.ModuleType(name)
    mod.__file__ = original.__file__
    for old, new in edits:
        source = source.replace(old, new)
    sys.modules[name] = mod                        # dataclasses and typing look the module up by name
    try:
        exec(compile(source, original.__file__ or name, "exec"), mod.__dict__)
    finally:
        del sys.modules[name]
    if m.impl is None or m.impl == m.module:
        return mod
    package = load_impl(m.impl)                   # a package re-exporting the module, or a tuple of modules
    merged = types.ModuleType(f"_mutant_{str(m.impl).replace('.', '_')}")
    merged.__dict__.update(package.__dict__)
    for key, value in mod.__dict__.items():
        if key in package.__dict__ and getattr(value, "__module__", None) == name:
            merged.__dict__[key] = value
    return merged


# minigpt's masked, stable softmax in sdpa_forward, as one block of text
SOFTMAX_BLOCK = ("    np.copyto(att, -np.inf, where=causal_mask(Tq, Tk))   # no peeking at future positions\n"
                 "    att -= att.max(axis=-1, keepdims=True)            "
                 "# stable softmax: the largest exponent is 0\n"
                 "    np.exp(att, out=att)                              # (B, H, Tq, Tk)\n"
                 "    att /= att.sum(axis=-1, keepdims=True)")

PARALLEL_IMPL = ("minigpt.parallel.allreduce", "minigpt.training.batches")    # lesson 13's IMPL
TRAIN_IMPL = ("minigpt.training.batches", "minigpt.training.loop")    # lesson 09's IMPL

MUTANTS = [
    # ---- 01 tokenizer -----------------------------------------------------------------------------------
    Mutant("01", 2, "merging overlapping occurrences", "minigpt.tokenizer.bpe",
           "i += 2            # ... and both", "i += 1            # ... and both",
           ("Counting overlapping pairs but merging left to right",)),
    Mutant("01", 1, "pairs counted without overlap", "minigpt.tokenizer.bpe",
           "for pair in pairwise(ids):", "for pair in zip(ids[::2], ids[1::2]):",
           ("Counting overlapping pairs",)),
    Mutant("01", 4, "encoding by the latest merge", "minigpt.tokenizer.bpe",
           "pair = min(pairwise(ids), key=lambda p: merges.get(p, NO_MERGE))",
           "pair = max((p for p in pairwise(ids) if p in merges), key=merges.get, default=(-1, -1))",
           ("Encoding by the most frequent pair",)),
    Mutant("01", 3, "ties broken by counting order", "minigpt.tokenizer.bpe",
           "return min(stats, key=lambda pair: (-stats[pair], pair))", "return max(stats, key=stats.get)",
           ("Ties",)),
    # ---- 02 embeddings and dropout ----------------------------------------------------------------------
    Mutant("02", 2, "dwte[idx] += dout loses repeats", "minigpt.layers.embedding",
           "np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))",
           "dwte[idx.reshape(-1)] += dout.reshape(-1, C)", ("loses repeats",), impl="minigpt.layers"),
    Mutant("02", 1, "negative ids read the last row", "minigpt.layers.embedding",
           "(idx.min() < 0 or idx.max() >= V)", "(idx.max() >= V)", ("Negative ids", "did not raise"),
           impl="minigpt.layers"),
    Mutant("02", 1, "forgetting start", "minigpt.layers.embedding",
           "out = wte[idx] + wpe[start:start + T]", "out = wte[idx] + wpe[:T]", ("Forgetting start",),
           impl="minigpt.layers"),
    Mutant("02", 2, "dwpe not summed over the batch", "minigpt.layers.embedding",
           "dwpe[start:start + T] = dout.sum(axis=0)          # (T, C): every",
           "dwpe[start:start + T] = dout[0]          # (T, C): every",
           ("dwpe",), impl="minigpt.layers"),
    Mutant("02", 3, "dropout without the scale", "minigpt.layers.dropout",
           "mask = keep.astype(x.dtype) * (1.0 / (1.0 - p))", "mask = keep.astype(x.dtype)",
           ("Dropout without the scale", "constant ratio"), impl="minigpt.layers"),
    Mutant("02", 3, "backward without the forward's scale", "minigpt.layers.dropout",
           "return dout if mask is None else dout * mask",
           "return dout if mask is None else dout * (mask != 0)",
           ("forward's mask", "constant ratio"), impl="minigpt.layers"),
    # ---- 04 attention ---------------------------------------------------------------------------------
    Mutant("04", 2, "softmax over the queries", "minigpt.layers.attention",
           "att /= att.sum(axis=-1, keepdims=True)", "att /= att.sum(axis=-2, keepdims=True)",
           ("Softmax over the wrong axis",),
           alt=((("att = softmax(att, out=att)", "att = softmax(att, axis=-2, out=att)"),),)),
    Mutant("04", 1, "mask aligned top-left", "minigpt.layers.attention",
           "offset = Tk - Tq ", "offset = 0 ", ("mask aligned top-left",)),
    Mutant("04", 2, "masking after the softmax", "minigpt.layers.attention", SOFTMAX_BLOCK,
           SOFTMAX_BLOCK.replace("np.copyto(att, -np.inf, where=causal_mask(Tq, Tk))", "pass")
           + "; att *= ~causal_mask(Tq, Tk)", ("Masking after the softmax",),
           alt=((("np.copyto(att, -np.inf, where=causal_mask(Tq, Tk))", "pass"),
                 ("att = softmax(att, out=att)", "att = softmax(att, out=att) * ~causal_mask(Tq, Tk)")),)),
    Mutant("04", 2, "scale 1/D", "minigpt.layers.attention",
           "    scale = 1.0 / math.sqrt(D)\n    att = q @ k", "    scale = 1.0 / D\n    att = q @ k",
           ("1/sqrt(D)",)),
    Mutant("04", 2, "exp before subtracting the max", "minigpt.layers.attention",
           "att -= att.max(axis=-1, keepdims=True)", "pass", ("NaN/inf", "exp before subtracting"),
           alt=((("att = softmax(att, out=att)",
                  "att = np.exp(att, out=att); att /= att.sum(axis=-1, keepdims=True)"),),)),
    Mutant("04", 3, "backward without the scale", "minigpt.layers.attention",
           "dscores *= scale ", "dscores *= 1.0 ", ("constant ratio", "forgetting the scale")),
    Mutant("04", 4, "reshape without the transpose", "minigpt.layers.attention",
           "x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)",
           "x.reshape(B, n_head, T, C // n_head)", ("without the transpose",)),
    Mutant("04", 5, "k, q, v order", "minigpt.layers.attention",
           "q, k, v = np.split(qkv, 3, axis=-1)", "k, q, v = np.split(qkv, 3, axis=-1)",
           ("q, k, v split in another order",),
           alt=((("q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]",
                  "k, q, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]"),),)),
    Mutant("04", 5, "softmax backward on the dropped weights", "minigpt.layers.attention",
           "dscores = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))",
           "dscores = att_drop * (datt - np.sum(datt * att_drop, axis=-1, keepdims=True))",
           ("post-dropout weights", "relative error"),
           alt=((("dscores = softmax_backward(datt, att)", "dscores = softmax_backward(datt, att_drop)"),),)),
    # ---- 05 linear, GELU, MLP -------------------------------------------------------------------------
    Mutant("05", 1, "dbias not summed over the rows", "minigpt.layers.linear",
           "dbias = d2.sum(axis=0) if has_bias else None", "dbias = dout if has_bias else None",
           ("missing sum", "Not summing over the batch"), impl="minigpt.layers.mlp"),
    Mutant("05", 2, "x^2 inside u", "minigpt.layers.mlp", "t = x * x ", "t = x * 1.0 ",
           ("A slip inside u", "neither GELU"),
           alt=((("GELU_CUBIC * x * x * x)", "GELU_CUBIC * x * x)"),),)),
    Mutant("05", 3, "half of the product rule", "minigpt.layers.mlp", "dx *= du_dx ", "dx *= 0.0 ",
           ("Dropping half of the product rule", "relative error"),
           alt=((("+ 0.5 * x * (1.0 - tanh_u * tanh_u) * du_dx)", "+ 0.0 * du_dx)"),),)),
    Mutant("05", 3, "the factor 3 in du/dx", "minigpt.layers.mlp",
           "du_dx *= 3.0 * GELU_CUBIC * GELU_SCALE", "du_dx *= GELU_CUBIC * GELU_SCALE",
           ("a slip in du/dx",),
           alt=((("du_dx = GELU_SCALE * (1.0 + 3.0 * GELU_CUBIC * x * x)",
                  "du_dx = GELU_SCALE * (1.0 + GELU_CUBIC * x * x)"),),)),
    Mutant("05", 2, "float64 constant promotes float32", "minigpt.layers.mlp",
           "out = t + 1.0\n", "out = t + np.float64(1.0)\n", ("float32 silently becoming float64",),
           alt=((("out = 0.5 * x * (1.0 + tanh_u)", "out = np.float64(0.5) * x * (1.0 + tanh_u)"),),)),
    # ---- 06 cross-entropy ------------------------------------------------------------------------------
    Mutant("06", 1, "naive softmax", "minigpt.layers.loss",
           "shifted = z - z.max(axis=-1, keepdims=True)", "shifted = z * 1.0", ("NaN/inf", "naive softmax"),
           alt=((("logp = log_softmax(z)",
                  "logp = np.log(np.exp(z) / np.exp(z).sum(axis=-1, keepdims=True))"),),)),
    Mutant("06", 1, "-log of the softmax", "minigpt.layers.loss",
           "nll = np.log(sumexp[rows, 0]) - shifted[rows, t[rows]]", "nll = -np.log(probs[rows, t[rows]])",
           ("NaN/inf", "-log(softmax(z)[y])"),
           alt=((("logp = log_softmax(z)", "logp = np.log(softmax(z))"),
                 ("from minigpt.layers.softmax import log_softmax",
                  "from minigpt.layers.softmax import log_softmax, softmax")),)),
    Mutant("06", 1, "dividing by N in the forward", "minigpt.layers.loss",
           "float(nll.sum(dtype=np.float64) / n)", "float(nll.sum(dtype=np.float64) / t.shape[0])",
           ("yours / reference = 0.", "Dividing by N instead of n")),
    Mutant("06", 2, "dividing by N in the backward", "minigpt.layers.loss",
           "dz *= dloss / n ", "dz *= dloss / t.shape[0] ", ("constant ratio", "Dividing by N instead of n")),
    Mutant("06", 2, "forgetting dloss", "minigpt.layers.loss",
           "dz *= dloss / n ", "dz *= 1.0 / n ", ("constant ratio", "Forgetting dloss")),
    Mutant("06", 1, "np.mean of nothing", "minigpt.layers.loss",
           "if n else 0.0", "if n else float('nan')", ("np.mean of nothing",)),
    Mutant("06", 1, "ignored targets used as indices", "minigpt.layers.loss",
           "bad = counted & ((t < 0) | (t >= V))", "bad = (t < 0) | (t >= V)",
           ("Ignored targets used as indices",)),
    Mutant("06", 1, "negative ids read from the end", "minigpt.layers.loss",
           "bad = counted & ((t < 0) | (t >= V))", "bad = counted & (t >= V)", ("Negative ids",)),
    # ---- 07 the model ----------------------------------------------------------------------------------
    Mutant("07", 3, "one use of the tied weight forgotten", "minigpt.model",
           "dwte_head + dwte_lookup ", "dwte_head + 0 * dwte_lookup ",
           ("Forgetting one use of a tied weight",)),
    Mutant("07", 3, "residual dropped in the backward", "minigpt.model",
           "dx = dx + dx_branch", "dx = dx_branch", ("dropping the residual path",), count=2),
    Mutant("07", 2, "wpe[0] with a KV cache", "minigpt.model",
           "start = len(kv_cache) if kv_cache is not None else 0", "start = 0",
           ("Positions with a KV cache",)),
    Mutant("07", 1, "ln_f not counted", "minigpt.model",
           "(2 * C if config.bias else C)", "0", ("Count per block",)),
    Mutant("07", 2, "the head without the transpose", "minigpt.model",
           "return x @ params[\"wte.weight\"].T", "return x @ params[\"wte.weight\"]",
           ("head on the wrong side", "raised ValueError")),
    # ---- 08 optimizers ----------------------------------------------------------------------------------
    Mutant("08", 1, "decaying biases and gains", "minigpt.optim", "    return param.ndim >= 2",
           "    return True", ("Decaying biases and LayerNorm gains",)),
    Mutant("08", 1, "a new array instead of in place", "minigpt.optim",
           "p -= tmp  # p = p - lr * g", "p = p - tmp  # p = p - lr * g", ("not updated in place",)),
    Mutant("08", 2, "Sutskever's momentum (lr inside the velocity)", "minigpt.optim",
           "buf += g  # buf = momentum * buf + g", "buf += self.lr * g  # v = momentum * v + lr * g",
           ("Momentum conventions",),
           also=(("np.multiply(g, self.lr, out=tmp)  #", "np.multiply(g, 1.0, out=tmp)  #"),)),
    Mutant("08", 3, "no bias correction", "minigpt.optim",
           "step_size = self.lr / (1.0 - beta1 ** self.t)", "step_size = self.lr",
           ("Forgetting the bias correction",),
           alt=((("step_size = self.lr / (1.0 - self.betas[0] ** self.t)", "step_size = self.lr"),),)),
    Mutant("08", 3, "eps inside the square root", "minigpt.optim",
           "np.sqrt(v, out=tmp)\n            tmp /= bc2_sqrt\n            tmp += self.eps",
           "np.sqrt(v / bc2_sqrt ** 2 + self.eps, out=tmp)\n            tmp += 0.0",
           ("eps inside the square root",),
           alt=((("np.sqrt(v, out=tmp)\n        tmp /= bc2_sqrt\n        tmp += self.eps",
                  "np.sqrt(v / bc2_sqrt ** 2 + self.eps, out=tmp)\n        tmp += 0.0"),),)),
    Mutant("08", 4, "L2 instead of decoupled decay", "minigpt.optim",
           "    decoupled = True", "    decoupled = False", ("L2 in Adam and calling it AdamW",)),
    Mutant("08", 4, "weight decay after the Adam step", "minigpt.optim",
           "p *= 1.0 - self.lr * self.weight_decay  # AdamW", "pass  # AdamW",
           ("Weight decay after the Adam step",),
           also=(("            p -= tmp  # p = p - lr * m_hat / denom",
                  "            p -= tmp\n"
                  "            if self.weight_decay and self.decay[name] and self.decoupled:\n"
                  "                p *= 1.0 - self.lr * self.weight_decay"),),
           alt=((("p *= 1.0 - self.lr * self.weight_decay  # AdamW", "pass  # AdamW"),
                 ("        p -= tmp  # p = p - lr * m_hat / denom",
                  "        p -= tmp\n        if self.weight_decay and self.decay[name] and self.decoupled:\n"
                  "            p *= 1.0 - self.lr * self.weight_decay")),)),
    Mutant("08", 5, "resuming without the step count", "minigpt.optim",
           "        self.t = step\n", "        self.t = 0\n", ("Resuming without the step count",)),
    Mutant("08", 6, "warm-up from lr 0", "minigpt.optim",
           "return max_lr * (step + 1) / (warmup_iters + 1)", "return max_lr * step / warmup_iters",
           ("never 0",)),
    Mutant("08", 7, "clipping a copy", "minigpt.optim",
           "            g *= coef\n", "            g = g * coef\n", ("not updated in place",)),
    Mutant("08", 7, "clipping each tensor separately", "minigpt.optim",
           "    coef = max_norm / (total + 1e-6)\n    if coef < 1.0:\n        for g in grads.values():\n"
           "            g *= coef\n",
           "    for g in grads.values():\n        coef = max_norm / (float(np.linalg.norm(g)) + 1e-6)\n"
           "        if coef < 1.0:\n            g *= coef\n", ("one global norm",)),
    Mutant("08", 8, "Newton-Schulz without normalising", "minigpt.optim",
           "    X = X / max(float(np.linalg.norm(X)), eps) ", "    X = X * 1.0 ",
           ("NaN/inf", "Newton-Schulz without scaling G first")),
    Mutant("08", 8, "eps added to the norm, not clamped", "minigpt.optim",
           "X / max(float(np.linalg.norm(X)), eps) ", "X / (float(np.linalg.norm(X)) + eps) ",
           ("torch divides by max(||X||_F, eps)",)),
    Mutant("08", 8, "normalising the caller's matrix in place", "minigpt.optim",
           "    X = X / max(float(np.linalg.norm(X)), eps) ", "    X /= max(float(np.linalg.norm(X)), eps) ",
           ("newton_schulz changed its argument", "Dividing in place")),
    Mutant("08", 9, "momentum as a sum (torch's docstring, not its code)", "minigpt.optim",
           "            buf += (1.0 - mu) * g ", "            buf += g ",
           ("Momentum as a sum", "constant ratio")),
    Mutant("08", 9, "lr adjustment upside down", "minigpt.optim",
           "return math.sqrt(max(1.0, m / n))", "return math.sqrt(max(1.0, n / m))",
           ("torch steps lr * sqrt(max(1, m / n))",)),
    Mutant("08", 9, "decay with the adjusted lr", "minigpt.optim",
           "            p *= 1.0 - self.lr * self.weight_decay            # decoupled decay",
           "            p *= 1.0 - self.lr * self.lr_ratio(p.shape) * self.weight_decay  # decoupled decay",
           ("Muon's order",)),
    # ---- 09 the training loop ---------------------------------------------------------------------------
    Mutant("09", 1, "targets not shifted", "minigpt.training.batches",
           "ids[starts[:, None] + offsets + 1]", "ids[starts[:, None] + offsets]",
           ("shift by one", "Off-by-one windows"), impl=TRAIN_IMPL),
    Mutant("09", 1, "one start too few", "minigpt.training.batches",
           "rng.integers(0, n - block_size, size=batch_size)",
           "rng.integers(0, n - block_size - 1, size=batch_size)",
           ("Off-by-one windows",), impl=TRAIN_IMPL),
    Mutant("09", 3, "summing the micro-batches", "minigpt.training.loop",
           "scale = 1.0 / len(batches)", "scale = 1.0", ("Gradient accumulation",),
           impl=TRAIN_IMPL),
    Mutant("09", 3, "stepping on a NaN", "minigpt.training.loop",
           "if math.isfinite(loss) and math.isfinite(norm):\n        opt.step(total)",
           "if True:\n        opt.step(total)", ("A NaN must never reach",),
           impl=TRAIN_IMPL),
    # ---- 10 sampling ------------------------------------------------------------------------------------
    Mutant("10", 2, "top-k drops ties", "minigpt.sampling", "z[z < kth] = -np.inf",
           "z[np.argsort(z, kind='stable')[:V - top_k]] = -np.inf", ("drops one of two tied",)),
    Mutant("10", 3, "top-p drops the crossing token", "minigpt.sampling",
           "p[order[mass_above >= top_p]] = 0.0", "p[order[np.cumsum(p[order]) > top_p]] = 0.0",
           ("drops the crossing token",)),
    Mutant("10", 3, "top-p on probabilities before top-k", "minigpt.sampling",
           "mass_above = np.cumsum(p[order]) - p[order]",
           "q = np.exp(z0 - z0.max()); q /= q.sum(); order = np.argsort(-q, kind='stable'); "
           "mass_above = np.cumsum(q[order]) - q[order]", ("Top-p before top-k",),
           also=(("    if top_k is not None and top_k < V:\n",
                  "    z0 = z.copy()\n    if top_k is not None and top_k < V:\n"),)),
    Mutant("10", 1, "temperature 0 divides by zero", "minigpt.sampling",
           "if temperature == 0:                                         # greedy",
           "if False:                                         # greedy", ("Sampling with T = 0",)),
    Mutant("10", 4, "feeding the whole sequence every step", "minigpt.sampling",
           "            fed = len(ids)\n", "            fed = 0\n", ("Feeding the whole sequence",)),
    Mutant("10", 5, "decoding each token on its own", "minigpt.sampling",
           "pending += decoder.push(idx)", "pending += tokenizer.decode([idx])",
           ("Decoding each token on its own",)),
    # ---- 11 fine-tuning rows ----------------------------------------------------------------------------
    Mutant("11", 1, "masking the first response target", "minigpt.finetune.tasks",
           "y[:max(0, n_prompt - 1)] = ignore_index ", "y[:max(0, n_prompt)] = ignore_index ",
           ("Masking the wrong position",)),
    Mutant("11", 1, "padding on the left", "minigpt.finetune.tasks",
           "x[:n] = seq[:-1]\n    y[:n] = seq[1:]",
           "x[block_size - n:] = seq[:-1]\n    y[block_size - n:] = seq[1:]", ("Padding on the left",)),
    Mutant("11", 1, "masking the inputs", "minigpt.finetune.tasks",
           "y[:max(0, n_prompt - 1)] = ignore_index ",
           "y[:max(0, n_prompt - 1)] = ignore_index; x[:max(0, n_prompt - 1)] = pad_id ",
           ("Masking the inputs",)),
    Mutant("11", 1, "cropping from the right", "minigpt.finetune.tasks",
           "seq = seq[dropped:]", "seq = seq[:len(seq) - dropped]", ("Cropping from the right",)),
    Mutant("11", 2, "keeping the padding columns", "minigpt.finetune.tasks",
           "return x[:, :T], y[:, :T] ", "return x, y ", ("shape", "make_batch keeps only")),
    # ---- 12 evaluation ----------------------------------------------------------------------------------
    Mutant("12", 3, "a tie goes to the first listed reference", "minigpt.metrics.bleu",
           "key=lambda r: (abs(r - hyp_len), r))", "key=lambda r: abs(r - hyp_len))",
           ("a tie is the SHORTER reference",), impl="minigpt.metrics"),
    Mutant("12", 2, "clipping against the sum of the references", "minigpt.metrics.bleu",
           "max_ref[gram] = max(max_ref[gram], count)", "max_ref[gram] += count",
           ("Clipping against the sum",), impl="minigpt.metrics"),
    Mutant("12", 3, "brevity penalty upside down", "minigpt.metrics.bleu",
           "return math.exp(1 - ref_len / sys_len)", "return math.exp(1 - sys_len / ref_len)",
           ("Brevity penalty",), impl="minigpt.metrics"),
    Mutant("12", 4, "effective order ignored", "minigpt.metrics.bleu",
           "        if effective_order:  # sentence BLEU", "        if False:  # sentence BLEU",
           ("Short outputs",), impl="minigpt.metrics"),
    Mutant("12", 4, "mismatched lengths zipped in silence", "minigpt.metrics.bleu",
           "    if len(hypotheses) != len(references):\n        raise",
           "    if False:\n        raise", ("extra brackets", "did not raise"),
           impl="minigpt.metrics",
           also=(("zip(hypotheses, references, strict=True)", "zip(hypotheses, references)"),)),
    Mutant("12", 5, "LCS that only drops from one side", "minigpt.metrics.rouge",
           "max(prev[j], row[j - 1])", "prev[j]", ("LCS: on a mismatch",), impl="minigpt.metrics"),
    Mutant("12", 6, "ROUGE-L precision and recall swapped", "minigpt.metrics.rouge",
           "precision, recall = lcs / len(hypothesis), lcs / len(reference)",
           "precision, recall = lcs / len(reference), lcs / len(hypothesis)",
           ("ROUGE's argument order",), impl="minigpt.metrics"),
    Mutant("12", 7, "overlapping targets scored twice", "minigpt.metrics.perplexity",
           "total += float(row[skip:].sum())\n            count += len(row) - skip",
           "total += float(row.sum())\n            count += len(row)", ("Sliding windows",),
           impl="minigpt.metrics"),
    # ---- 13 data parallel --------------------------------------------------------------------------------
    Mutant("13", 2, "every rank weighted 1/N", "minigpt.training.batches",
           "weight = int(np.count_nonzero(ys != ignore_index)) / total if total else 1.0 / size",
           "weight = 1.0 / size", ("Averaging means of uneven slices",), impl=PARALLEL_IMPL),
    Mutant("13", 3, "the all-gather adds instead of copying", "minigpt.parallel.allreduce",
           "                bufs[r][slice(*bounds[recv])] = got",
           "                bufs[r][slice(*bounds[recv])] += got",
           ("The ring: each rank sends only",), impl=PARALLEL_IMPL),
    # ---- 03 layer-norm -------------------------------------------------------------------------------
    Mutant("03", 1, "unbiased variance", "minigpt.layers.layernorm",
           "var = np.mean(xc * xc, axis=-1, keepdims=True)",
           "var = np.sum(xc * xc, axis=-1, keepdims=True) / (x.shape[-1] - 1)",
           ("Unbiased variance", "constant ratio")),
    Mutant("03", 1, "eps outside the root", "minigpt.layers.layernorm",
           "rstd = 1.0 / np.sqrt(var + eps)", "rstd = 1.0 / (np.sqrt(var) + eps)",
           ("eps outside the root",)),
    Mutant("03", 1, "one-pass variance", "minigpt.layers.layernorm",
           "var = np.mean(xc * xc, axis=-1, keepdims=True)",
           "var = np.mean(x * x, axis=-1, keepdims=True) - mean * mean",
           ("mean(x**2) - mean(x)**2",)),
    Mutant("03", 1, "statistics over the batch (batch-norm)", "minigpt.layers.layernorm",
           "mean = x.mean(axis=-1, keepdims=True) ", "mean = x.mean(axis=0, keepdims=True) ",
           ("Reducing over the wrong axis",)),
    Mutant("03", 2, "dx without mean(dxhat)", "minigpt.layers.layernorm",
           "dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)",
           "dx = rstd * (dxhat - xhat * mean_dxhat_xhat)",
           ("Forgetting a term in dx", "relative error")),
    Mutant("03", 2, "dx without the variance term", "minigpt.layers.layernorm",
           "dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)",
           "dx = rstd * (dxhat - mean_dxhat)",
           ("Forgetting a term in dx",)),
    Mutant("03", 2, "dweight not summed over rows", "minigpt.layers.layernorm",
           "dweight = (dout * xhat).reshape(-1, C).sum(axis=0)", "dweight = (dout * xhat)",
           ("missing sum",)),
]


@pytest.mark.parametrize("m", MUTANTS, ids=[f"{m.lesson}-step{m.step}-{m.bug}" for m in MUTANTS])
def test_grader_fails_and_names_the_mutant(m: Mutant):
    out = io.StringIO()
    with engines.disabled():                       # the definitions are the mutants; engines equal them
        g = grade(m.lesson, impl=build(m), out=out, step=m.step)
    text = out.getvalue()
    assert g.failed > 0, f"the grader passed a known bug ({m.bug}):\n{text}"
    for phrase in m.expect:
        assert phrase in text, f"{m.bug}: {phrase!r} not in the report:\n{text}"


def test_every_lesson_has_mutants():
    covered = {m.lesson for m in MUTANTS}
    assert covered >= {f"{n:02d}" for n in range(1, 14)} - MISSING, sorted(covered)


MISSING: set[str] = set()
