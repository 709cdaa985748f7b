"""Token streams as the tokenise stages write them, cut into training windows (numpy only).

A tokenised split is a flat int32 array of token ids and the int64 `offsets` of its sequences (documents,
or one voice of a chorale): sequence s is ``ids[offsets[s]:offsets[s + 1]]``. Id 0 is padding (never a
real token, as in Keras' TextVectorization), id 1 the out-of-vocabulary token.

Models see fixed-length windows that never cross a sequence boundary: a sequence of m tokens gives
windows of ``length + 1`` ids starting every ``length`` tokens, the last one padded with 0. A model reads
``w[:, :-1]`` and predicts ``w[:, 1:]``; every non-pad target is predicted once, from the tokens before it
in its window, so a model and an n-gram baseline scored on the same windows predict the same tokens.
"""

from __future__ import annotations

import numpy as np

PAD, OOV = 0, 1


class VocabularyError(ValueError):
    """A model meets a tokenisation other than the one it was trained on."""


def sequences(ids: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    return [ids[offsets[s]:offsets[s + 1]] for s in range(len(offsets) - 1)]


def windows(ids: np.ndarray, offsets: np.ndarray, length: int) -> np.ndarray:
    """int32 (n, length + 1) windows of every sequence (see the module docstring); sequences of fewer than
    2 tokens give none (nothing to predict)."""
    if length < 1:
        raise ValueError(f"window length must be >= 1, got {length}")
    out = []
    for seq in sequences(np.asarray(ids), np.asarray(offsets)):
        for start in range(0, max(len(seq) - 1, 0), length):
            chunk = seq[start:start + length + 1]
            if len(chunk) >= 2:
                out.append(np.pad(chunk, (0, length + 1 - len(chunk)), constant_values=PAD))
    if not out:
        return np.zeros((0, length + 1), np.int32)
    return np.stack(out).astype(np.int32)


def inputs_targets(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(inputs, targets) of windows: w[:, :-1] and w[:, 1:]; pad targets (0) are to be masked."""
    return w[:, :-1], w[:, 1:]


def stream_windows(data: dict, split: str, streams: tuple[str, ...], length: int) -> list[np.ndarray]:
    """The windows of several aligned streams of one split (the music transformer's notes and durations
    share offsets): one (n, length + 1) array per stream, the same windows for each."""
    offsets = data[f"{split}_offsets"]
    return [windows(data[f"{split}_{s}_ids" if f"{split}_{s}_ids" in data else f"{split}_ids"], offsets, length)
            for s in streams]


def vocab_of(data: dict) -> dict[str, list[str]]:
    """Every vocabulary in a tokenised dataset: its arrays named `vocab` or `<stream>_vocab`."""
    return {k: [str(t) for t in v] for k, v in sorted(data.items()) if k == "vocab" or k.endswith("_vocab")}


def check_vocab(trained: dict[str, list[str]], data: dict, where: str) -> None:
    """Raise a VocabularyError naming `where` (the model's vocab file) when the data's vocabularies are not
    the ones the model was trained on."""
    current = vocab_of(data)
    for name in sorted(set(trained) | set(current)):
        a, b = trained.get(name), current.get(name)
        if a == b:
            continue
        if a is None or b is None:
            raise VocabularyError(f"{where}: vocabulary {name!r} is {'missing from the model' if a is None else 'not in the data'}"
                                  " (retrain the model: dvc repro)")
        first = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        raise VocabularyError(
            f"{where}: the model was trained on another tokenisation: vocabulary {name!r} has {len(a)} tokens "
            f"there and {len(b)} in the data, first difference at id {first} "
            f"({a[first] if first < len(a) else '<end>'!r} vs {b[first] if first < len(b) else '<end>'!r}); "
            "retrain it (dvc repro) or restore the tokenise stage's outputs it was trained with")


def sample_tokens(next_log_probs, prompts: np.ndarray, steps: int, temperature: float, seed: int,
                  banned=(PAD, OOV)) -> np.ndarray:
    """Autoregressive sampling: `steps` tokens after each prompt row, drawn from the model's next-token
    distribution sharpened (temperature < 1) or flattened (> 1); `next_log_probs(context (b, t)) -> (b, V)`.
    Pad and [UNK] are never drawn, so samples read as text. Seeded: the same call gives the same tokens."""
    rng = np.random.default_rng(seed)
    out = np.asarray(prompts, np.int32)
    for _ in range(steps):
        logits = np.asarray(next_log_probs(out), np.float64) / max(temperature, 1e-6)
        logits[:, list(banned)] = -np.inf
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        p /= p.sum(axis=1, keepdims=True)
        draws = (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1)  # inverse CDF, one uniform per row
        out = np.concatenate([out, draws[:, None].astype(np.int32)], axis=1)
    return out


def encode_prompt(text: str, vocab) -> list[int]:
    """Ids of a prompt's whitespace-separated tokens (already standardised), [UNK] for unknown words."""
    index = {str(t): i for i, t in enumerate(vocab)}
    return [index.get(word, OOV) for word in text.split()]
