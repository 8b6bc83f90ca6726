"""Lesson 02's checks: token + position embeddings (forward, scatter-add backward) and inverted dropout.

Graded against PyTorch's references in reference/ (F.embedding + wpe slice, autograd), against finite
differences in float64, and against the properties that define inverted dropout. The implementation under
test provides embedding_forward / embedding_backward and dropout_forward / dropout_backward; minigpt keeps
them in two files (minigpt/layers/embedding.py and dropout.py), so the default IMPL is the package that
exports both. A file without the dropout pair gets its dropout checks skipped, not failed.

Tolerances (stated once, used below):
  float64: rtol 1e-10, atol 1e-12. The forward is one addition, exact in both libraries; a gradient row is a
           sum of up to 10 numbers of size ~1, added in a different order by torch and by you, so it can
           differ by a few 1e-16. atol covers entries that cancel to ~0 and the unused rows that must be 0.
  float32: rtol 1e-4, atol 1e-5. float32 keeps ~7 digits (eps 1.2e-7); the same sums in another order
           differ by ~1e-6 in absolute terms, so this catches real bugs and not summation order.
  finite differences: relative error < 1e-7 (central differences, h = 1e-5, float64).
"""

from __future__ import annotations

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers"

F64 = {"rtol": 1e-10, "atol": 1e-12}
F32 = {"rtol": 1e-4, "atol": 1e-5}


def _dropout_step(impl, g) -> None:
    if hasattr(impl, "dropout_forward") and hasattr(impl, "dropout_backward"):
        _dropout(impl, g)
    else:
        g.skip("dropout", "this implementation defines no dropout_forward / dropout_backward: write them in "
               "your file to have them graded")


# ---- embedding -------------------------------------------------------------------------------------
CASES = [
    ("f64", "float64, repeated ids", F64, np.float64),
    ("t1", "T = 1", F64, np.float64),
    ("start", "start = 4 (positions 4..6, as with a KV cache)", F64, np.float64),
    ("same", "one id everywhere (dwte[idx] += dout would keep only one of the ten)", F64, np.float64),
    ("f32", "float32 in, float32 out", F32, np.float32),
]
PITFALLS = {"start": "start", "same": "scatter"}


def _case(ref, key):
    return {k.split("/", 1)[1]: v for k, v in ref.items() if k.startswith(key + "/")}


def _embedding_forward(impl, g) -> None:
    ref = load_reference(__file__, "embedding.npz")
    for key, title, tol, dtype in CASES:
        r = _case(ref, key)
        with g.case(f"embedding_forward {title}", pitfall=PITFALLS.get(key)):
            out, _ = impl.embedding_forward(r["idx"], r["wte"], r["wpe"], start=int(r["start"]))
            g.close("out", out, r["out"], dtype=dtype, **tol)
    r = _case(ref, "f64")
    wte, wpe = r["wte"], r["wpe"]
    V, P = wte.shape[0], wpe.shape[0]
    with g.case("embedding_forward refuses bad input", pitfall="negative"):
        with g.raises(f"token id {V} (= vocab size) is refused", IndexError):
            impl.embedding_forward(np.array([[0, V]]), wte, wpe)
        with g.raises("token id -1 is refused (NumPy would silently read the last row)", IndexError):
            impl.embedding_forward(np.array([[0, -1]]), wte, wpe)
        with g.raises(f"positions past block_size {P} are refused", ValueError):
            impl.embedding_forward(np.zeros((1, 3), dtype=np.int64), wte, wpe, start=P - 2)


def _embedding_backward(impl, g) -> None:
    ref = load_reference(__file__, "embedding.npz")
    for key, title, tol, dtype in CASES:
        r = _case(ref, key)
        with g.case(f"embedding_backward {title}", pitfall=PITFALLS.get(key, "scatter")):
            _, cache = impl.embedding_forward(r["idx"], r["wte"], r["wpe"], start=int(r["start"]))
            dwte, dwpe = impl.embedding_backward(r["dout"], cache)
            g.close("dwte", dwte, r["dwte"], dtype=dtype, **tol)
            g.close("dwpe", dwpe, r["dwpe"], dtype=dtype, pitfall="dwpe", **tol)

    r = _case(ref, "f64")
    with g.case("embedding_backward rows"):
        _, cache = impl.embedding_forward(r["idx"], r["wte"], r["wpe"])
        dwte, dwpe = impl.embedding_backward(r["dout"], cache)
        unused = np.setdiff1d(np.arange(r["wte"].shape[0]), r["idx"])
        g.true(f"ids never used ({unused.tolist()}) get exactly zero gradient",
               bool(np.all(np.asarray(dwte)[unused] == 0.0)))
        T = r["idx"].shape[1]
        g.true(f"positions past T = {T} get exactly zero gradient", bool(np.all(np.asarray(dwpe)[T:] == 0.0)))

    with g.case("embedding finite differences (float64)", pitfall="scatter"):
        idx, wte, wpe = r["idx"], r["wte"].copy(), r["wpe"].copy()
        errors = check_layer(impl.embedding_forward, impl.embedding_backward, [idx, wte, wpe])
        for name, label in (("arg1", "wte"), ("arg2", "wpe")):
            g.below(f"d{label}: relative error", errors[name], 1e-7)


# ---- dropout ---------------------------------------------------------------------------------------
def _dropout(impl, g) -> None:
    ref = load_reference(__file__, "dropout.npz")
    x = np.random.default_rng(0).uniform(0.5, 1.5, size=(4, 30, 50))     # (B, T, C) no zeros: out/x = mask
    dout = np.random.default_rng(1).standard_normal(x.shape)             # (B, T, C)

    for title, p, training in (("p = 0 while training", 0.0, True), ("eval mode (p = 0.5)", 0.5, False)):
        with g.case(f"dropout identity, {title}"):
            rng = np.random.default_rng(2)
            before = rng.bit_generator.state
            out, cache = impl.dropout_forward(x, p, rng, training)
            g.close("out equals x", out, x, rtol=0, atol=0)
            g.close("dx equals dout", impl.dropout_backward(dout, cache), dout, rtol=0, atol=0)
            g.true("draws no random numbers (a resumed run's random stream stays in step)",
                   rng.bit_generator.state == before)

    for p, torch_value, torch_kept in zip(ref["p"], ref["survivor_value"], ref["kept_fraction"], strict=True):
        with g.case(f"dropout p = {p:g} on ones", pitfall="scale"):
            n = int(ref["n"])
            out, _ = impl.dropout_forward(np.ones(n), float(p), np.random.default_rng(3), True)
            out = np.asarray(out)
            kept = out[out != 0]
            g.close("every survivor is scaled to 1/(1-p), like torch's F.dropout",
                    kept, np.full(kept.shape, torch_value), rtol=1e-12, atol=0)
            sigma = np.sqrt(p * (1 - p) / n)                                # std of the kept fraction
            g.close(f"kept fraction {kept.size / n:.4f} is 1-p within 5 sigma (torch kept {torch_kept:.4f})",
                    kept.size / n, 1 - p, rtol=0, atol=5 * sigma)
            sigma_mean = np.sqrt(p / (1 - p) / n)                           # std of mean(out)
            g.close("mean(out) is 1 within 5 sigma: the expected activation is unchanged",
                    out.mean(), 1.0, rtol=0, atol=5 * sigma_mean)

    with g.case("dropout backward reuses the forward's mask", pitfall="new_mask"):
        out, cache = impl.dropout_forward(x, 0.3, np.random.default_rng(4), True)
        dx = impl.dropout_backward(dout, cache)
        g.close("dx = dout * (out / x)", dx, dout * (np.asarray(out) / x), rtol=1e-12, atol=1e-15)
        g.true("dx is zero exactly where out is zero", bool(np.array_equal(np.asarray(dx) == 0, out == 0)))

    with g.case("dropout seeded"):
        a, _ = impl.dropout_forward(x, 0.3, np.random.default_rng(5), True)
        b, _ = impl.dropout_forward(x, 0.3, np.random.default_rng(5), True)
        c, _ = impl.dropout_forward(x, 0.3, np.random.default_rng(6), True)
        g.equal("same seed, same output", np.asarray(a), np.asarray(b))
        g.true("another seed, another mask", not np.array_equal(a, c))

    with g.case("dropout float32 in, float32 out"):
        x32 = x.astype(np.float32)
        out, cache = impl.dropout_forward(x32, 0.2, np.random.default_rng(7), True)
        g.true(f"out dtype {np.asarray(out).dtype} is float32", np.asarray(out).dtype == np.float32)
        dx = impl.dropout_backward(dout.astype(np.float32), cache)
        g.true(f"dx dtype {np.asarray(dx).dtype} is float32", np.asarray(dx).dtype == np.float32)

    with g.case("dropout finite differences (float64)"):
        xs = x[:1, :3, :4].copy()                                          # (1, 3, 4) small: 12 nudges
        # a fresh generator per call: every forward the check makes must draw the same mask
        err = check_layer(lambda a: impl.dropout_forward(a, 0.4, np.random.default_rng(8), True),
                          impl.dropout_backward, [xs])["arg0"]
        g.below("dx: relative error", err, 1e-7)

    for p in (1.0, -0.1):
        with g.raises(f"p = {p} is refused", ValueError):
            impl.dropout_forward(x, p, np.random.default_rng(9), True)
    with g.raises("training without a generator is refused", ValueError):
        impl.dropout_forward(x, 0.1, None, True)


STEPS = [
    Step(1, "look up token and position vectors", ("embedding_forward",), _embedding_forward),
    Step(2, "scatter the gradient back to the rows", ("embedding_backward",), _embedding_backward),
    Step(3, "inverted dropout, forward and backward", ("dropout_forward", "dropout_backward"), _dropout_step),
]
