"""Hugging Face GPT-2 folders: save -> load round trip, the reference model transformers saved, key styles,
the lm_head and buffer handling, refused configs and files, and the tokenizer from the same folder.

No transformers here: the folder lessons/07_gpt/reference/tiny_gpt2 was written by its save_pretrained
(lessons/07_gpt/make_reference.py), and its logits are in reference/gpt.npz.
"""

import json
import shutil

import numpy as np
import pytest

from minigpt import hf
from minigpt.course.grader import find_lesson, load_reference
from minigpt.files import safetensors
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer.files import bytes_to_unicode

LESSON = find_lesson("07")
TINY_HF = LESSON / "reference" / "tiny_gpt2"
CONFIG = GPTConfig(vocab_size=11, block_size=9, n_layer=2, n_head=3, n_embd=12)


def random_model(dtype=np.float32, seed=0) -> GPT:
    model = GPT(CONFIG, seed=seed, dtype=dtype)
    rng = np.random.default_rng(seed)
    for p in model.params.values():
        p[...] = rng.standard_normal(p.shape)
    return model


def copy_tiny(tmp_path):
    folder = tmp_path / "tiny"
    shutil.copytree(TINY_HF, folder)
    return folder


def rewrite_weights(folder, change):
    """Apply change(state) -> state to model.safetensors."""
    path = folder / "model.safetensors"
    safetensors.save(change(safetensors.load(path)), path, metadata={"format": "pt"})


def edit_config(folder, **fields):
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(cfg | fields))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_then_load_is_bit_exact(tmp_path, dtype):
    model = random_model(dtype)
    hf.save_gpt2(model, tmp_path / "m")
    back = hf.load_gpt2(tmp_path / "m", dtype=dtype)
    assert back.config == model.config
    assert list(back.params) == list(model.params)
    for name, p in model.params.items():
        assert back.params[name].dtype == dtype
        np.testing.assert_array_equal(back.params[name], p)
        assert back.params[name].flags.writeable and back.params[name] is not p
    header = safetensors.read_header(tmp_path / "m" / "model.safetensors")
    assert {i.dtype for i in header.tensors.values()} == {"F32" if dtype == np.float32 else "F64"}
    assert all(k.startswith("transformer.") for k in header.tensors)
    assert header.metadata == {"format": "pt"}
    assert not list((tmp_path / "m").glob(".*tmp"))                # no temporary files left behind


def test_saved_config_has_what_transformers_needs(tmp_path):
    hf.save_gpt2(random_model(), tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["model_type"] == "gpt2" and cfg["architectures"] == ["GPT2LMHeadModel"]
    sizes = (cfg["vocab_size"], cfg["n_positions"], cfg["n_layer"], cfg["n_head"], cfg["n_embd"])
    assert sizes == (11, 9, 2, 3, 12)
    assert cfg["activation_function"] == "gelu_new" and cfg["tie_word_embeddings"] is True
    assert cfg["dtype"] == "float32"


def test_bias_free_models_cannot_be_saved_as_gpt2(tmp_path):
    model = GPT(GPTConfig(11, 9, 2, 3, 12, bias=False))
    with pytest.raises(ValueError, match="biases"):
        hf.save_gpt2(model, tmp_path)


def test_the_reference_model_saved_by_transformers_gives_its_logits():
    ref = load_reference(LESSON / "check.py", "gpt.npz")
    model = hf.load_gpt2(TINY_HF, dtype=np.float64)
    assert model.config == GPTConfig(37, 9, 2, 3, 12)
    np.testing.assert_allclose(model.forward(ref["idx"]), ref["logits"], rtol=1e-9, atol=1e-12)
    model32 = hf.load_gpt2(TINY_HF)                                 # float32 by default
    assert model32.params["wte.weight"].dtype == np.float32
    np.testing.assert_allclose(model32.forward(ref["idx"]), ref["logits_f32"], rtol=1e-4, atol=1e-5)


def test_keys_with_or_without_prefix_and_buffers(tmp_path):
    ref = load_reference(LESSON / "check.py", "gpt.npz")
    folder = copy_tiny(tmp_path)

    def hub_style(state):                                           # the original Hub files: no prefix,
        out = {k.removeprefix("transformer."): v for k, v in state.items()}   # plus the mask buffers
        for i in range(2):
            out[f"h.{i}.attn.bias"] = np.tril(np.ones((1, 1, 9, 9), dtype=np.float32))
            out[f"h.{i}.attn.masked_bias"] = np.array(-1e4, dtype=np.float32)
        return out

    rewrite_weights(folder, hub_style)
    names = safetensors.read_header(folder / "model.safetensors").tensors
    assert not any(k.startswith("transformer.") for k in names) and "h.1.attn.masked_bias" in names
    model = hf.load_gpt2(folder, dtype=np.float64)
    np.testing.assert_allclose(model.forward(ref["idx"]), ref["logits"], rtol=1e-9, atol=1e-12)


def test_lm_head_is_checked_against_wte_then_dropped(tmp_path):
    folder = copy_tiny(tmp_path)
    rewrite_weights(folder, lambda s: s | {"lm_head.weight": s["transformer.wte.weight"].copy()})
    model = hf.load_gpt2(folder)
    assert "lm_head.weight" not in model.params
    rewrite_weights(folder, lambda s: s | {"lm_head.weight": s["lm_head.weight"] + 1.0})
    with pytest.raises(ValueError, match="not tied"):
        hf.load_gpt2(folder)


@pytest.mark.parametrize("fields, match", [
    ({"activation_function": "relu"}, "activation_function"),
    ({"n_inner": 50}, "n_inner"),
    ({"scale_attn_by_inverse_layer_idx": True}, "scale_attn_by_inverse_layer_idx"),
    ({"reorder_and_upcast_attn": True}, "reorder_and_upcast_attn"),
    ({"tie_word_embeddings": False}, "tie_word_embeddings"),
    ({"scale_attn_weights": False}, "scale_attn_weights"),
    ({"model_type": "llama"}, "model_type"),
    ({"n_head": 5}, "divisible"),
])
def test_configs_minigpt_does_not_implement_are_refused(tmp_path, fields, match):
    folder = copy_tiny(tmp_path)
    edit_config(folder, **fields)
    with pytest.raises(ValueError, match=match):
        hf.load_gpt2(folder)


def test_accepted_config_variants(tmp_path):
    folder = copy_tiny(tmp_path)
    cfg = json.loads((folder / "config.json").read_text())
    del cfg["n_positions"]
    cfg |= {"n_ctx": 9, "n_inner": 48, "activation_function": "gelu_pytorch_tanh", "resid_pdrop": 0.1}
    (folder / "config.json").write_text(json.dumps(cfg))
    model = hf.load_gpt2(folder)
    assert model.config.block_size == 9 and model.config.dropout == 0.1


def test_broken_folders_give_clear_errors(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        hf.load_gpt2(folder)
    (folder / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        hf.load_gpt2(folder)
    shutil.copy(TINY_HF / "config.json", folder / "config.json")
    edit_config(folder, resid_pdrop="high")                         # a field of the wrong type
    with pytest.raises(ValueError, match="config.json: field 'resid_pdrop' must be a number"):
        hf.load_gpt2(folder)
    shutil.copy(TINY_HF / "config.json", folder / "config.json")
    edit_config(folder, n_embd=24, n_head=3)                        # weights of another size
    with pytest.raises(ValueError, match="describes .* parameters but the weights hold"):
        hf.load_gpt2(folder)
    (folder / "model.safetensors").unlink()
    (folder / "pytorch_model.bin").write_bytes(b"\x80\x04 pickle")
    with pytest.raises(FileNotFoundError, match="pickle"):
        hf.load_gpt2(folder)
    (folder / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="config.json"):
        hf.load_gpt2(folder)


@pytest.mark.parametrize("field, value, message", [
    ("n_layer", 100_000_000, "'n_layer' = 100000000 is outside"),
    ("n_layer", None, "'n_layer' must be an integer"),
    ("n_embd", [12], "'n_embd' must be an integer"),
    ("vocab_size", 10**40, "not valid JSON"),                       # 41 digits: refused while parsing
    ("vocab_size", 1.5, "'vocab_size' must be an integer"),
    ("n_positions", -1, "'n_positions' = -1 is outside"),
    ("layer_norm_epsilon", "x", "'layer_norm_epsilon' must be a number"),
    ("attn_pdrop", 1.5, "'attn_pdrop' = 1.5 is outside"),
    ("activation_function", None, "'activation_function' must be a string"),
    ("activation_function", "relu", "activation_function 'relu'"),
    ("n_inner", "48", "'n_inner' must be an integer"),
    ("n_inner", 7, "n_inner 7"),
    ("tie_word_embeddings", "yes", "'tie_word_embeddings' must be true or false"),
    ("model_type", ["gpt2"], "'model_type' must be a string"),
])
def test_every_config_field_is_checked(tmp_path, field, value, message):
    folder = copy_tiny(tmp_path)
    edit_config(folder, **{field: value})
    with pytest.raises(hf.FileFormatError, match=message) as info:
        hf.load_gpt2(folder)
    assert str(folder / "config.json") in str(info.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_naming_the_tensor(tmp_path, bad):
    folder = copy_tiny(tmp_path)
    name = "transformer.h.1.mlp.c_fc.weight"

    def poison(state):
        state[name] = state[name].copy()
        state[name][0, 3] = bad
        return state
    rewrite_weights(folder, poison)
    with pytest.raises(hf.FileFormatError, match=r"tensor h.1.mlp.c_fc.weight has 1 NaN or infinite"):
        hf.load_gpt2(folder)


def test_float64_weights_that_overflow_float32_are_refused(tmp_path):
    model = random_model(np.float64)
    model.params["ln_f.bias"][0] = 1e300                            # finite in float64, inf in float32
    hf.save_gpt2(model, tmp_path / "m")
    assert hf.load_gpt2(tmp_path / "m", dtype=np.float64).params["ln_f.bias"][0] == 1e300
    with pytest.raises(hf.FileFormatError, match="ln_f.bias has 1 NaN or infinite values .as float32"):
        hf.load_gpt2(tmp_path / "m")


def test_eos_token_id_from_generation_config_then_config(tmp_path):
    folder = copy_tiny(tmp_path)
    (folder / "generation_config.json").unlink(missing_ok=True)
    edit_config(folder, eos_token_id=None)
    assert hf.read_eos_token_id(folder, 11) is None
    edit_config(folder, eos_token_id=10)
    assert hf.read_eos_token_id(folder, 11) == 10
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": [3, 4]}))
    assert hf.read_eos_token_id(folder, 11) == [3, 4]
    for bad, message in [({"eos_token_id": 11}, "outside"), ({"eos_token_id": "7"}, "must be an integer"),
                         ({"eos_token_id": []}, "1 to 1000 ids"), ({"eos_token_id": [1, None]}, "integer"),
                         ([1], "JSON object")]:
        (folder / "generation_config.json").write_text(json.dumps(bad))
        with pytest.raises(hf.FileFormatError, match=message) as info:
            hf.read_eos_token_id(folder, 11)
        assert "generation_config.json" in str(info.value)


def test_unexpected_tensors_are_refused(tmp_path):
    folder = copy_tiny(tmp_path)
    rewrite_weights(folder, lambda s: s | {"transformer.h.0.attn.q_proj.weight": np.zeros(3)})
    with pytest.raises(ValueError, match="q_proj"):
        hf.load_gpt2(folder)


def test_sharded_checkpoint(tmp_path):
    model = random_model()
    state = hf.to_hf_state_dict(model.params)
    names = list(state)
    folder = tmp_path / "sharded"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(hf.config_to_hf(model.config, model.dtype)))
    weight_map = {}
    for n, part in enumerate((names[:10], names[10:])):
        shard = f"model-0000{n + 1}-of-00002.safetensors"
        safetensors.save({k: state[k] for k in part}, folder / shard)
        weight_map |= dict.fromkeys(part, shard)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": weight_map}))
    back = hf.load_gpt2(folder)
    assert all(np.array_equal(back.params[k], v) for k, v in model.params.items())
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"wte.weight": "../x"}}))
    with pytest.raises(ValueError, match="plain file name"):
        hf.load_gpt2(folder)
    for bad_index, message in [("{not json", "not valid JSON"), ("[1]", "field 'weight_map'"),
                               ('{"weight_map": {"a": 1, "b": "x"}}', "field 'a' must be a string"),
                               ('{"weight_map": {}}', "empty"),
                               ('{"weight_map": {"a": "x.bin"}}', "not a .safetensors file"),
                               ('{"weight_map": {"a": "' + shard + '"}}', "holds tensor"),
                               ('{"weight_map": ' + json.dumps(weight_map | {"extra": shard}) + "}",
                                "lists 'extra'"),
                               ('{"weight_map": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested")]:
        (folder / "model.safetensors.index.json").write_text(bad_index)
        with pytest.raises(ValueError, match=message) as info:
            hf.load_gpt2(folder)
        assert "model.safetensors.index.json" in str(info.value)


def test_state_dict_conversion_for_params_and_grads():
    model = random_model()
    _, grads = model.loss_and_grads(np.array([[1, 2, 3]]), np.array([[2, 3, 4]]))
    for tensors in (model.params, grads):
        state = hf.to_hf_state_dict(tensors)
        assert set(state) == {"transformer." + k for k in tensors}
        back = hf.from_hf_state_dict(state)
        assert all(back[k] is tensors[k] for k in tensors)          # names only: no copies
    with pytest.raises(ValueError, match="not GPT-2 parameter names"):
        hf.to_hf_state_dict({"encoder.weight": np.zeros(2)})
    both = {"wte.weight": np.zeros(2), "transformer.wte.weight": np.zeros(2)}
    with pytest.raises(ValueError, match="twice"):
        hf.from_hf_state_dict(both)


def write_toy_tokenizer(folder):
    """vocab.json + merges.txt in GPT-2's format: 256 byte tokens, 2 merges, <|endoftext|>."""
    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)}
    vocab |= {"Ġt": 256, "he": 257, "<|endoftext|>": 258}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\n", encoding="utf-8")


def test_tokenizer_from_the_same_folder(tmp_path):
    pytest.importorskip("minigpt.tokenizer")
    with pytest.raises(FileNotFoundError, match="vocab.json"):
        hf.load_gpt2_tokenizer(tmp_path)
    write_toy_tokenizer(tmp_path)
    tok = hf.load_gpt2_tokenizer(tmp_path)
    ids = tok.encode(" the")
    assert ids == [256, 257] and tok.decode(ids) == " the"
    assert tok.vocab_size == 259
