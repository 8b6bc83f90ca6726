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
from minigpt.files.boundary import (
    MODEL_LIMITS,
    FileFormatError,
    file_name,
    first_nonfinite,
    get_field,
    get_optional,
    read_json,
    read_json_object,
)
from minigpt.model import GPT, GPTConfig, count_params, param_shapes
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
    drop "lm_head.weight" after checking it equals wte (the head is tied). Arrays are not copied.
    A name or head minigpt cannot use is a FileFormatError (a ValueError): the file holds another model."""
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
                raise FileFormatError(f"{name!r} appears twice (with and without the {PREFIX!r} prefix)")
            out[name] = value
        else:
            raise FileFormatError(f"unexpected tensor {key!r:.80}: not a GPT-2 parameter "
                                  "(is this a GPT-2 checkpoint?)")
    if lm_head is not None and "wte.weight" in out and not np.array_equal(lm_head, out["wte.weight"]):
        raise FileFormatError("lm_head.weight differs from wte.weight: this model's output head is not tied "
                              "to its token embeddings, which minigpt's GPT-2 does not implement")
    return out


# ---- config -------------------------------------------------------------------------------------------
CONFIG_MAX_BYTES = 1 << 20            # config.json is ~1 KB; generation_config.json smaller still
INDEX_MAX_BYTES = 64 << 20            # model.safetensors.index.json: ~100 bytes per tensor


def config_from_hf(cfg: Mapping, where: str = "config.json") -> GPTConfig:
    """A transformers GPT2Config dict -> GPTConfig, refusing settings minigpt does not implement.

    Every field minigpt reads is checked for type and range (boundary.get_field): a wrong-typed or huge
    value is a FileFormatError naming the file and field, before any array is allocated.
    """
    if not isinstance(cfg, Mapping):
        raise FileFormatError(f"{where}: expected a JSON object, got {type(cfg).__name__}")
    cfg = dict(cfg)
    model_type = get_field(cfg, "model_type", str, where, default="gpt2")
    if model_type != "gpt2":
        raise FileFormatError(f"{where}: model_type is {model_type!r}; minigpt loads only GPT-2 ('gpt2') "
                              "models")
    sizes = {key: get_field(cfg, key, int, where, lo=lo, hi=hi)
             for key, (lo, hi) in MODEL_LIMITS.items() if key != "block_size"}
    lo, hi = MODEL_LIMITS["block_size"]
    key = "n_positions" if "n_positions" in cfg or "n_ctx" not in cfg else "n_ctx"
    if key not in cfg:
        raise FileFormatError(f"{where}: neither 'n_positions' nor 'n_ctx' is given (the context length)")
    positions = get_field(cfg, key, int, where, lo=lo, hi=hi)
    activation = get_field(cfg, "activation_function", str, where, default="gelu_new")
    n_inner = get_optional(cfg, "n_inner", int, where, lo=1, hi=4 * MODEL_LIMITS["n_embd"][1])
    flags = {k: get_field(cfg, k, bool, where, default=d) for k, d in (
        ("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
        ("reorder_and_upcast_attn", False), ("tie_word_embeddings", True), ("add_cross_attention", False))}
    refusals = [
        (activation not in GELU_TANH,
         f"activation_function {activation!r:.40} (minigpt implements gelu_new)"),
        (n_inner not in (None, 4 * sizes["n_embd"]),
         f"n_inner {n_inner} (minigpt's MLP is 4 * n_embd wide)"),
        (not flags["scale_attn_weights"], "scale_attn_weights false"),
        (flags["scale_attn_by_inverse_layer_idx"], "scale_attn_by_inverse_layer_idx true"),
        (flags["reorder_and_upcast_attn"], "reorder_and_upcast_attn true"),
        (not flags["tie_word_embeddings"], "tie_word_embeddings false (an untied output head)"),
        (flags["add_cross_attention"], "add_cross_attention true"),
    ]
    for refused, what in refusals:
        if refused:
            raise FileFormatError(f"{where}: {what} is not supported by minigpt's GPT-2; "
                                  "only the original GPT-2 architecture loads")
    # minigpt has one dropout rate for embeddings, attention and residuals; GPT-2 uses 0.1 for all three.
    dropout = max(get_field(cfg, k, float, where, lo=0.0, hi=0.99, default=0.1)
                  for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop"))
    eps = get_field(cfg, "layer_norm_epsilon", float, where, lo=1e-30, hi=1.0, default=1e-5)
    try:
        return GPTConfig(vocab_size=sizes["vocab_size"], block_size=positions, n_layer=sizes["n_layer"],
                         n_head=sizes["n_head"], n_embd=sizes["n_embd"], dropout=dropout, bias=True,
                         layer_norm_epsilon=eps)
    except ValueError as exc:                          # e.g. n_embd not divisible by n_head
        raise FileFormatError(f"{where}: {exc}") from None


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
    return config_from_hf(read_json(path, "config.json", CONFIG_MAX_BYTES), str(path))


def read_eos_token_id(folder: str | Path, vocab_size: int) -> int | list[int] | None:
    """The end-of-text id(s) generation stops at: generation_config.json's eos_token_id, else config.json's.

    An id (or list of ids) in [0, vocab_size), or None when neither file names one. transformers reads
    the same two fields; minigpt's sampler turns them into stop tokens.
    """
    for name in ("generation_config.json", "config.json"):
        path = Path(folder) / name
        if not path.is_file():
            continue
        data = read_json_object(path, name, CONFIG_MAX_BYTES)
        where = str(path)
        value = data.get("eos_token_id")
        if value is None:
            continue
        if isinstance(value, list):
            if not 1 <= len(value) <= 1000:
                raise FileFormatError(f"{where}: field 'eos_token_id' must list 1 to 1000 ids")
            return [get_field({"eos_token_id": v}, "eos_token_id", int, where, lo=0, hi=vocab_size - 1)
                    for v in value]
        return get_field(data, "eos_token_id", int, where, lo=0, hi=vocab_size - 1)
    return None


def read_index(path: str | Path) -> dict[str, str]:
    """model.safetensors.index.json -> its weight_map {tensor name: shard file name}, checked."""
    path = Path(path)
    where = str(path)
    data = read_json(path, "safetensors index", INDEX_MAX_BYTES)
    weight_map = get_field(data, "weight_map", dict, where)
    get_optional(data, "metadata", dict, where)
    if not weight_map:
        raise FileFormatError(f"{where}: 'weight_map' is empty: no tensors are listed")
    if len(weight_map) > safetensors.MAX_TENSORS * 100:
        raise FileFormatError(f"{where}: 'weight_map' lists {len(weight_map):,} tensors, more than minigpt "
                              "loads")
    for name in weight_map:
        shard = file_name(weight_map, name, f"{where}: weight_map")
        if not shard.endswith(".safetensors"):
            raise FileFormatError(f"{where}: weight_map: shard {shard!r:.80} of tensor {name!r:.80} is not a "
                                  ".safetensors file (minigpt never reads pickle-based .bin shards)")
    return weight_map


def read_state(folder: str | Path) -> dict[str, np.ndarray]:
    """All tensors of model.safetensors (or of the shards its .index.json lists), as read-only views."""
    folder = Path(folder)
    single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
    if single.is_file():
        return safetensors.load(single, mmap=True)
    if index.is_file():
        weight_map = read_index(index)
        state: dict[str, np.ndarray] = {}
        for shard in sorted(set(weight_map.values())):
            if not (folder / shard).is_file():
                raise FileFormatError(f"{index}: lists shard {shard!r}, which is not in {folder}: download "
                                      "it (or the whole folder) again")
            tensors = safetensors.load(folder / shard, mmap=True)
            for name in tensors:
                if weight_map.get(name) != shard:
                    put = f"in {weight_map[name]!r}" if name in weight_map else "nowhere"
                    raise FileFormatError(f"{folder / shard}: holds tensor {name!r:.80}, which {index.name} "
                                          f"puts {put}; the shards and the index disagree (download them "
                                          "again)")
            state |= tensors
        missing = [name for name in weight_map if name not in state]
        if missing:
            raise FileFormatError(f"{index}: lists {missing[0]!r:.80} (and {len(missing) - 1} more) in "
                                  f"{weight_map[missing[0]]!r}, which does not hold it")
        return state
    if (folder / "pytorch_model.bin").is_file():
        raise FileNotFoundError(f"{folder} has only pytorch_model.bin, a pickle (it can run code when "
                                "loaded); minigpt reads model.safetensors: download that file instead")
    raise FileNotFoundError(f"{single} not found: a GPT-2 folder needs config.json and model.safetensors")


def load_gpt2(folder: str | Path, dtype=np.float32) -> GPT:
    """A Hugging Face GPT-2 folder -> GPT with its weights, cast to dtype (writable arrays of their own).

    Checked before use: config.json's fields (types, ranges), that the files hold as many values as the
    config's parameter count (before any copy is made), and that every weight is finite after the cast
    (boundary.first_nonfinite: ~0.13 s for GPT-2 small) -- NaN weights would make the sampler print garbage.
    """
    folder = Path(folder).expanduser()   # "~/.cache/minigpt/models/gpt2" works as written
    config = read_config(folder)
    raw = read_state(folder)
    try:
        state = from_hf_state_dict(raw)
    except FileFormatError as exc:
        raise FileFormatError(f"{folder}: {exc}") from None
    have, want = sum(a.size for a in state.values()), count_params(config)
    if have != want:
        raise FileFormatError(f"{folder / 'config.json'} describes {want:,} parameters but the weights hold "
                              f"{have:,} values: the files come from different models")
    order = list(param_shapes(config)) + sorted(set(state) - set(param_shapes(config)))   # GPT-2's order
    with np.errstate(over="ignore"):               # float64 -> float32 may overflow: found just below
        params = {name: np.array(state[name], dtype=dtype) for name in order if name in state}  # own copies
    bad = first_nonfinite(params)
    if bad:
        raise FileFormatError(f"{folder}: tensor {bad[0]} has {bad[1]:,} NaN or infinite values (as "
                              f"{np.dtype(dtype).name}); the weights are damaged: download them again")
    try:
        return GPT(config, dtype=dtype, params=params)
    except ValueError as exc:
        raise FileFormatError(f"{Path(folder) / 'model.safetensors'} does not match config.json: "
                              f"{exc}") from exc


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

