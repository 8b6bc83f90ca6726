"""`minigpt eval`: greedy answers cut at the end token, BLEU / ROUGE with Chinese detection, response
perplexity, split perplexity (and its tokenizer check), the report, table, JSON, chart and CLI."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest

from minigpt import metrics, optim
from minigpt.datasets import prepared as data
from minigpt.files import checkpoint
from minigpt.files.models import load_model
from minigpt.finetune import tasks
from minigpt.layers.loss import cross_entropy_forward
from minigpt.metrics import evaluate
from minigpt.model import GPT, GPTConfig
from minigpt.tokenizer import CharTokenizer
from minigpt.training.config import TrainConfig

CHARS = "\n，。abcdefgh山水月花風雲"


class Successor:
    """A fake model whose greedy next token is always (last id + 1) mod V, with probability ~1."""

    def __init__(self, V: int, block_size: int = 16):
        self.config = GPTConfig(vocab_size=V, block_size=block_size, n_layer=1, n_head=1, n_embd=4)

    def forward(self, idx, kv_cache=None):
        idx = np.asarray(idx)
        logits = np.full((*idx.shape, self.config.vocab_size), -20.0)
        np.put_along_axis(logits, ((idx + 1) % self.config.vocab_size)[..., None], 20.0, axis=-1)
        return logits                                                     # (B, T, V)

    def loss(self, x, y, ignore_index=-100):
        return cross_entropy_forward(self.forward(x), y, ignore_index)[0]

    def new_kv_cache(self):
        class Cache:
            def reset(self):
                pass
        return Cache()


@pytest.fixture
def no_cache(monkeypatch):
    """The fake model has no weights for the KV cache: decode by recomputing the window (same ids)."""
    from functools import partial

    from minigpt import sampling

    monkeypatch.setattr(evaluate, "generate", partial(sampling.generate, use_cache=False))


def test_answer_stops_at_the_end_token_and_strips_it(no_cache):
    tok = CharTokenizer(CHARS)
    model = Successor(tok.vocab_size)
    # after "g" come "h", "山", ... ; cap it: then the text runs on without an end token
    assert evaluate.answer(model, tok, tok.encode("g"), max_new_tokens=3) == "h山水"
    # the successor of the last character wraps around to id 0 = "\n": the answer ends there
    assert evaluate.answer(model, tok, tok.encode("風"), max_new_tokens=10) == "雲"


def test_detect_lang():
    assert evaluate.detect_lang(["函谷壯皇居。", "山水"]) == "zh"
    assert evaluate.detect_lang(["the cat sat", "on 月"]) == "en"
    assert evaluate.detect_lang(["", " "]) == "en"


def write_task(path, pairs):
    tasks.write_jsonl(path, pairs)
    return path


def test_perfect_answers_score_full_marks(tmp_path, no_cache):
    tok = CharTokenizer(CHARS)
    model = Successor(tok.vocab_size)
    # the successor rule answers "bc" after "a", "雲" after "風" ... exactly the references here
    task = write_task(tmp_path / "t.jsonl", [("a", "bcdefgh山水月花風雲"), ("山水", "月花風雲")])
    s = evaluate.task_scores(model, tok, task)
    assert s["lang"] == "zh" and s["examples"] == 2
    assert s["bleu"] == pytest.approx(100.0) and s["exact"] == 1.0
    assert s["rouge1"] == s["rouge2"] == s["rougeL"] == pytest.approx(1.0)
    assert s["perplexity"] == pytest.approx(1.0, abs=1e-6)
    assert s["samples"][1] == {"prompt": "山水", "reference": "月花風雲", "answer": "月花風雲"}


def test_scores_are_the_metrics_on_the_answers(tmp_path, no_cache):
    task = write_task(tmp_path / "t.jsonl", [("a", "bcdX"), ("山", "水雲花")])
    tok = CharTokenizer(CHARS + "X")                                 # the reference may hold any text
    model = Successor(tok.vocab_size)
    s = evaluate.task_scores(model, tok, task, lang="en")
    hyps = [evaluate.answer(model, tok, tok.encode(p), 2 * len(r) + 6)
            for p, r in (("a", "bcdX"), ("山", "水雲花"))]
    assert s["bleu"] == pytest.approx(metrics.bleu(hyps, ["bcdX", "水雲花"], tokenize="13a"), abs=1e-12)
    want = np.mean([metrics.rouge(h, r)["rougeL"][2] for h, r in zip(hyps, ["bcdX", "水雲花"], strict=True)])
    assert s["rougeL"] == pytest.approx(want, abs=1e-12)
    zh = evaluate.task_scores(model, tok, task, lang="zh")
    assert zh["rouge1"] > s["rouge1"]                                  # the char tokenizer sees the Chinese
    with pytest.raises(ValueError, match="lang"):
        evaluate.task_scores(model, tok, task, lang="fr")


def tiny_gpt(V: int, seed: int = 0) -> GPT:
    config = GPTConfig(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=8)
    return GPT(config, seed=seed, dtype=np.float64)


def test_response_perplexity_is_exp_of_the_masked_loss_per_token():
    model = tiny_gpt(13)
    pairs = [([1, 2, 3], [4, 5]), ([6], [7, 8, 9]), ([10, 11, 12, 1, 2, 3, 4], [5, 6, 7, 8])]   # one cropped
    got = evaluate.response_perplexity(model, pairs, batch_size=2)
    total, count = 0.0, 0
    for p, r in pairs:
        x, y = tasks.make_batch([(p, r)], 8)
        n = int((y != -100).sum())
        total += model.loss(x, y) * n
        count += n
    assert got["response_tokens"] == count == 2 + 3 + 4
    assert got["perplexity"] == pytest.approx(math.exp(total / count), rel=1e-12)


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """data/poem (a prepared char dataset) and two tiny checkpoints sharing its tokenizer."""
    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path / "data"))
    from minigpt.datasets import recipes

    text = "".join(f"{a}{b}山，{b}{a}水。\n" for a in "abcdefgh" for b in "月花風雲") * 3
    (tmp_path / "poem.txt").write_text(text, encoding="utf-8")
    recipes.prepare("textfile", from_file=tmp_path / "poem.txt", log=lambda m: None)
    folder = tmp_path / "data" / "poem"
    tok = data.load_tokenizer(folder / "tokenizer.json")
    for k, name in enumerate(("base", "tuned")):
        model = tiny_gpt(tok.vocab_size, seed=k)
        state = {"iter": 0, "model_config": asdict(model.config), "train_config": asdict(TrainConfig()),
                 "rng": {"data": np.random.default_rng(0).bit_generator.state,
                         "dropout": np.random.default_rng(1).bit_generator.state}}
        checkpoint.save(tmp_path / name / "best", model, optim.AdamW(model.params).state_dict(), state,
                        folder / "tokenizer.json")
    pairs = [("a月山，", "月a水。"), ("b花山，", "花b水。"), ("c雲山，", "雲c水。")]
    write_task(tmp_path / "test.jsonl", pairs)
    return tmp_path


def test_split_perplexity_matches_metrics_and_checks_the_tokenizer(runs):
    loaded = load_model(runs / "base")
    model, tok = loaded.model, loaded.tokenizer
    assert loaded.name == "base/best" and loaded.kind == "checkpoint"
    got = evaluate.split_perplexity(model, tok, "poem", "val")
    ids = data.load_tokens(runs / "data" / "poem", "val")
    assert got["perplexity"] == pytest.approx(metrics.perplexity(model, np.asarray(ids, dtype=np.int64)))
    assert got["tokens"] == len(ids) - 1
    other = CharTokenizer(sorted(set(tok.chars) | {"Z"}))
    with pytest.raises(ValueError, match="another tokenizer"):
        evaluate.split_perplexity(model, other, "poem", "val")


def test_report_table_json_and_chart(runs):
    report = evaluate.evaluate([runs / "base", runs / "tuned"], data="poem", split="val",
                               task=runs / "test.jsonl", max_examples=2, log=lambda m: None)
    assert [m["name"] for m in report["models"]] == ["base/best", "tuned/best"]
    for m in report["models"]:
        assert m["task"]["examples"] == 2 and m["task"]["lang"] == "zh"
        assert set(evaluate.SCORES) <= set(m["task"]) and m["perplexity"]["perplexity"] > 1
    table = evaluate.format_table(report)
    assert "tuned/best" in table and "ROUGE-L" in table and "zh" in table
    evaluate.write_json(report, runs / "out" / "eval.json")
    again = json.loads((runs / "out" / "eval.json").read_text(encoding="utf-8"))
    assert again["models"][1]["task"]["bleu"] == report["models"][1]["task"]["bleu"]
    evaluate.plot(report, runs / "out" / "eval.png")
    assert (runs / "out" / "eval.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_to_evaluate_is_an_error(runs):
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate.evaluate([runs / "base"])
    with pytest.raises(ValueError, match="at least one"):
        evaluate.evaluate([], data="poem")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        evaluate.evaluate([runs / "nowhere"], data="poem")


def test_cli_eval(runs, capsys):
    from minigpt.cli import main

    code = main(["eval", "--checkpoint", str(runs / "base"), str(runs / "tuned"), "--data", "poem",
                 "--task", str(runs / "test.jsonl"), "--json", str(runs / "r.json"),
                 "--plot", str(runs / "r.png")])
    out = capsys.readouterr().out
    assert code == 0 and "base/best" in out and "tuned/best" in out
    assert (runs / "r.png").is_file()
    assert json.loads((runs / "r.json").read_text())["task"].endswith("test.jsonl")
