"""The layers of GPT-2, each a pair of plain functions: `out, cache = x_forward(...)` and
`grads = x_backward(dout, cache)`, gradients returned in the order of the forward's inputs.

Shape legend used in every file: B batch, T time (sequence), C channels (n_embd), H heads,
D head size (C // H), V vocabulary size, N = B * T rows.

Nothing in this package holds state, draws random numbers on its own, or knows about the model:
minigpt/model.py composes these pairs. softmax.py holds the one stable softmax / log-softmax everything uses.
Where speed needed a second form, the engine sits beside its definition in the same file and takes over
when minigpt.engines.enabled() (the default) and the array is large; parallel.py is the engines' thread
pool, the only state here, created on first use.
"""

from minigpt.layers.attention import (
    attention_backward,
    attention_forward,
    sdpa_backward,
    sdpa_forward,
)
from minigpt.layers.dropout import dropout_backward, dropout_forward
from minigpt.layers.embedding import embedding_backward, embedding_forward
from minigpt.layers.layernorm import layernorm_backward, layernorm_forward
from minigpt.layers.linear import linear_backward, linear_forward
from minigpt.layers.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.layers.mlp import gelu_backward, gelu_forward, mlp_backward, mlp_forward
from minigpt.layers.softmax import log_softmax, softmax, softmax_backward

__all__ = [
    "attention_backward", "attention_forward", "sdpa_backward", "sdpa_forward",
    "cross_entropy_backward", "cross_entropy_forward", "dropout_backward", "dropout_forward",
    "embedding_backward", "embedding_forward", "gelu_backward", "gelu_forward",
    "layernorm_backward", "layernorm_forward", "linear_backward", "linear_forward",
    "mlp_backward", "mlp_forward", "log_softmax", "softmax", "softmax_backward",
]
