"""The book's LSTM text generator (chapter 5): embed each word, run a recurrent layer over the sequence,
predict the next word at every position.

    Embedding(V, 100) -> LSTM(128, return_sequences) [-> more layers] -> Dense(V)

The cell (LSTM or GRU) and the number of stacked layers are params. Trained with teacher forcing on
windows of the tokenised text (gdl/language.py); generation feeds each drawn word back in. The family
interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, token_log_likelihood.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from gdl import language

train_arrays = language.train_arrays
token_log_likelihood = language.token_log_likelihood


def build(cfg, data: dict, seed: int) -> keras.Model:
    vocab_size = len(data["vocab"])
    cell = {"lstm": layers.LSTM, "gru": layers.GRU}[cfg.cell]
    tokens = keras.Input((None,), dtype="int32")
    # mask_zero: the recurrent layers skip padding, so a padded window's state is the one its words give.
    x = layers.Embedding(vocab_size, cfg.embedding_dim, mask_zero=True)(tokens)
    for _ in range(cfg.layers):
        x = cell(cfg.units, return_sequences=True, seed=seed)(x)
        if cfg.dropout:
            x = layers.Dropout(cfg.dropout, seed=seed)(x)
    logits = layers.Dense(vocab_size)(x)
    model = keras.Model(tokens, logits, name=f"{cfg.cell}_generator")
    return language.compile_model(model, cfg)


def next_log_probs(model: keras.Model):
    """context (b, t) -> log p(next word) (b, V). The whole context is rerun each step: the samples are
    short (tens of words), so a stateful cell would save little and add a second code path."""
    def step(context: np.ndarray) -> np.ndarray:
        logits = model(context[:, -model.cfg.seq_len:], training=False)
        return language.log_softmax(np.asarray(logits[:, -1]))
    return step


def sample(model: keras.Model, n: int, seed: int) -> np.ndarray:
    return language.sample(next_log_probs(model), n, model.cfg, seed)


def sample_outputs(model: keras.Model, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    del n  # a few continuations per prompt and temperature: generation is word by word
    return language.sample_outputs(next_log_probs(model), data, model.cfg, seed)
