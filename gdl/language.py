"""What the word-level text models (lstm, gpt) share: their training windows, loss, scoring and samples.

Both read data/tokens/text.npz (stage tokenise@text; layout in gdl/sequences.py), train on windows of
`cfg.seq_len + 1` tokens to predict every next token (pad targets masked out of the loss), and are scored
token by token on the test split's windows, which the evaluate stage also scores the n-gram baselines on.
"""

from __future__ import annotations

import keras
import numpy as np

from gdl.data.text import detokenise, standardise
from gdl.sequences import OOV, PAD, encode_prompt, sample_tokens, windows

SCORE_BATCH = 64


def split_windows(data: dict, split: str, seq_len: int) -> np.ndarray:
    return windows(data[f"{split}_ids"], data[f"{split}_offsets"], seq_len)


def train_arrays(data: dict, cfg):
    train, val = split_windows(data, "train", cfg.seq_len), split_windows(data, "val", cfg.seq_len)
    return train[:, :-1], train[:, 1:], (val[:, :-1], val[:, 1:])


def compile_model(model: keras.Model, cfg) -> keras.Model:
    # ignore_class: pad targets (the end of a document's last window) teach nothing and are not scored.
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD))
    model.cfg = cfg
    return model


def log_softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits.astype(np.float64)
    logits -= logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def target_log_probs(logits_fn, w: np.ndarray) -> np.ndarray:
    """log p(w[:, t+1] | w[:, :t+1]) for every position of windows `w` (n, L+1), in batches: (n, L)."""
    out = np.zeros((len(w), w.shape[1] - 1), np.float64)
    for start in range(0, len(w), SCORE_BATCH):
        chunk = w[start:start + SCORE_BATCH]
        lp = log_softmax(np.asarray(logits_fn(chunk[:, :-1])))
        out[start:start + SCORE_BATCH] = np.take_along_axis(lp, chunk[:, 1:, None].astype(np.int64), axis=-1)[..., 0]
    return out


def token_log_likelihood(model: keras.Model, data: dict, split: str = "test") -> dict:
    w = split_windows(data, split, model.cfg.seq_len)
    return {"tokens": (w, target_log_probs(lambda x: model(x, training=False), w))}


def prompt_batch(prompts: list[str], vocab, copies: int) -> tuple[np.ndarray, np.ndarray]:
    """Every prompt `copies` times, left-aligned in one array; prompts shorter than the longest get their
    own sampling rows (returned: (ids (b, p), prompt lengths (b,)))."""
    encoded = [encode_prompt(standardise(p), vocab) for p in prompts]
    rows = [e for e in encoded for _ in range(copies)]
    return rows, np.array([len(r) for r in rows])


def sample(next_log_probs, n: int, cfg, seed: int) -> np.ndarray:
    """n sequences of cfg.sample_length tokens after the most frequent training token, at temperature 1."""
    start = np.full((n, 1), OOV + 1, np.int32)  # ids are by frequency, after padding and OOV
    return sample_tokens(next_log_probs, start, cfg.sample_length, 1.0, seed)


def sample_outputs(next_log_probs, data: dict, cfg, seed: int, copies: int = 2) -> dict[str, np.ndarray]:
    """Continuations of each prompt at each temperature: `samples` int32 (n, longest), 0-padded, with
    `temperatures`, `prompt_lengths` and the decoded `texts` beside it."""
    vocab = data["vocab"]
    rows, lengths = prompt_batch(cfg.prompts, vocab, copies)
    samples, temps, plens = [], [], []
    for i, temperature in enumerate(cfg.temperatures):
        for length in sorted(set(lengths)):  # one batch per prompt length: no padding inside a context
            batch = np.array([r for r, n in zip(rows, lengths) if n == length], np.int32)
            out = sample_tokens(next_log_probs, batch, cfg.sample_length, temperature, seed + 1000 * i + length)
            samples += list(out)
            temps += [temperature] * len(out)
            plens += [length] * len(out)
    width = max(len(s) for s in samples)
    arr = np.stack([np.pad(s, (0, width - len(s))) for s in samples]).astype(np.int32)
    return {"samples": arr, "temperatures": np.array(temps, np.float64), "prompt_lengths": np.array(plens, np.int64),
            "texts": np.array([detokenise(s, vocab) for s in arr], dtype=str)}
