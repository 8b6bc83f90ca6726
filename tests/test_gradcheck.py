"""The numeric-gradient tool must agree with a known derivative and must catch a wrong one."""

import numpy as np

from minigpt.gradcheck import check_layer, numeric_grad, rel_error


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
