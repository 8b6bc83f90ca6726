"""Your turn: the whole GPT-2, forward and backward, from the layer pairs you built in lessons 02-06.

    step 1  count_params                          the parameter count, from the config alone
    step 2  gpt_forward (block_forward)           embeddings, blocks, ln_f, the tied head
    step 3  gpt_loss_and_grads (block_backward)   the loss and every gradient

    minigpt lesson check 07 --impl lessons/07_gpt/exercise.py [--step K]
    minigpt lesson hint 07 K                      # the first hint nudges, the last nearly gives it away

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
    """x (B, T, C) -> x (B, T, C), cache. One GPT-2 block (pre-norm); p holds the block's parameters
    under short names ("ln_1.weight", "attn.c_attn.weight", ..., "mlp.c_proj.bias").   (step 2)

    An attention branch and an MLP branch, each reading a layer-normed copy of the stream (LayerNorm eps =
    config.layer_norm_epsilon; attention with config.n_head heads and attn_pdrop = config.dropout; dropout
    after each branch in training). Keep every sub-layer's cache: the backward needs all of them.
    """
    raise NotImplementedError("step 2 not started: block_forward")


def block_backward(dx: np.ndarray, cache) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """dx (B, T, C) -> dx (B, T, C) at the block's input, and {short name: gradient}.   (step 3)"""
    raise NotImplementedError("step 3 not started: block_backward")


def gpt_forward(params: Params, idx: np.ndarray, config: GPTConfig) -> np.ndarray:
    """idx (B, T) int -> logits (B, T, V), eval mode (no dropout).   (step 2)

    GPT-2's forward, equal to transformers' GPT2LMHeadModel: token + position embeddings, config.n_layer
    blocks, a final layer-norm ln_f, and an output head tied to the token embedding wte (no separate
    weight). Raise ValueError with a clear message if T > config.block_size. float32 in, float32 out.
    """
    raise NotImplementedError("step 2 not started: gpt_forward")


def gpt_loss_and_grads(params: Params, idx: np.ndarray, targets: np.ndarray, config: GPTConfig,
                       rng: np.random.Generator | None = None, ignore_index: int = -100):
    """idx, targets (B, T) int -> (mean cross-entropy, grads): grads has params' keys, shapes and dtype.
    (step 3)

    Training mode: dropout with rate config.dropout, masks drawn from rng (embeddings, then per block
    attention weights, attention output, MLP output). Targets equal to ignore_index do not count. Graded
    against transformers' loss and autograd gradients of every parameter, finite differences of your own
    loss, and 5 steps of SGD.
    """
    raise NotImplementedError("step 3 not started: gpt_loss_and_grads")


def count_params(config: GPTConfig, non_embedding: bool = False) -> int:
    """The number of parameters, from the config alone (GPT-2 small: 124,439,808).   (step 1)

    The head adds none: it is wte. With config.bias False there are no biases (LayerNorms keep their
    gains). non_embedding=True leaves out the position embeddings wpe.
    """
    raise NotImplementedError("step 1 not started: count_params")
