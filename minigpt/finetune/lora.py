"""A GPT with LoRA adapters: the base model frozen, only the low-rank A and B of chosen layers trained.

    model = LoRAGPT(base, LoRAConfig(r=8, alpha=16, targets=("c_attn",)), seed=0)
    model.params                      # the adapters: {"h.0.attn.c_attn.lora_A": (C, r), ...}
    loss, grads = model.loss_and_grads(idx, targets, rng)   # grads over the adapters only
    opt = AdamW(model.params, ...)    # the optimizer's moments exist for the adapters only
    full = model.merged()             # a plain GPT with W + (alpha / r) A B: hf.save_gpt2 exports it

The model's own block (minigpt/model.py, block_forward) calls attention_forward and mlp_forward, whose
linear layers are plain Conv1D. Here the block is composed again from the same layer pairs, with one
difference: each of its four linear layers is either a LoRA layer (minigpt/layers/lora.py) or a frozen one
that only passes the gradient down (dx = dout Wᵀ, no dW). The backward therefore skips every weight
gradient of the base, including the embeddings' and the head's: only dx flows, and dA, dB are collected.

Targets name layers as PEFT's target_modules do: "c_attn", "c_proj" (both attn.c_proj and mlp.c_proj),
"c_fc", or a full short name ("attn.c_proj", "mlp.c_proj").

A checkpoint of a LoRA run stores the adapters and lora_state(): the settings and the base's identity
(where it came from, its dtype, base_fingerprint, a sha256 of its weights); minigpt/files/checkpoint.py
reads it back and refuses a base whose weights changed.

What this file deliberately does not do: train LayerNorms, biases or embeddings alongside the adapters,
generate with a KV cache (sample from merged()), or adapt several tasks at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass

import numpy as np

from minigpt.layers import (
    cross_entropy_backward,
    cross_entropy_forward,
    dropout_backward,
    dropout_forward,
    embedding_forward,
    gelu_backward,
    gelu_forward,
    layernorm_backward,
    layernorm_forward,
    sdpa_backward,
    sdpa_forward,
)
from minigpt.layers.attention import merge_heads, split_heads
from minigpt.layers.lora import lora_backward, lora_forward, lora_init, lora_merge
from minigpt.model import BLOCK_NAMES, GPT, GPTConfig, Params, check_idx

LINEARS = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")   # a block's Conv1D layers, in order
TARGET_NAMES = ("c_attn", "c_proj", "c_fc", *LINEARS)


@dataclass(frozen=True)
class LoRAConfig:
    """Which layers get adapters, their rank, their scale and their dropout. PEFT's LoraConfig defaults
    are r=8, lora_alpha=8, lora_dropout=0.0."""

    r: int = 8                                  # the rank of A B
    alpha: float = 8.0                          # the update is scaled by alpha / r
    dropout: float = 0.0                        # on each adapter's input, training only
    targets: tuple[str, ...] = ("c_attn",)      # "c_attn", "c_proj", "c_fc", "attn.c_proj", "mlp.c_proj"

    def __post_init__(self) -> None:
        if isinstance(self.r, bool) or not isinstance(self.r, int | np.integer) or self.r < 1:
            raise ValueError(f"LoRA rank must be a positive integer, got {self.r!r}")
        if not (isinstance(self.alpha, int | float) and np.isfinite(self.alpha) and self.alpha > 0):
            raise ValueError(f"LoRA alpha must be a positive number, got {self.alpha!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"LoRA dropout must be in [0, 1), got {self.dropout}")
        if isinstance(self.targets, str) or not self.targets:
            raise ValueError(f"LoRA targets must be a non-empty tuple of names, got {self.targets!r}")
        bad = [t for t in self.targets if t not in TARGET_NAMES]
        if bad:
            raise ValueError(f"unknown LoRA targets {bad}: choose from {', '.join(TARGET_NAMES)}")

    @property
    def scale(self) -> float:
        """alpha / r, the factor on the low-rank update."""
        return float(self.alpha) / self.r

    def adapted(self) -> tuple[str, ...]:
        """The block's linear layers (short names, LINEARS order) that get an adapter."""
        return tuple(n for n in LINEARS if any(n == t or n.endswith("." + t) for t in self.targets))


def base_fingerprint(params: Params) -> str:
    """sha256 over a model's parameters (names, dtypes, shapes, bytes, in params' order): the identity of the
    frozen base a LoRA checkpoint is valid for."""
    digest = hashlib.sha256()
    for name, value in params.items():
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(np.ascontiguousarray(value).data)
    return digest.hexdigest()


def lora_state(lora: LoRAConfig, base: GPT, base_source: str) -> dict:
    """What a checkpoint stores besides the adapters: the LoRA settings and the base model's identity
    (where it was loaded from, its dtype and its fingerprint)."""
    return {**asdict(lora), "targets": list(lora.targets), "base": base_source, "dtype": base.dtype.name,
            "base_sha256": base_fingerprint(base.params)}


def adapter_shapes(config: GPTConfig, lora: LoRAConfig) -> dict[str, tuple[int, int]]:
    """Every adapter's name and shape, block by block: "h.{i}.{layer}.lora_A" (in, r), ".lora_B" (r, out)."""
    C = config.n_embd
    io = {"attn.c_attn": (C, 3 * C), "attn.c_proj": (C, C), "mlp.c_fc": (C, 4 * C), "mlp.c_proj": (4 * C, C)}
    shapes: dict[str, tuple[int, int]] = {}
    for i in range(config.n_layer):
        for name in lora.adapted():
            c_in, c_out = io[name]
            shapes[f"h.{i}.{name}.lora_A"] = (c_in, lora.r)
            shapes[f"h.{i}.{name}.lora_B"] = (lora.r, c_out)
    return shapes


def init_adapters(config: GPTConfig, lora: LoRAConfig, rng: np.random.Generator, dtype=np.float32) -> Params:
    """PEFT's initialisation for every adapter (A uniform in ±1/sqrt(in), B zero), in adapter_shapes order."""
    adapters: Params = {}
    shapes = adapter_shapes(config, lora)
    for name, (c_in, r) in shapes.items():
        if name.endswith(".lora_A"):
            prefix = name[: -len(".lora_A")]
            c_out = shapes[prefix + ".lora_B"][1]
            adapters[name], adapters[prefix + ".lora_B"] = lora_init(c_in, c_out, r, rng, dtype)
    return adapters


# ---- one block ----------------------------------------------------------------------------------------
def _linear_forward(x, p: dict, ad: dict, name: str, lora: LoRAConfig, rng, training: bool):
    """A block's linear layer: LoRA if it has an adapter, else frozen. x (..., Cin) -> (..., Cout)."""
    weight, bias = p[name + ".weight"], p[name + ".bias"]
    if name in ad:
        lora_A, lora_B = ad[name]
        return lora_forward(x, weight, bias, lora_A, lora_B, lora.scale, lora.dropout, rng, training)
    out = x @ weight                                  # (..., Cout) frozen: x is not needed for a dW
    if bias is not None:
        out += bias
    return out, weight


def _linear_backward(dout, cache, name: str, ad: dict, grads: dict):
    """dout (..., Cout) -> dx (..., Cin); an adapter's dA, dB go into grads[name + ".lora_A" / ".lora_B"]."""
    if name in ad:
        dx, grads[name + ".lora_A"], grads[name + ".lora_B"] = lora_backward(dout, cache)
        return dx
    return dout @ cache.T                             # (..., Cin) the frozen layer: dx = dout Wᵀ


def lora_block_forward(x: np.ndarray, p: dict, ad: dict, config: GPTConfig, lora: LoRAConfig,
                       rng: np.random.Generator | None = None, training: bool = False):
    """x (B, T, C) -> x (B, T, C), as model.block_forward, the linear layers adapted where ad has (A, B)."""
    eps, pdrop, H = config.layer_norm_epsilon, config.dropout, config.n_head
    h, ln_1 = layernorm_forward(x, p["ln_1.weight"], p["ln_1.bias"], eps)                  # (B, T, C)
    qkv, c_attn = _linear_forward(h, p, ad, "attn.c_attn", lora, rng, training)           # (B, T, 3C)
    q, k, v = (split_heads(a, H) for a in np.split(qkv, 3, axis=-1))                      # 3 x (B, H, T, D)
    y, sdpa = sdpa_forward(q, k, v, pdrop, rng, training)                                  # (B, H, T, D)
    a, attn_proj = _linear_forward(merge_heads(y), p, ad, "attn.c_proj", lora, rng, training)   # (B, T, C)
    a, drop_1 = dropout_forward(a, pdrop, rng, training)                                   # (B, T, C)
    x = x + a                                                                              # (B, T, C)
    h, ln_2 = layernorm_forward(x, p["ln_2.weight"], p["ln_2.bias"], eps)                  # (B, T, C)
    f, c_fc = _linear_forward(h, p, ad, "mlp.c_fc", lora, rng, training)                  # (B, T, 4C)
    g, gelu = gelu_forward(f)                                                              # (B, T, 4C)
    m, mlp_proj = _linear_forward(g, p, ad, "mlp.c_proj", lora, rng, training)            # (B, T, C)
    m, drop_2 = dropout_forward(m, pdrop, rng, training)                                   # (B, T, C)
    x = x + m                                                                              # (B, T, C)
    return x, (ad, ln_1, c_attn, sdpa, attn_proj, drop_1, ln_2, c_fc, gelu, mlp_proj, drop_2)


def lora_block_backward(dx: np.ndarray, cache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dx (B, T, C) at the block's output -> dx at its input, and dA, dB of the block's adapters."""
    ad, ln_1, c_attn, sdpa, attn_proj, drop_1, ln_2, c_fc, gelu, mlp_proj, drop_2 = cache
    g: dict[str, np.ndarray] = {}
    dm = dropout_backward(dx, drop_2)                                                      # (B, T, C)
    dg = _linear_backward(dm, mlp_proj, "mlp.c_proj", ad, g)                              # (B, T, 4C)
    df = gelu_backward(dg, gelu)                                                           # (B, T, 4C)
    dh = _linear_backward(df, c_fc, "mlp.c_fc", ad, g)                                    # (B, T, C)
    dx = dx + layernorm_backward(dh, ln_2)[0]          # (B, T, C) the residual: both paths into the stream
    da = dropout_backward(dx, drop_1)                                                      # (B, T, C)
    dy = _linear_backward(da, attn_proj, "attn.c_proj", ad, g)                            # (B, T, C)
    H = sdpa[0].shape[1]                                                                   # q (B, H, T, D)
    dq, dk, dv = sdpa_backward(split_heads(dy, H), sdpa)                                   # 3 x (B, H, T, D)
    dqkv = np.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)   # (B, T, 3C)
    dh = _linear_backward(dqkv, c_attn, "attn.c_attn", ad, g)                             # (B, T, C)
    dx = dx + layernorm_backward(dh, ln_1)[0]                                              # (B, T, C)
    return dx, g


# ---- the whole model ----------------------------------------------------------------------------------
def _block_adapters(adapters: Params, i: int, lora: LoRAConfig) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    return {n: (adapters[f"h.{i}.{n}.lora_A"], adapters[f"h.{i}.{n}.lora_B"]) for n in lora.adapted()}


def _block_params(params: Params, i: int) -> dict[str, np.ndarray | None]:
    return {n: params.get(f"h.{i}.{n}") for n in BLOCK_NAMES}   # None for absent biases


def _stream(params: Params, adapters: Params, idx: np.ndarray, config: GPTConfig, lora: LoRAConfig,
            rng: np.random.Generator | None, training: bool):
    """idx (B, T) -> the final hidden states (B, T, C) and every cache the backward needs."""
    x, _ = embedding_forward(idx, params["wte.weight"], params["wpe.weight"])             # (B, T, C)
    x, drop = dropout_forward(x, config.dropout, rng, training)                            # (B, T, C)
    blocks = []
    for i in range(config.n_layer):
        x, cache = lora_block_forward(x, _block_params(params, i), _block_adapters(adapters, i, lora),
                                      config, lora, rng, training)                         # (B, T, C)
        blocks.append(cache)
    xf, ln_f = layernorm_forward(x, params["ln_f.weight"], params.get("ln_f.bias"),
                                 config.layer_norm_epsilon)                                # (B, T, C)
    return xf, (drop, blocks, ln_f)


def lora_gpt_forward(params: Params, adapters: Params, idx: np.ndarray, config: GPTConfig,
                     lora: LoRAConfig) -> np.ndarray:
    """idx (B, T) int -> logits (B, T, V), eval mode (no dropout anywhere)."""
    check_idx(idx, config)
    xf, _ = _stream(params, adapters, idx, config, lora, None, False)                      # (B, T, C)
    return xf @ params["wte.weight"].T                                                     # (B, T, V)


def lora_gpt_loss_and_grads(params: Params, adapters: Params, idx: np.ndarray, targets: np.ndarray,
                            config: GPTConfig, lora: LoRAConfig, rng: np.random.Generator | None = None,
                            ignore_index: int = -100):
    """idx, targets (B, T) int -> (loss, grads over the adapters, dx (B, T, C) at the embeddings' output).

    dx is the gradient with respect to wte[idx] + wpe[0..T): what torch calls the gradient of
    inputs_embeds (plus the positions). The base's parameters get no gradient at all.
    """
    if (config.dropout > 0 or lora.dropout > 0) and rng is None:
        raise ValueError("dropout is on (model or adapters): pass rng=np.random.default_rng(seed) for the "
                         "masks")
    check_idx(idx, config)
    wte = params["wte.weight"]                                                             # (V, C)
    xf, (drop, blocks, ln_f) = _stream(params, adapters, idx, config, lora, rng, True)     # (B, T, C)
    logits = xf @ wte.T                                                                    # (B, T, V)
    loss, ce = cross_entropy_forward(logits, targets, ignore_index)

    grads: Params = {}
    dlogits = cross_entropy_backward(1.0, ce)                                              # (B, T, V)
    dx = layernorm_backward(dlogits @ wte, ln_f)[0]           # (B, T, C); the head's dwte is not needed
    for i in reversed(range(config.n_layer)):
        dx, g = lora_block_backward(dx, blocks[i])                                         # (B, T, C)
        grads |= {f"h.{i}.{name}": value for name, value in g.items()}
    dx = dropout_backward(dx, drop)                                                        # (B, T, C)
    return loss, {name: grads[name] for name in adapters}, dx


def merge_params(params: Params, adapters: Params, config: GPTConfig, lora: LoRAConfig) -> Params:
    """A full params dict with W + (alpha / r) A B in every adapted layer; the other arrays are copies."""
    merged = {name: value.copy() for name, value in params.items()}
    for i in range(config.n_layer):
        for name in lora.adapted():
            w = f"h.{i}.{name}.weight"
            a, b = adapters[f"h.{i}.{name}.lora_A"], adapters[f"h.{i}.{name}.lora_B"]
            merged[w] = lora_merge(params[w], a, b, lora.scale).astype(params[w].dtype)   # (Cin, Cout)
    return merged


class LoRAGPT:
    """A frozen GPT and its adapters, with the methods a training loop calls (params are the adapters)."""

    def __init__(self, base: GPT, lora: LoRAConfig, seed: int = 0, params: Params | None = None):
        self.base = base
        self.config = base.config
        self.lora = lora
        self.dtype = base.dtype
        shapes = adapter_shapes(base.config, lora)
        if params is None:
            params = init_adapters(base.config, lora, np.random.default_rng(seed), self.dtype)
        else:
            missing = [k for k in shapes if k not in params]
            extra = [k for k in params if k not in shapes]
            if missing or extra:
                raise ValueError(f"adapters do not match the LoRA config: missing {missing[:4]}, "
                                 f"unexpected {extra[:4]}")
            for name, shape in shapes.items():
                if params[name].shape != shape or params[name].dtype != self.dtype:
                    raise ValueError(f"adapter {name} is {params[name].dtype} {params[name].shape}, the "
                                     f"config needs {self.dtype} {shape}")
            params = {name: params[name] for name in shapes}       # one canonical order
        self.params = params

    def forward(self, idx: np.ndarray) -> np.ndarray:
        """idx (B, T) int -> logits (B, T, V), eval mode. To generate with a KV cache, use merged()."""
        return lora_gpt_forward(self.base.params, self.params, idx, self.config, self.lora)

    def loss(self, idx: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float:
        """Mean cross-entropy in eval mode (no dropout), e.g. for validation."""
        loss, _ = cross_entropy_forward(self.forward(idx), targets, ignore_index)
        return loss

    def loss_and_grads(self, idx: np.ndarray, targets: np.ndarray, rng: np.random.Generator | None = None,
                       ignore_index: int = -100) -> tuple[float, Params]:
        """Training mode: (loss, grads), grads keyed like params: the adapters only."""
        loss, grads, _ = lora_gpt_loss_and_grads(self.base.params, self.params, idx, targets, self.config,
                                                 self.lora, rng, ignore_index)
        return loss, grads

    def num_params(self) -> int:
        """Trainable parameters: the adapters' r (in + out) per adapted layer. GPT-2 small, r 8 on c_attn:
        12 x 8 x (768 + 2304) = 294,912."""
        return sum(int(v.size) for v in self.params.values())

    def merged(self) -> GPT:
        """A plain GPT whose adapted weights are W + (alpha / r) A B: same logits (eval mode), no adapters."""
        return GPT(self.config, dtype=self.dtype,
                   params=merge_params(self.base.params, self.params, self.config, self.lora))
