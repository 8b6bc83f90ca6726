"""Fine-tuning: task files (JSONL errors with line numbers), the masked rows, the couplets task, and
`finetune` through the trainer's loop (checkpoints, early stopping, exact resume, the CLI)."""

import json
from dataclasses import asdict

import numpy as np
import pytest

from minigpt import engines, optim
from minigpt.datasets import couplets
from minigpt.files import checkpoint
from minigpt.files.models import load_model
from minigpt.finetune import run as finetune
from minigpt.finetune import tasks
from minigpt.finetune.tasks import IGNORE_INDEX, Example, TaskError, build_example, make_batch, read_jsonl
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.training import loop
from minigpt.training.config import TrainConfig

CHARS = "\n，。一二三四五六七八九十山水月花風雲"


def quiet(_msg):
    pass


def write_lines(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# ---- JSONL ------------------------------------------------------------------------------------------------
def test_read_jsonl_round_trip_keeps_chinese_and_skips_blank_lines(tmp_path):
    pairs = [("山水，", "明月。"), ('say "hi"\n', "ok\t")]
    path = tmp_path / "t.jsonl"
    assert tasks.write_jsonl(path, pairs) == 2
    assert "山水" in path.read_text(encoding="utf-8")                 # readable, not \\u escapes
    path.write_text(path.read_text(encoding="utf-8") + "\n\n", encoding="utf-8")
    got = read_jsonl(path)
    assert [(e.prompt, e.response) for e in got] == pairs
    assert got[1].where == f"{path}:2"


@pytest.mark.parametrize("line, message", [
    ('{"prompt": "a", "response": "b"', "not valid JSON"),
    ('["a", "b"]', "expected a JSON object"),
    ('{"prompt": "a"}', "missing field 'response'"),
    ('{"response": "b"}', "missing field 'prompt'"),
    ('{"prompt": 3, "response": "b"}', "'prompt' must be a string"),
    ('{"prompt": "a", "response": null}', "'response' must be a string"),
    ('{"prompt": "a", "response": ""}', "the response is empty"),
])
def test_a_malformed_line_names_file_and_line(tmp_path, line, message):
    path = write_lines(tmp_path / "bad.jsonl", ['{"prompt": "x", "response": "y"}', "", line])
    with pytest.raises(TaskError) as err:
        read_jsonl(path)
    assert f"{path}:3" in str(err.value)
    assert message in str(err.value)


def test_a_line_that_is_not_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "x", "response": "y"}\r\n{"prompt": "caf\xe9", "response": "y"}\n')
    with pytest.raises(TaskError, match=f"{path}:2: not UTF-8"):
        read_jsonl(path)


def test_written_lines_read_back(tmp_path):
    pairs = [Example("秦川雄帝宅，", "函谷壯皇居。"), ("a", "b\nc")]
    assert tasks.write_jsonl(tmp_path / "t.jsonl", pairs) == 2
    got = read_jsonl(tmp_path / "t.jsonl")
    assert [(e.prompt, e.response) for e in got] == [("秦川雄帝宅，", "函谷壯皇居。"), ("a", "b\nc")]
    assert [p.name for p in tmp_path.iterdir()] == ["t.jsonl"]                  # no temporary file left


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="prepare tang_couplets"):
        read_jsonl(tmp_path / "nope.jsonl")
    with pytest.raises(TaskError, match="no examples"):
        read_jsonl(write_lines(tmp_path / "empty.jsonl", [""]))


def test_unknown_character_is_refused_with_its_line():
    tok = CharTokenizer(CHARS)
    got = tasks.encode_pair(tok, Example("山水，", "月花。", "f:1"))
    assert got == (tok.encode("山水，"), tok.encode("月花。\n"))
    with pytest.raises(TaskError, match=r"f:7: character '鶴'"):
        tasks.encode_pair(tok, Example("山水，", "鶴月。", "f:7"))
    with pytest.raises(TaskError, match="prompt is empty"):
        tasks.encode_pair(tok, Example("", "月。", "f:2"))


# ---- the masked rows --------------------------------------------------------------------------------------
def test_build_example_by_hand():
    x, y = build_example([5, 6, 7], [8, 9], block_size=6, pad_id=0)
    assert x.tolist() == [5, 6, 7, 8, 0, 0]
    assert y.tolist() == [-100, -100, 8, 9, -100, -100]       # targets 6 and 7 are prompt tokens
    assert x.dtype == y.dtype == np.int64


def test_build_example_crops_from_the_left():
    x, y = build_example([1, 2, 3, 4], [5, 6, 7], block_size=4)  # 7 tokens, keep the last 5
    assert x.tolist() == [3, 4, 5, 6]
    assert y.tolist() == [-100, 5, 6, 7]
    x, y = build_example([1], [2, 3, 4, 5, 6], block_size=3)      # even the prompt goes: all targets count
    assert x.tolist() == [3, 4, 5] and y.tolist() == [4, 5, 6]


@pytest.mark.parametrize("prompt, response", [([], [1]), ([1], [])])
def test_build_example_refuses_empty_parts(prompt, response):
    with pytest.raises(ValueError):
        build_example(prompt, response, 4)


def test_every_response_token_is_a_target_exactly_once():
    rng = np.random.default_rng(0)
    for _ in range(200):
        p = rng.integers(1, 50, rng.integers(1, 8)).tolist()
        r = rng.integers(1, 50, rng.integers(1, 8)).tolist()
        block = int(rng.integers(2, 16))
        x, y = build_example(p, r, block)
        counted = y[y != IGNORE_INDEX].tolist()
        if len(p) + len(r) <= block + 1:                            # nothing cropped
            assert counted == r
            assert x[:len(p) + len(r) - 1].tolist() == (p + r)[:-1]
        else:                                                       # the cropped window's response part
            assert counted == r[-len(counted):] and len(counted) == min(len(r), block)


def tiny_model(V=23, block=12, seed=0):
    return GPT(GPTConfig(vocab_size=V, block_size=block, n_layer=1, n_head=2, n_embd=8), seed=seed,
               dtype=np.float64)


def test_dropping_padding_columns_does_not_change_the_loss_or_grads():
    model = tiny_model()
    pairs = [([1, 2, 3], [4, 5]), ([6], [7, 8, 9, 10]), ([11, 12], [13])]
    x, y = make_batch(pairs, 12)
    assert x.shape == (3, 4)                                        # the longest row: 1 + 4 - 1
    full = [build_example(p, r, 12) for p, r in pairs]
    xf, yf = np.stack([a for a, _ in full]), np.stack([b for _, b in full])
    loss, grads = model.loss_and_grads(x, y)
    loss_f, grads_f = model.loss_and_grads(xf, yf)
    assert loss == pytest.approx(loss_f, rel=1e-12)
    for k in grads:
        np.testing.assert_allclose(grads[k], grads_f[k], rtol=1e-9, atol=1e-13)


def test_the_masked_loss_is_the_mean_over_response_tokens_only():
    model = tiny_model()
    p, r = [1, 2, 3, 4], [5, 6, 7]
    x, y = make_batch([(p, r)], 12)
    logits = model.forward(x)[0]                                    # (T, V)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) \
        - logits.max(-1, keepdims=True)
    by_hand = -np.mean([logp[len(p) - 1 + i, t] for i, t in enumerate(r)])
    assert model.loss(x, y) == pytest.approx(by_hand, rel=1e-12)


def test_task_batches_are_seeded():
    pairs = [([i + 1], [i + 2, i + 3]) for i in range(10)]
    rows = tasks.TaskBatches(pairs, block_size=8, batch_size=4)
    a = rows.get_batch(np.random.default_rng(3))
    b = rows.get_batch(np.random.default_rng(3))
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[0].shape == (4, 2)
    assert sum(x.shape[0] for x, _ in rows.batches(3)) == 10


# ---- the couplets task ------------------------------------------------------------------------------------
def poem_text(n: int) -> str:
    """n poems with distinct couplets (k's digits as characters), plus a line that is not a couplet."""
    digits = CHARS[3:13]
    poems = []
    for k in range(n):
        a, b, c = digits[k // 100], digits[k // 10 % 10], digits[k % 10]
        poems.append(f"題{k}\n作者\n{a}{b}山{c}水，{c}花{b}風{a}。\n{c}{b}{a}山，{a}{a}{c}水！\n一，二，三。")
    return "\n\n".join(poems) + "\n"


def test_couplet_pairs_keep_two_half_lines_only():
    lines = ["秦川雄帝宅，函谷壯皇居。", "何如肆轍跡？萬里賞瑤池。", "一，二，三。", "無標點", "半句，"]
    got = couplets.couplet_pairs(lines)
    assert got == [("秦川雄帝宅，", "函谷壯皇居。"), ("何如肆轍跡？", "萬里賞瑤池。")]


def test_split_is_by_poem_and_follows_the_pretraining_cut():
    text = poem_text(60)
    pairs, counts = couplets.split_couplets(text, val_fraction=0.2, seed=1)
    cut = int(len(text) * 0.8)
    poems = couplets.parse_poems(text)
    assert len(poems) == 60
    owner = {}
    for p in poems:
        for pair in couplets.couplet_pairs(p.lines):
            owner.setdefault(pair, set()).add(p.start)
    train_prompts = {pr for pr, _ in pairs["train"]}
    for name in ("val", "test"):
        assert pairs[name]
        for pair in pairs[name]:
            assert all(start >= cut for start in owner[pair])           # from after the pre-training cut
            assert pair[0] not in train_prompts
    assert counts["train_poems"] + counts["val_poems"] + counts["test_poems"] == 60
    assert abs(counts["val_poems"] - counts["test_poems"]) <= 1
    again, _ = couplets.split_couplets(text, val_fraction=0.2, seed=1)
    other, _ = couplets.split_couplets(text, val_fraction=0.2, seed=2)
    assert again == pairs and other["train"] == pairs["train"]


def test_split_refuses_text_that_is_not_poems():
    with pytest.raises(ValueError, match="does not look like the Tang poems"):
        couplets.split_couplets("just one line\n", 0.1)


def test_prepare_tang_couplets_on_the_shared_corpus(shared, tmp_path, monkeypatch):
    from minigpt.datasets import recipes

    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path / "data"))
    folder = recipes.prepare("tang_couplets", from_file=shared("tang_poems.txt"), out=tmp_path / "tc",
                             log=quiet)
    meta = json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    splits = {name: read_jsonl(folder / f"{name}.jsonl") for name in couplets.SPLITS}
    assert {k: len(v) for k, v in splits.items()} == {"train": 21232, "val": 1187, "test": 1098}
    assert meta["train_poems"] == 4397 and meta["seed"] == 1337
    train_prompts = {e.prompt for e in splits["train"]}
    assert not any(e.prompt in train_prompts for e in splits["test"] + splits["val"])
    assert splits["train"][0] == Example("秦川雄帝宅，", "函谷壯皇居。", f"{folder / 'train.jsonl'}:1")


# ---- finetune through the trainer -------------------------------------------------------------------------
@pytest.fixture
def base(tmp_path):
    """A tiny checkpoint (char tokenizer over CHARS) saved the way train.py saves, and a couplet task."""
    tok = CharTokenizer(CHARS)
    tok_file = tmp_path / "tok.json"
    tok.save(tok_file)
    cfg = TrainConfig(n_layer=1, n_head=2, n_embd=8, block_size=16, batch_size=4, dataset="poems")
    model = GPT(GPTConfig(tok.vocab_size, 16, 1, 2, 8), seed=0, dtype=np.float32)
    opt = optim.AdamW(model.params, lr=1e-3)
    state = {"iter": 0, "model_config": asdict(model.config), "train_config": asdict(cfg),
             "rng": {"data": np.random.default_rng(0).bit_generator.state,
                     "dropout": np.random.default_rng(1).bit_generator.state}}
    checkpoint.save(tmp_path / "pre" / "best", model, opt.state_dict(), state, tok_file)
    lines = [(a + b + "，", b + a + "。") for a in "一二三四五" for b in "山水月花風"]
    tasks.write_jsonl(tmp_path / "train.jsonl", lines[:20])
    tasks.write_jsonl(tmp_path / "val.jsonl", lines[20:])
    return tmp_path


SMALL = {"max_iters": 6, "eval_interval": 2, "eval_iters": 2, "checkpoint_interval": 2, "batch_size": 4,
         "lr": 3e-3, "warmup_iters": 1, "lr_decay_iters": 6}


def test_finetune_trains_on_responses_and_checkpoints(base):
    summary = finetune.finetune(base / "train.jsonl", base / "ft", init=base / "pre", val=base / "val.jsonl",
                                overrides=SMALL, progress=False, log=quiet)
    assert summary["iter"] == 6 and not summary["interrupted"]
    ckpt = checkpoint.load(base / "ft" / "last")
    assert ckpt.state["train_config"]["lr"] == 3e-3 and ckpt.state["train_config"]["n_embd"] == 8
    assert ckpt.tokenizer.chars == list(CHARS)
    evals = [json.loads(x) for x in (base / "ft" / "log.jsonl").read_text().splitlines()]
    vals = [r["val_loss"] for r in evals if r["kind"] == "eval"]
    assert len(vals) == 4 and vals[-1] < vals[0]                   # it learns the task
    assert (base / "ft" / "best" / "state.json").is_file()


def test_finetune_defaults_are_gentler_than_pretraining(base):
    b = load_model(base / "pre")
    cfg = finetune.finetune_config(b)
    assert cfg.lr == finetune.FINETUNE_DEFAULTS["lr"] < TrainConfig().lr
    assert cfg.patience > 0 and cfg.block_size == 16 and cfg.batch_size == 4      # the base run's settings
    assert finetune.finetune_config(b, {"max_iters": 300}).lr_decay_iters == 300
    with pytest.raises(ValueError, match="keeps the architecture"):
        finetune.finetune_config(b, {"n_embd": 16})


def test_early_stopping(base):
    over = dict(SMALL, lr=0.0, min_lr=0.0, max_iters=40, patience=2)   # lr 0: val never improves
    summary = finetune.finetune(base / "train.jsonl", base / "ft", init=base / "pre", val=base / "val.jsonl",
                                overrides=over, progress=False, log=quiet)
    assert summary["stopped_early"] and summary["iter"] == 4        # evals at 0 (best), 2, 4 -> stop
    # resuming a run that stopped early stops again at once
    again = finetune.finetune(base / "train.jsonl", base / "ft", val=base / "val.jsonl", resume=True,
                              progress=False, log=quiet)
    assert again["stopped_early"] and again["iter"] == 4


def test_resume_is_exact(base):
    kw = dict(init=base / "pre", val=base / "val.jsonl", progress=False, log=quiet)
    finetune.finetune(base / "train.jsonl", base / "straight", overrides=SMALL, **kw)
    finetune.finetune(base / "train.jsonl", base / "split", overrides=dict(SMALL, max_iters=3), **kw)
    finetune.finetune(base / "train.jsonl", base / "split", overrides={"max_iters": 6}, resume=True,
                      val=base / "val.jsonl", progress=False, log=quiet)
    a = checkpoint.load(base / "straight" / "last").model.params
    b = checkpoint.load(base / "split" / "last").model.params
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # the task files are the run's identity: resuming on other data is refused
    tasks.write_jsonl(base / "other.jsonl", [("一二，", "三四。"), ("五六，", "七八。")])
    with pytest.raises(ValueError, match="other data"):
        finetune.finetune(base / "other.jsonl", base / "split", overrides={"max_iters": 8}, resume=True,
                          val=base / "val.jsonl", progress=False, log=quiet)


def test_without_val_a_seeded_tenth_is_held_out(base):
    examples = read_jsonl(base / "train.jsonl")
    tr, va = finetune.split_examples(examples, 0.1, seed=5)
    assert len(va) == 2 and len(tr) == 18 and not set(tr) & set(va)
    assert finetune.split_examples(examples, 0.1, seed=5) == (tr, va)
    with pytest.raises(ValueError, match="at least 2 examples"):
        finetune.split_examples(examples[:1], 0.1, seed=5)


def test_unknown_character_in_the_task_stops_before_training(base):
    write_lines(base / "bad.jsonl", ['{"prompt": "山水，", "response": "月花。"}',
                                     '{"prompt": "山水，", "response": "鶴。"}'])
    with pytest.raises(TaskError, match=r"bad.jsonl:2: character '鶴'"):
        finetune.finetune(base / "bad.jsonl", base / "ft", init=base / "pre", overrides=SMALL, progress=False,
                          log=quiet)
    assert not (base / "ft" / "last").exists()


def test_base_model_errors(base):
    with pytest.raises(ValueError, match="--init-from"):
        finetune.finetune(base / "train.jsonl", base / "ft", progress=False, log=quiet)
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        finetune.finetune(base / "train.jsonl", base / "ft", init=base / "nowhere", progress=False, log=quiet)


def test_cli_finetune(base, capsys):
    from minigpt.cli import main

    args = ["finetune", "--init-from", str(base / "pre"), "--task", str(base / "train.jsonl"), "--out",
            str(base / "cli"), "--no-progress", "--max_iters", "2", "--eval_interval", "2",
            "--eval_iters", "1"]
    assert main(args) == 0
    assert (base / "cli" / "last" / "state.json").is_file()
    assert main(["finetune", "--task", str(base / "train.jsonl")]) == 2
    assert "--init-from FOLDER" in capsys.readouterr().err
    with pytest.raises(SystemExit):                           # the base model's shape is not a setting here
        main(["finetune", "--init-from", str(base / "pre"), "--task", str(base / "train.jsonl"),
              "--n_layer", "3"])


def test_finetune_a_hugging_face_folder(tmp_path):
    """--init-from a GPT-2 folder: its files (config.json, model.safetensors, vocab.json, merges.txt); the
    tokenizer is copied into the run, so its checkpoints carry it."""
    from minigpt import hf
    from minigpt.tokenizer.files import bytes_to_unicode

    folder = tmp_path / "gpt2ish"
    folder.mkdir()
    chars = bytes_to_unicode()
    vocab = {chars[b]: b for b in range(256)} | {"Ġt": 256, "he": 257, "<|endoftext|>": 258}
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\nĠ t\nh e\n", encoding="utf-8")
    hf.save_gpt2(GPT(GPTConfig(259, 16, 1, 2, 8), seed=0, dtype=np.float32), folder)
    tasks.write_jsonl(tmp_path / "t.jsonl", [(f"say {w}:", f" {w} the") for w in ("a", "b", "c", "d", "e")])
    summary = finetune.finetune(tmp_path / "t.jsonl", tmp_path / "ft", init=folder,
                                overrides=dict(SMALL, batch_size=2), progress=False, log=quiet)
    assert summary["iter"] == 6
    ckpt = checkpoint.load(tmp_path / "ft" / "last")
    assert ckpt.tokenizer.encode(" the") == [256, 257] and ckpt.model.config.vocab_size == 259


def test_finetune_with_the_step_engine_equals_finetune_without(base, monkeypatch):
    """Masked prompts weigh the team's parts unevenly: the same losses as in one process (float32, 1e-5),
    and the step engine really ran."""
    monkeypatch.setattr(loop, "TEAM_MIN_FLOPS", 0)
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    said = []
    kw = dict(init=base / "pre", val=base / "val.jsonl", overrides=dict(SMALL, dropout=0.0), progress=False)
    finetune.finetune(base / "train.jsonl", base / "team", log=said.append, **kw)
    assert any("worker processes" in line for line in said)
    with engines.disabled():
        finetune.finetune(base / "train.jsonl", base / "alone", log=quiet, **kw)

    def losses(name):
        return [r["loss"] for r in map(json.loads, (base / name / "log.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    assert losses("team") == pytest.approx(losses("alone"), rel=1e-5)
