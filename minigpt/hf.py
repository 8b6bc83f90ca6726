"""Hugging Face GPT-2 in and out, with NumPy alone: the folder `save_pretrained` writes and the Hub serves.

A GPT-2 folder holds (at least) these files:

    config.json          the hyperparameters: vocab_size, n_positions, n_embd, n_layer, n_head, ...
    model.safetensors    the weights (minigpt/files/safetensors.py reads and writes them)
    vocab.json           the tokenizer's token -> id table   } read by minigpt.tokenizer
    merges.txt           its BPE merges, in rank order        }

minigpt keeps GPT-2's names and layouts (Conv1D weights are (in, out)), so the conversion is only about
names: the Hub's original `gpt2` files say "h.0.attn.c_attn.weight", `save_pretrained` says
"transformer.h.0.attn.c_attn.weight". Both load. The causal-mask buffers "attn.bias" / "attn.masked_bias"
that older files carry are not parameters and are dropped. "lm_head.weight", when a file has it, must equal
wte (the head is tied) and is then dropped; an untied head is refused.

    model = load_gpt2("gpt2")                       # a folder: config.json + model.safetensors
    tok = load_gpt2_tokenizer("gpt2")               # vocab.json + merges.txt from the same folder
    save_gpt2(model, "my-model")                    # transformers' GPT2LMHeadModel.from_pretrained loads it

What this file deliberately does not do: download (minigpt/files/download.py does), read pickled
`pytorch_model.bin` files (they can run code; use the safetensors file), or load architectures other than
GPT-2's (a config with another activation, attention scaling or an untied head is refused, not guessed).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from minigpt.files import safetensors
from minigpt.files.atomic import write_text_atomic
from minigpt.model import GPT, GPTConfig, param_shapes
from minigpt.tokenizer import BPETokenizer

PREFIX = "transformer."
# A GPT-2 parameter name without the prefix: wte/wpe, ln_f, and the twelve tensors of each block.
_NAME = re.compile(r"(wte|wpe)\.weight|ln_f\.(weight|bias)"
                   r"|h\.\d+\.(ln_1|ln_2|attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.(weight|bias)")
_BUFFER = re.compile(r"h\.\d+\.attn\.(bias|masked_bias)")   # the causal mask, stored by old checkpoints
GELU_TANH = ("gelu_new", "gelu_pytorch_tanh")               # both are GPT-2's tanh approximation


# ---- names --------------------------------------------------------------------------------------------
def to_hf_state_dict(tensors: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """minigpt names -> transformers' names ("transformer." + name). Params or grads; arrays not copied.

    The layouts already agree (both keep Conv1D's (in, out) weights), so only the names change.
    """
    bad = [k for k in tensors if not _NAME.fullmatch(k)]
    if bad:
        raise ValueError(f"not GPT-2 parameter names: {bad[:5]} (expected e.g. 'h.0.attn.c_attn.weight')")
    return {PREFIX + k: v for k, v in tensors.items()}


def from_hf_state_dict(state: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """transformers' or the Hub's names -> minigpt's: strip "transformer.", drop the attn.bias buffers,
    drop "lm_head.weight" after checking it equals wte (the head is tied). Arrays are not copied."""
    out: dict[str, np.ndarray] = {}
    lm_head = None
    for key, value in state.items():
        name = key.removeprefix(PREFIX)
        if name == "lm_head.weight":
            lm_head = value
        elif _BUFFER.fullmatch(name):
            continue                                   # a constant mask, not a parameter
        elif _NAME.fullmatch(name):
            if name in out:
                raise ValueError(f"{name!r} appears twice (with and without the {PREFIX!r} prefix)")
            out[name] = value
        else:
            raise ValueError(f"unexpected tensor {key!r}: not a GPT-2 parameter "
                             "(is this a GPT-2 checkpoint?)")
    if lm_head is not None and "wte.weight" in out and not np.array_equal(lm_head, out["wte.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight: this model's output head is not tied to "
                         "its token embeddings, which minigpt's GPT-2 does not implement")
    return out


# ---- config -------------------------------------------------------------------------------------------
def config_from_hf(cfg: Mapping, where: str = "config.json") -> GPTConfig:
    """A transformers GPT2Config dict -> GPTConfig, refusing settings minigpt does not implement."""
    if not isinstance(cfg, Mapping):
        raise ValueError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    model_type = cfg.get("model_type", "gpt2")
    if model_type != "gpt2":
        raise ValueError(f"{where}: model_type is {model_type!r}; minigpt loads only GPT-2 ('gpt2') models")
    refusals = [
        (cfg.get("activation_function", "gelu_new") not in GELU_TANH,
         f"activation_function {cfg.get('activation_function')!r} (minigpt implements gelu_new)"),
        (cfg.get("n_inner") not in (None, 4 * cfg.get("n_embd", 0)),
         f"n_inner {cfg.get('n_inner')} (minigpt's MLP is 4 * n_embd wide)"),
        (not cfg.get("scale_attn_weights", True), "scale_attn_weights false"),
        (bool(cfg.get("scale_attn_by_inverse_layer_idx", False)), "scale_attn_by_inverse_layer_idx true"),
        (bool(cfg.get("reorder_and_upcast_attn", False)), "reorder_and_upcast_attn true"),
        (not cfg.get("tie_word_embeddings", True), "tie_word_embeddings false (an untied output head)"),
        (bool(cfg.get("add_cross_attention", False)), "add_cross_attention true"),
    ]
    for refused, what in refusals:
        if refused:
            raise ValueError(f"{where}: {what} is not supported by minigpt's GPT-2; "
                             "only the original GPT-2 architecture loads")
    for key in ("vocab_size", "n_embd", "n_layer", "n_head"):
        if key not in cfg:
            raise ValueError(f"{where}: the field {key!r} is missing")
    positions = cfg.get("n_positions", cfg.get("n_ctx"))
    if positions is None:
        raise ValueError(f"{where}: neither 'n_positions' nor 'n_ctx' is given (the context length)")
    try:
        # minigpt has one dropout rate for embeddings, attention and residuals; GPT-2 uses 0.1 for all three.
        dropout = max(float(cfg.get(k, 0.1)) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop"))
        return GPTConfig(vocab_size=cfg["vocab_size"], block_size=positions, n_layer=cfg["n_layer"],
                         n_head=cfg["n_head"], n_embd=cfg["n_embd"], dropout=dropout, bias=True,
                         layer_norm_epsilon=float(cfg.get("layer_norm_epsilon", 1e-5)))
    except (TypeError, ValueError) as exc:            # a field of the wrong type, e.g. "n_layer": "12"
        raise ValueError(f"{where}: {exc}") from None


def config_to_hf(config: GPTConfig, dtype: np.dtype) -> dict:
    """GPTConfig -> the config.json transformers' GPT2LMHeadModel expects (its field names)."""
    if not config.bias:
        raise ValueError("GPT-2 checkpoints always have biases; a model with bias=False cannot be saved "
                         "in the Hugging Face GPT-2 format")
    eos = 50256 if config.vocab_size > 50256 else None     # GPT-2's <|endoftext|>, when the vocab has it
    return {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2",
        "vocab_size": config.vocab_size, "n_positions": config.block_size, "n_ctx": config.block_size,
        "n_embd": config.n_embd, "n_layer": config.n_layer, "n_head": config.n_head, "n_inner": None,
        "activation_function": "gelu_new", "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": config.dropout, "embd_pdrop": config.dropout, "attn_pdrop": config.dropout,
        "initializer_range": 0.02, "scale_attn_weights": True, "scale_attn_by_inverse_layer_idx": False,
        "reorder_and_upcast_attn": False, "tie_word_embeddings": True, "use_cache": True,
        "bos_token_id": eos, "eos_token_id": eos, "dtype": np.dtype(dtype).name,
    }


# ---- folders ------------------------------------------------------------------------------------------
def read_config(folder: str | Path) -> GPTConfig:
    """config.json of a GPT-2 folder -> GPTConfig."""
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: a GPT-2 folder needs config.json and model.safetensors "
                                "(get them with `minigpt download gpt2`)")
    try:
        cfg = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from exc
    return config_from_hf(cfg, str(path))


def read_state(folder: str | Path) -> dict[str, np.ndarray]:
    """All tensors of model.safetensors (or of the shards its .index.json lists), as read-only views."""
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return safetensors.load(single, mmap=True)
    if index.is_file():
        try:
            index_data = json.loads(index.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"{index}: not valid JSON ({exc})") from None
        weight_map = index_data.get("weight_map") if isinstance(index_data, dict) else None
        if not isinstance(weight_map, dict):
            raise ValueError(f"{index}: no 'weight_map' object")
        bad = [s for s in weight_map.values() if not isinstance(s, str) or Path(s).name != s]
        if bad:
            raise ValueError(f"{index}: shard name {bad[0]!r} is not a plain file name in the folder")
        state: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            state |= safetensors.load(folder / shard, mmap=True)
        return state
    if (folder / "pytorch_model.bin").is_file():
        raise FileNotFoundError(f"{folder} has only pytorch_model.bin, a pickle (it can run code when "
                                "loaded); minigpt reads model.safetensors: download that file instead")
    raise FileNotFoundError(f"{single} not found: a GPT-2 folder needs config.json and model.safetensors")


def load_gpt2(folder: str | Path, dtype=np.float32) -> GPT:
    """A Hugging Face GPT-2 folder -> GPT with its weights, cast to dtype (writable arrays of their own)."""
    folder = Path(folder).expanduser()   # "~/.cache/minigpt/models/gpt2" works as written
    config = read_config(folder)
    state = from_hf_state_dict(read_state(folder))
    order = list(param_shapes(config)) + sorted(set(state) - set(param_shapes(config)))   # GPT-2's order
    params = {name: np.array(state[name], dtype=dtype) for name in order if name in state}  # writable copies
    try:
        return GPT(config, dtype=dtype, params=params)
    except ValueError as exc:
        raise ValueError(f"{Path(folder) / 'model.safetensors'} does not match config.json: {exc}") from exc


def save_gpt2(model: GPT, folder: str | Path) -> None:
    """Write config.json + model.safetensors ("transformer."-prefixed names, the params' own dtype).

    Each file is written to a temporary name and renamed, so an interrupted save never leaves a torn file.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = config_to_hf(model.config, model.dtype)
    safetensors.save(to_hf_state_dict(model.params), folder / "model.safetensors", metadata={"format": "pt"})
    write_text_atomic(folder / "config.json", json.dumps(config, indent=2) + "\n")


def load_gpt2_tokenizer(folder: str | Path):
    """GPT-2's tokenizer from the same folder (vocab.json + merges.txt) -> minigpt.tokenizer.BPETokenizer."""
    folder = Path(folder).expanduser()
    vocab, merges = folder / "vocab.json", folder / "merges.txt"
    for path in (vocab, merges):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: GPT-2's tokenizer needs vocab.json and merges.txt "
                                    "next to the weights (`minigpt download gpt2` fetches them)")
    return BPETokenizer.from_gpt2_files(vocab, merges)

