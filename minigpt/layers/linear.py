"""The affine map GPT-2 calls Conv1D: y = x @ weight + bias, with weight stored (in, out).

GPT-2's checkpoints store every projection (c_attn, c_proj, c_fc) as (in_features, out_features), the
transpose of torch.nn.Linear's (out, in); keeping that layout makes loading a checkpoint a dictionary
lookup and the forward a plain matmul.

Not here: the token/position embeddings (embedding.py) and the tied output head (model.py), which
multiplies by wte transposed.
"""

from __future__ import annotations

import numpy as np


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None):
    """x (..., Cin) @ weight (Cin, Cout) + bias (Cout,) -> out (..., Cout)."""
    c_in, c_out = weight.shape
    if x.shape[-1] != c_in:
        raise ValueError(f"x has {x.shape[-1]} features, but weight {weight.shape} is read as (in, out) and "
                         f"needs {c_in}: GPT-2's Conv1D layout. nn.Linear keeps (out, in): pass its .T")
    x2 = x.reshape(-1, c_in)                          # (N, Cin): one big matmul, not a loop over B
    out = x2 @ weight                                 # (N, Cout)
    if bias is not None:
        out += bias                                   # (N, Cout), broadcast over rows
    cache = (x2, weight, bias is not None, x.shape)   # x for dweight, weight for dx
    return out.reshape(*x.shape[:-1], c_out), cache   # (..., Cout)


def linear_backward(dout: np.ndarray, cache):
    """dout (..., Cout) -> dx (..., Cin), dweight (Cin, Cout), dbias (Cout,) or None."""
    x2, weight, has_bias, x_shape = cache
    d2 = dout.reshape(-1, weight.shape[1])            # (N, Cout)
    dx = (d2 @ weight.T).reshape(x_shape)             # (..., Cin)
    dweight = x2.T @ d2                               # (Cin, Cout): sum over all N rows
    dbias = d2.sum(axis=0) if has_bias else None      # (Cout,)
    return dx, dweight, dbias
