"""GPT-2, assembled from the layer pairs in minigpt/layers/: the forward pass, and the backward pass by hand.

    idx (B, T) -> wte[idx] + wpe[0..T) -> dropout                         the residual stream x (B, T, C)
               -> n_layer blocks:  x = x + dropout(attn(ln_1(x)))          pre-LN: normalise the branch's
                                   x = x + dropout(mlp(ln_2(x)))           input, never the stream itself
               -> ln_f -> x @ wte.T                                       logits (B, T, V), head tied to wte
               -> cross-entropy with the targets                          loss

Parameters live in one flat dict keyed by GPT-2's checkpoint names ("wte.weight", "h.0.attn.c_attn.weight",
..., "ln_f.bias") in GPT-2's layouts, so loading Hugging Face weights is a dictionary lookup (minigpt/hf.py).
There is no "lm_head.weight": the output head multiplies by wte transposed, and wte's gradient is the sum of
its two uses (the lookup at the bottom, the head at the top).

The functions below are the model; the GPT class only holds a config and a params dict and calls them:

    gpt_forward(params, idx, config, kv_cache=None)            -> logits (B, T, V)        eval mode
    gpt_loss_and_grads(params, idx, targets, config, rng=None) -> (loss, grads)           training mode
    block_forward / block_backward                             one transformer block, and its backward

Shape legend: B batch, T time, C channels (n_embd), H heads, D head size (C // H), V vocabulary, L layers.

What this file deliberately does not do: any other architecture (rotary positions, RMSNorm, untied heads),
mixed precision, or an autograd engine. The KV cache is in kv_cache.py, checkpoints in checkpoint.py / hf.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from minigpt.kv_cache import KVCache, cached_attention_forward
from minigpt.layers import (
    attention_backward,
    attention_forward,
    cross_entropy_backward,
    cross_entropy_forward,
    dropout_backward,
    dropout_forward,
    embedding_backward,
    embedding_forward,
    layernorm_backward,
    layernorm_forward,
    mlp_backward,
    mlp_forward,
)

Params = dict[str, np.ndarray]
BLOCK_NAMES = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
               "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
               "mlp.c_proj.weight", "mlp.c_proj.bias")     # a block's parameters, short names


@dataclass
class GPTConfig:
    """The hyperparameters: GPT-2 small is GPTConfig(50257, 1024, 12, 12, 768)."""

    vocab_size: int                  # V: number of token ids
    block_size: int                  # the context: learned positions, the longest sequence (GPT-2: 1024)
    n_layer: int                     # L: transformer blocks
    n_head: int                      # H: attention heads per block
    n_embd: int                      # C: width of the residual stream; head size D = C // H
    dropout: float = 0.0             # one rate for embedding, attention and residual dropout (training only)
    bias: bool = True                # biases in the linear layers and LayerNorms (GPT-2: True)
    layer_norm_epsilon: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}): "
                             "each head gets n_embd // n_head channels")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout}")
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"GPTConfig.layer_norm_epsilon must be positive, got {self.layer_norm_epsilon}")


def param_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    """Every parameter's name and shape, in GPT-2's order (Conv1D weights are (in, out))."""
    V, P, C = config.vocab_size, config.block_size, config.n_embd
    shapes: dict[str, tuple[int, ...]] = {"wte.weight": (V, C), "wpe.weight": (P, C)}
    for i in range(config.n_layer):
        h = f"h.{i}."
        shapes |= {h + "ln_1.weight": (C,), h + "ln_1.bias": (C,),
                   h + "attn.c_attn.weight": (C, 3 * C), h + "attn.c_attn.bias": (3 * C,),
                   h + "attn.c_proj.weight": (C, C), h + "attn.c_proj.bias": (C,),
                   h + "ln_2.weight": (C,), h + "ln_2.bias": (C,),
                   h + "mlp.c_fc.weight": (C, 4 * C), h + "mlp.c_fc.bias": (4 * C,),
                   h + "mlp.c_proj.weight": (4 * C, C), h + "mlp.c_proj.bias": (C,)}
    shapes |= {"ln_f.weight": (C,), "ln_f.bias": (C,)}
    if not config.bias:
        shapes = {k: s for k, s in shapes.items() if not k.endswith(".bias")}
    return shapes


def count_params(config: GPTConfig, non_embedding: bool = False) -> int:
    """Parameters of a GPT, counted from the config (the output head is wte, so it adds nothing):

        V C + P C                   token and position embeddings (P = block_size)
        L (12 C^2 + 13 C)           per block: c_attn 3C^2 + 3C, attn c_proj C^2 + C, c_fc 4C^2 + 4C,
                                    mlp c_proj 4C^2 + C, two LayerNorms 2 x 2C
        2 C                         ln_f
    GPT-2 small (V 50257, P 1024, L 12, C 768): 38,597,376 + 786,432 + 85,054,464 + 1,536 = 124,439,808.
    Without biases a block has 12 C^2 + 2 C and ln_f C. non_embedding=True leaves out wpe (nanoGPT's way).
    """
    V, P, C, L = config.vocab_size, config.block_size, config.n_embd, config.n_layer
    per_block = 12 * C * C + (13 * C if config.bias else 2 * C)
    total = V * C + P * C + L * per_block + (2 * C if config.bias else C)
    return total - P * C if non_embedding else total


def flops_per_token(config: GPTConfig, seq_len: int | None = None) -> int:
    """Training FLOPs (forward + backward) per token: 6 N + 12 L C T (PaLM appendix B, nanoGPT's MFU).

    6N: each weight does one multiply-add (2 FLOPs) per token forward and two backward (dx and dW);
    N = count_params(config, non_embedding=True), so the head's V x C matmul is counted through wte.
    12 L C T: the attention scores q k^T and the weighted sum att v, 2 x 2 x T x C per layer forward,
    times 3 for forward + backward, over the full T x T (the causal half is not discounted).
    seq_len defaults to block_size. LayerNorm, GELU, softmax and the adds are left out (they are small).
    """
    T = config.block_size if seq_len is None else seq_len
    return 6 * count_params(config, non_embedding=True) + 12 * config.n_layer * config.n_embd * T


def init_params(config: GPTConfig, rng: np.random.Generator, dtype=np.float32) -> Params:
    """GPT-2's initialisation: weights N(0, 0.02), residual projections N(0, 0.02 / sqrt(2 L)), biases 0,
    LayerNorm gains 1. Draws in float64 then casts, so float32 and float64 models of one seed agree."""
    resid_std = 0.02 / math.sqrt(2 * config.n_layer)   # c_proj adds to the stream 2L times: keep its variance
    params: Params = {}
    for name, shape in param_shapes(config).items():
        if name.endswith(".bias"):
            value = np.zeros(shape)
        elif ".ln_" in name or name.startswith("ln_"):
            value = np.ones(shape)                      # LayerNorm gain
        else:
            std = resid_std if name.endswith("c_proj.weight") else 0.02
            value = rng.standard_normal(shape) * std
        params[name] = value.astype(dtype)
    return params


def check_idx(idx: np.ndarray, config: GPTConfig, start: int = 0) -> None:
    """A clear error for ids that are not (B, T) integers or do not fit in the context."""
    if not isinstance(idx, np.ndarray) or idx.ndim != 2 or not np.issubdtype(idx.dtype, np.integer):
        raise ValueError(f"idx must be a (B, T) integer array, got {type(idx).__name__} "
                         f"{getattr(idx, 'shape', '')}; for a single sequence pass idx[None, :]")
    T = idx.shape[1]
    P = config.block_size
    if start and start + T > P:
        raise ValueError(f"{T} new tokens after the {start} cached positions exceed block_size {P}: "
                         f"cache.reset() and feed the last tokens again (at most {P})")
    if T > P:
        raise ValueError(f"{T} tokens exceed block_size {P}: crop the input to the last {P} (idx[:, -{P}:])")


def _block_params(params: Params, i: int) -> dict[str, np.ndarray | None]:
    """Block i's parameters under their short names ("ln_1.weight", ...); None for absent biases."""
    return {n: params.get(f"h.{i}.{n}") for n in BLOCK_NAMES}


# ---- one block ----------------------------------------------------------------------------------------
def block_forward(x: np.ndarray, p: dict, config: GPTConfig, rng: np.random.Generator | None = None,
                  training: bool = False, kv_cache: KVCache | None = None, layer: int = 0):
    """x (B, T, C) -> x (B, T, C): x + attn(ln_1(x)), then + mlp(ln_2(x)). p: the block's short names."""
    eps, pdrop = config.layer_norm_epsilon, config.dropout
    h, ln_1 = layernorm_forward(x, p["ln_1.weight"], p["ln_1.bias"], eps)             # (B, T, C)
    if kv_cache is None:
        a, attn = attention_forward(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"],
                                    p["attn.c_proj.weight"], p["attn.c_proj.bias"],
                                    config.n_head, pdrop, rng, training)               # (B, T, C)
    else:                                  # generation: keys and values of the past come from the cache
        a, attn = cached_attention_forward(h, p["attn.c_attn.weight"], p["attn.c_attn.bias"],
                                           p["attn.c_proj.weight"], p["attn.c_proj.bias"],
                                           config.n_head, kv_cache, layer), None     # (B, T, C)
    a, drop_1 = dropout_forward(a, pdrop, rng, training)                               # (B, T, C)
    x = x + a                                                  # (B, T, C) the residual stream, updated
    h, ln_2 = layernorm_forward(x, p["ln_2.weight"], p["ln_2.bias"], eps)             # (B, T, C)
    m, mlp = mlp_forward(h, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"],
                         p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])                 # (B, T, C)
    m, drop_2 = dropout_forward(m, pdrop, rng, training)                               # (B, T, C)
    x = x + m                                                                          # (B, T, C)
    return x, (ln_1, attn, drop_1, ln_2, mlp, drop_2)


def block_backward(dx: np.ndarray, cache) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
    """dx (B, T, C) at the block's output -> dx at its input, and the block's gradients (short names).

    A residual connection y = x + f(x) has dy/dx = 1 + f'(x): the gradient flows straight through
    (the `dx +` below) and also through the branch.
    """
    ln_1, attn, drop_1, ln_2, mlp, drop_2 = cache
    g: dict[str, np.ndarray | None] = {}
    dm = dropout_backward(dx, drop_2)                                                  # (B, T, C)
    dh, g["mlp.c_fc.weight"], g["mlp.c_fc.bias"], g["mlp.c_proj.weight"], g["mlp.c_proj.bias"] = \
        mlp_backward(dm, mlp)                                                          # dh (B, T, C)
    dx_branch, g["ln_2.weight"], g["ln_2.bias"] = layernorm_backward(dh, ln_2)        # (B, T, C)
    dx = dx + dx_branch                                            # (B, T, C) both paths into the stream
    da = dropout_backward(dx, drop_1)                                                  # (B, T, C)
    dh, g["attn.c_attn.weight"], g["attn.c_attn.bias"], g["attn.c_proj.weight"], g["attn.c_proj.bias"] = \
        attention_backward(da, attn)                                                   # dh (B, T, C)
    dx_branch, g["ln_1.weight"], g["ln_1.bias"] = layernorm_backward(dh, ln_1)        # (B, T, C)
    dx = dx + dx_branch                                                                # (B, T, C)
    return dx, g


# ---- the whole model ----------------------------------------------------------------------------------
def gpt_forward(params: Params, idx: np.ndarray, config: GPTConfig,
                kv_cache: KVCache | None = None) -> np.ndarray:
    """idx (B, T) int -> logits (B, T, V), eval mode (no dropout). With a cache: idx are the new tokens."""
    start = len(kv_cache) if kv_cache is not None else 0     # the position of idx[:, 0]
    check_idx(idx, config, start)
    x, _ = embedding_forward(idx, params["wte.weight"], params["wpe.weight"], start)  # (B, T, C)
    for i in range(config.n_layer):
        x, _ = block_forward(x, _block_params(params, i), config, kv_cache=kv_cache, layer=i)  # (B, T, C)
    if kv_cache is not None:
        kv_cache.advance(idx.shape[1])                       # every layer has appended: commit
    x, _ = layernorm_forward(x, params["ln_f.weight"], params.get("ln_f.bias"),
                             config.layer_norm_epsilon)       # (B, T, C)
    return x @ params["wte.weight"].T                         # (B, T, V) the head is wte, transposed


def gpt_loss_and_grads(params: Params, idx: np.ndarray, targets: np.ndarray, config: GPTConfig,
                       rng: np.random.Generator | None = None, ignore_index: int = -100):
    """idx, targets (B, T) int -> (mean cross-entropy, grads with params' names, shapes and dtype).

    Training mode: dropout (if config.dropout > 0) draws its masks from rng, in a fixed order.
    """
    if config.dropout > 0 and rng is None:
        raise ValueError(f"config.dropout is {config.dropout}: pass rng=np.random.default_rng(seed) for "
                         "the dropout masks")
    check_idx(idx, config)
    eps, pdrop = config.layer_norm_epsilon, config.dropout
    wte = params["wte.weight"]                                                         # (V, C)
    V, C = wte.shape

    # ---- forward, keeping what each backward needs ----
    x, emb = embedding_forward(idx, wte, params["wpe.weight"])                        # (B, T, C)
    x, drop = dropout_forward(x, pdrop, rng, True)                                     # (B, T, C)
    blocks = []
    for i in range(config.n_layer):
        x, cache = block_forward(x, _block_params(params, i), config, rng, training=True)   # (B, T, C)
        blocks.append(cache)
    xf, ln_f = layernorm_forward(x, params["ln_f.weight"], params.get("ln_f.bias"), eps)   # (B, T, C)
    logits = xf @ wte.T                                                                # (B, T, V)
    loss, ce = cross_entropy_forward(logits, targets, ignore_index)

    # ---- backward: the same steps in reverse ----
    grads: dict[str, np.ndarray | None] = {}
    dlogits = cross_entropy_backward(1.0, ce)                                          # (B, T, V)
    dwte_head = dlogits.reshape(-1, V).T @ xf.reshape(-1, C)                           # (V, C) head's use
    dxf = dlogits @ wte                                                                # (B, T, C)
    dx, grads["ln_f.weight"], grads["ln_f.bias"] = layernorm_backward(dxf, ln_f)      # (B, T, C)
    for i in reversed(range(config.n_layer)):
        dx, g = block_backward(dx, blocks[i])                                          # (B, T, C)
        grads |= {f"h.{i}.{name}": value for name, value in g.items()}
    dx = dropout_backward(dx, drop)                                                    # (B, T, C)
    dwte_lookup, grads["wpe.weight"] = embedding_backward(dx, emb)                     # (V, C), (P, C)
    grads["wte.weight"] = dwte_head + dwte_lookup           # tied: both uses of wte add up
    return loss, {name: grads[name] for name in params}     # params' order; absent biases never appear


class GPT:
    """A GPTConfig and its parameters, with the model's functions as methods."""

    def __init__(self, config: GPTConfig, seed: int = 0, dtype=np.float32, params: Params | None = None):
        self.config = config
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype}")
        if params is None:
            params = init_params(config, np.random.default_rng(seed), self.dtype)
        else:
            _check_params(params, config, self.dtype)
            params = {name: params[name] for name in param_shapes(config)}   # one canonical order everywhere:
        self.params = params                                                 # sums over params are then exact

    def forward(self, idx: np.ndarray, kv_cache: KVCache | None = None) -> np.ndarray:
        """idx (B, T) int -> logits (B, T, V) (eval mode). See kv_cache.py for generation with a cache."""
        return gpt_forward(self.params, idx, self.config, kv_cache)

    def loss(self, idx: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float:
        """Mean cross-entropy in eval mode (no dropout), e.g. for validation."""
        loss, _ = cross_entropy_forward(self.forward(idx), targets, ignore_index)
        return loss

    def loss_and_grads(self, idx: np.ndarray, targets: np.ndarray, rng: np.random.Generator | None = None,
                       ignore_index: int = -100) -> tuple[float, Params]:
        """Training mode: (loss, grads), grads keyed like params. Dropout masks come from rng."""
        return gpt_loss_and_grads(self.params, idx, targets, self.config, rng, ignore_index)

    def new_kv_cache(self) -> KVCache:
        """An empty cache for model.forward(idx, kv_cache=cache); see minigpt/kv_cache.py."""
        return KVCache(self.config.n_layer, self.config.block_size)

    def num_params(self, non_embedding: bool = False) -> int:
        """Number of parameters, the tied wte counted once (GPT-2 small: 124,439,808).

        non_embedding=True leaves out the position embeddings wpe, as nanoGPT reports it; wte stays in
        because it is also the output head's weight.
        """
        return count_params(self.config, non_embedding)

    def flops_per_token(self, seq_len: int | None = None) -> int:
        """Training FLOPs per token, 6 N + 12 L C T: see the module-level flops_per_token(config)."""
        return flops_per_token(self.config, seq_len)


def _check_params(params: Params, config: GPTConfig, dtype: np.dtype) -> None:
    """Clear errors for a params dict that does not match the config (missing, extra, wrong shape)."""
    shapes = param_shapes(config)
    missing = [k for k in shapes if k not in params]
    extra = [k for k in params if k not in shapes]
    if missing or extra:
        raise ValueError(f"params do not match the config: missing {missing[:5]}, unexpected {extra[:5]}")
    for name, shape in shapes.items():
        if params[name].shape != shape:
            raise ValueError(f"parameter {name} has shape {params[name].shape}, the config needs {shape}")
        if params[name].dtype != dtype:
            raise ValueError(f"parameter {name} is {params[name].dtype}, expected {dtype}")
