"""Your turn: the whole GPT-2, forward and backward, from the layer pairs you built in lessons 02-06.

Fill in the bodies, then grade your file:

    minigpt lesson check 07 --impl lessons/07_gpt/exercise.py

The grader calls gpt_forward, gpt_loss_and_grads and count_params with the weights of a tiny GPT-2 that
transformers saved (V=37, block 9, C=12, H=3, L=2): params is a dict of GPT-2 names -> arrays
("wte.weight", "wpe.weight", "h.{i}.ln_1.weight", "h.{i}.attn.c_attn.weight", ..., "ln_f.bias"), config a
GPTConfig. block_forward / block_backward are the suggested structure; they are not graded on their own.

Shape legend: B batch, T time, C channels, H heads, V vocabulary, L layers, P block_size.
Use minigpt's layers (imported below) or your own from earlier lessons. Not here: the KV cache (optional;
the grader skips it for a file without a KVCache class), loading checkpoints (minigpt/hf.py).
"""

from __future__ import annotations

import numpy as np

from minigpt.layers import (  # noqa: F401  (yours to use)
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
from minigpt.model import GPTConfig  # noqa: F401  (the hyperparameters: given)

Params = dict[str, np.ndarray]


def block_forward(x: np.ndarray, p: dict, config: GPTConfig, rng: np.random.Generator | None = None,
                  training: bool = False):
    """x (B, T, C) -> x (B, T, C), cache. One pre-LN transformer block; p holds the block's parameters
    under short names ("ln_1.weight", "attn.c_attn.weight", ..., "mlp.c_proj.bias").

        x = x + dropout(attn(ln_1(x)))        attention with config.n_head heads, attn_pdrop = config.dropout
        x = x + dropout(mlp(ln_2(x)))         LayerNorm eps = config.layer_norm_epsilon

    Keep every sub-layer's cache: the backward needs all of them.
    """
    raise NotImplementedError("block_forward: ln_1, attention, dropout, residual; then ln_2, mlp, ...")


def block_backward(dx: np.ndarray, cache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dx (B, T, C) -> dx (B, T, C) at the block's input, and {short name: gradient}.

    Walk the forward backwards. A residual y = x + f(x) passes dy straight to x AND through f: add both.
    """
    raise NotImplementedError("block_backward: mlp branch, add the residual, attention branch, add again")


def gpt_forward(params: Params, idx: np.ndarray, config: GPTConfig) -> np.ndarray:
    """idx (B, T) int -> logits (B, T, V), eval mode (no dropout).

    wte[idx] + wpe[:T] -> L blocks -> ln_f -> @ wte.T (the head is tied to the token embedding).
    Raise ValueError with a clear message if T > config.block_size. float32 in, float32 out.
    """
    raise NotImplementedError("gpt_forward: embeddings, blocks, ln_f, the tied head")


def gpt_loss_and_grads(params: Params, idx: np.ndarray, targets: np.ndarray, config: GPTConfig,
                       rng: np.random.Generator | None = None, ignore_index: int = -100):
    """idx, targets (B, T) int -> (mean cross-entropy, grads): grads has params' keys, shapes and dtype.

    Training mode: dropout with rate config.dropout, masks drawn from rng (embeddings, then per block
    attention weights, attention output, MLP output). Targets equal to ignore_index do not count.
    wte is used twice (lookup at the bottom, head at the top): its gradient is the sum of both.
    """
    raise NotImplementedError("gpt_loss_and_grads: forward keeping caches, then backward in reverse")


def count_params(config: GPTConfig, non_embedding: bool = False) -> int:
    """The number of parameters, from the config alone (GPT-2 small: 124,439,808). The head adds none:
    it is wte. With config.bias False there are no biases (LayerNorms keep their gains).
    non_embedding=True leaves out the position embeddings wpe."""
    raise NotImplementedError("count_params: embeddings + L x (one block) + ln_f")
