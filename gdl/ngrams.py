"""The trivial baselines of the token models: smoothed unigram and bigram models (numpy only).

A language model's perplexity means little on its own. The same figure for a model that knows only how
often each token occurs (unigram), or which token tends to follow which (bigram), says how much of the
model's gain is context beyond one token. Both are fitted on the training split and scored on exactly
the windows the model is scored on (gdl/sequences.py), target by target, in nats.

* unigram: add-k smoothing, p(w) = (c(w) + k) / (N + k V).
* bigram: interpolated Kneser-Ney (Chen & Goodman 1998) with one discount d,
  p(w | v) = max(c(v, w) - d, 0) / c(v) + d N1+(v .) / c(v) * p_cont(w),
  where p_cont(w) is how many distinct tokens precede w (add-k smoothed so no token gets 0), and
  p(w | v) = p_cont(w) for a v never seen in training.

The smoothing constants (k, d) are picked on the validation split from a small grid: a fixed constant
would make the baseline needlessly weak (or strong) depending on the corpus size. Pad (id 0) is never a
token; the vocabulary is ids 1..V-1, so V counts the out-of-vocabulary id 1 but not pad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdl.sequences import PAD, sequences

ADD_K_GRID = (0.01, 0.03, 0.1, 0.3, 1.0)
DISCOUNT_GRID = (0.5, 0.6, 0.7, 0.8, 0.9, 0.95)


def pairs(ids: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) id pairs of consecutive tokens within each sequence of a split."""
    prev, nxt = [], []
    for seq in sequences(ids, offsets):
        prev.append(seq[:-1])
        nxt.append(seq[1:])
    if not prev:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(prev).astype(np.int64), np.concatenate(nxt).astype(np.int64)


@dataclass
class Unigram:
    counts: np.ndarray  # (V,) float64, counts[0] = 0 (pad)
    k: float = 0.1

    @classmethod
    def fit(cls, targets: np.ndarray, vocab_size: int, k: float = 0.1) -> "Unigram":
        counts = np.bincount(targets[targets != PAD], minlength=vocab_size).astype(np.float64)
        return cls(counts, k)

    def log_prob(self, prev: np.ndarray, target: np.ndarray) -> np.ndarray:
        del prev
        v = len(self.counts) - 1  # pad is not a token
        return np.log((self.counts[target] + self.k) / (self.counts.sum() + self.k * v))


@dataclass
class KneserNeyBigram:
    codes: np.ndarray  # sorted unique prev * V + next codes of the training bigrams
    counts: np.ndarray  # their counts
    context_total: np.ndarray  # (V,) c(v)
    context_types: np.ndarray  # (V,) N1+(v .)
    continuation: np.ndarray  # (V,) p_cont(w)
    vocab_size: int
    discount: float = 0.75

    @classmethod
    def fit(cls, prev: np.ndarray, nxt: np.ndarray, vocab_size: int, discount: float = 0.75,
            continuation_k: float = 0.5) -> "KneserNeyBigram":
        keep = (prev != PAD) & (nxt != PAD)
        code = prev[keep] * vocab_size + nxt[keep]
        codes, counts = np.unique(code, return_counts=True)
        first, second = codes // vocab_size, codes % vocab_size
        context_total = np.bincount(first, weights=counts, minlength=vocab_size)
        context_types = np.bincount(first, minlength=vocab_size).astype(np.float64)
        preceding_types = np.bincount(second, minlength=vocab_size).astype(np.float64)
        preceding_types[PAD] = 0.0
        smoothed = preceding_types + continuation_k
        smoothed[PAD] = 0.0
        return cls(codes, counts.astype(np.float64), context_total, context_types, smoothed / smoothed.sum(),
                   vocab_size, discount)

    def log_prob(self, prev: np.ndarray, target: np.ndarray) -> np.ndarray:
        code = prev.astype(np.int64) * self.vocab_size + target
        c = np.zeros(len(code))
        if len(self.codes):
            at = np.minimum(np.searchsorted(self.codes, code), len(self.codes) - 1)
            c = np.where(self.codes[at] == code, self.counts[at], 0.0)
        total, types = self.context_total[prev], self.context_types[prev]
        seen = total > 0
        safe = np.where(seen, total, 1.0)
        p = np.where(seen, np.maximum(c - self.discount, 0.0) / safe
                     + self.discount * types / safe * self.continuation[target], self.continuation[target])
        return np.log(p)


def score(model, windows: np.ndarray) -> np.ndarray:
    """log p of every target of `windows` (n, L+1) under an n-gram model: (n, L), pad targets 0."""
    prev, target = windows[:, :-1].astype(np.int64), windows[:, 1:].astype(np.int64)
    mask = target != PAD
    out = np.zeros(target.shape, np.float64)
    out[mask] = model.log_prob(prev[mask], target[mask])
    return out


def mean_nll(logp: np.ndarray, windows: np.ndarray) -> float:
    mask = windows[:, 1:] != PAD
    return float(-logp[mask].sum() / mask.sum())


def fit_baselines(train: tuple[np.ndarray, np.ndarray], val_windows: np.ndarray, vocab_size: int):
    """(unigram, bigram) fitted on the training split's (ids, offsets), their constants picked on the
    validation windows."""
    ids, offsets = train
    prev, nxt = pairs(ids, offsets)
    targets = np.concatenate([nxt, ids[offsets[:-1][np.diff(offsets) > 0]].astype(np.int64)])  # every token
    unigrams = [Unigram.fit(targets, vocab_size, k) for k in ADD_K_GRID]
    bigrams = [KneserNeyBigram.fit(prev, nxt, vocab_size, d) for d in DISCOUNT_GRID]
    if len(val_windows) and (val_windows[:, 1:] != PAD).any():
        unigram = min(unigrams, key=lambda m: mean_nll(score(m, val_windows), val_windows))
        bigram = min(bigrams, key=lambda m: mean_nll(score(m, val_windows), val_windows))
    else:
        unigram, bigram = unigrams[2], bigrams[3]
    return unigram, bigram


def bootstrap_std(logp: np.ndarray, windows: np.ndarray, resamples: int, seed: int) -> float:
    """Standard deviation of the mean per-token NLL over bootstrap resamples of the windows."""
    mask = windows[:, 1:] != PAD
    sums, counts = -(logp * mask).sum(axis=1), mask.sum(axis=1)
    if len(sums) < 2:
        return float("nan")
    idx = np.random.default_rng(seed).integers(0, len(sums), (resamples, len(sums)))
    return float((sums[idx].sum(axis=1) / np.maximum(counts[idx].sum(axis=1), 1)).std(ddof=1))
