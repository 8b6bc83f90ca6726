"""Bootstrap confidence intervals for ROUGE over a corpus, exactly as rouge-score's BootstrapAggregator.

A corpus ROUGE is the mean of per-example scores; how sure is that mean? Resample the examples with
replacement (n_samples times, each of the corpus's size), take each resample's mean, and report the
percentiles of those means: low = (1 - confidence) / 2, mid = 50%, high = 1 - low. With 95% confidence
and 1000 samples that is the 2.5th, 50th and 97.5th percentile (numpy's linear interpolation). "mid" is
the median of the resampled means, not the plain mean, though the two are close.

rouge-score draws its indices from numpy's *global* legacy generator (np.random.choice). We draw the
same stream from a legacy np.random.RandomState(seed), so bootstrap_rouge(scores, seed=s) equals
rouge-score's aggregate() after np.random.seed(s), to the bit. A numpy Generator would give a different
stream of the same distribution; pass one as `seed` if you do not need rouge-score's numbers.

Deliberately not here: sacrebleu's paired bootstrap and approximate randomisation significance tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np

from minigpt.metrics.rouge import Score

_CHUNK_VALUES = 1 << 22  # resampled scores held at once (x 3 measures x 8 bytes: ~100 MB)


class AggregateScore(NamedTuple):
    """rouge-score's AggregateScore: three (precision, recall, fmeasure) tuples."""

    low: Score
    mid: Score
    high: Score


def bootstrap_rouge(scores: Sequence[Mapping[str, Score]], confidence_interval: float = 0.95,
                    n_samples: int = 1000,
                    seed: int | np.random.RandomState | np.random.Generator = 0) -> dict[str, AggregateScore]:
    """{type: AggregateScore(low, mid, high)} over per-example scores such as metrics.rouge's results.

    scores[i] maps a ROUGE type to (precision, recall, fmeasure) for example i. Types are resampled one
    after another, in the order they first appear, from one generator (rouge-score's order).
    """
    if not 0 <= confidence_interval <= 1:
        raise ValueError(f"confidence_interval must be in [0, 1], got {confidence_interval}")
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if len(scores) == 0:
        raise ValueError("no scores to aggregate: pass one dict of scores per example")
    rng = np.random.RandomState(seed) if isinstance(seed, int | np.integer) else seed
    by_type: dict[str, list[Score]] = {}
    for example in scores:
        for kind, score in example.items():
            by_type.setdefault(kind, []).append(tuple(score))
    delta = (1 - confidence_interval) / 2
    q = 100 * np.array([delta, 0.5, 1 - delta])
    result: dict[str, AggregateScore] = {}
    for kind, rows in by_type.items():
        matrix = np.array(rows, dtype=np.float64)                # (N, 3)
        n = len(matrix)
        means = np.empty((n_samples, matrix.shape[1]))           # (n_samples, 3)
        chunk = max(1, _CHUNK_VALUES // n)
        for start in range(0, n_samples, chunk):
            stop = min(start + chunk, n_samples)
            if isinstance(rng, np.random.Generator):
                idx = rng.integers(0, n, size=(stop - start, n))
            else:  # one call for many samples = the same stream as one np.random.choice call per sample
                idx = rng.randint(0, n, size=(stop - start, n))  # (chunk, N)
            means[start:stop] = matrix[idx].mean(axis=1)         # (chunk, N, 3) -> (chunk, 3)
        low, mid, high = np.percentile(means, q, axis=0)         # (3, 3): bound x measure
        result[kind] = AggregateScore(*(tuple(float(v) for v in row) for row in (low, mid, high)))
    return result
