"""The numeric-gradient tool must agree with a known derivative and must catch a wrong one."""

import numpy as np

from minigpt.course.gradcheck import check_layer, numeric_grad, rel_error, sampled_grad_errors


def square_forward(x, w):
    return x * x * w, (x, w)


def square_backward(dout, cache):
    x, w = cache
    return 2 * x * w * dout, x * x * dout


def wrong_backward(dout, cache):
    x, w = cache
    return x * w * dout, x * x * dout  # missing the factor 2


def test_numeric_grad_of_known_function():
    x = np.linspace(-1, 1, 7)
    g = numeric_grad(lambda: np.sin(x), x, 1.0)
    assert rel_error(g, np.cos(x)) < 1e-9


def test_check_layer_accepts_right_and_rejects_wrong_backward():
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))]
    good = check_layer(square_forward, square_backward, args)
    assert max(good.values()) < 1e-8
    bad = check_layer(square_forward, wrong_backward, args)
    assert bad["arg0"] > 1e-2


def test_rel_error_edges():
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error(np.ones(3), -np.ones(3)) == 1.0


def test_sampled_grad_errors_accepts_right_and_rejects_wrong_gradients():
    rng = np.random.default_rng(0)
    params = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5)}
    before = {k: v.copy() for k, v in params.items()}

    def loss() -> float:                                   # sum(a^3) + sum(sin b)
        return float(np.sum(params["a"] ** 3) + np.sum(np.sin(params["b"])))

    right = {"a": 3 * params["a"] ** 2, "b": np.cos(params["b"])}
    wrong = {"a": 2 * params["a"] ** 2, "b": np.cos(params["b"])}
    ok = sampled_grad_errors(loss, params, right, samples=4, rng=np.random.default_rng(1))
    bad = sampled_grad_errors(loss, params, wrong, samples=4, rng=np.random.default_rng(1))
    assert set(ok) == {"a", "b"} and all(e < 1e-8 for e, _ in ok.values())
    assert bad["a"][0] > 0.1 and bad["a"][1] > 0.1 and bad["b"][0] < 1e-8
    assert all(np.array_equal(params[k], before[k]) for k in params)   # every nudge was undone
