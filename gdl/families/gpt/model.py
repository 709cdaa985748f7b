"""GPT (chapter 9): the book's small causal transformer, written out so that each head's attention can be
drawn and generation can reuse the keys and values it has already computed.

    token + position embedding -> [causal self-attention -> add & norm -> feed-forward -> add & norm] x blocks
    -> Dense(V)

The book builds its block on keras' MultiHeadAttention; here the attention is a short layer of its own
(`CausalSelfAttention`) because generation needs a second way to call it: one new token at a time against a
cache of the keys and values of the tokens before it (`step`), instead of recomputing the whole context for
every token drawn (`scripts/bench_gpt_cache.py` measures both). Both paths share the weights, and a test checks
they give the same next-token distribution.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs,
token_log_likelihood; plus `attention_maps` for the report.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from gdl import language
from gdl.sequences import encode_prompt, sample_tokens

train_arrays = language.train_arrays
token_log_likelihood = language.token_log_likelihood

# A one-word context attends to itself only: a softmax over one position, which keras flags as a likely bug.
warnings.filterwarnings("ignore", message="You are using a softmax over axis -1 of a tensor of shape .*size 1")


class CausalSelfAttention(layers.Layer):
    """Multi-head self-attention where position t sees positions <= t only."""

    def __init__(self, heads: int, key_dim: int, dropout: float = 0.0, seed: int | None = None, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.key_dim = heads, key_dim
        self.dropout = layers.Dropout(dropout, seed=seed)

    def build(self, input_shape):
        self.qkv = layers.Dense(3 * self.heads * self.key_dim, name="qkv")
        self.qkv.build(input_shape)
        self.out = layers.Dense(input_shape[-1], name="out")
        self.out.build(input_shape[:-1] + (self.heads * self.key_dim,))

    def _split(self, x):
        """(b, t, d) -> q, k, v, each (b, heads, t, key_dim)."""
        b, t = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self.qkv(x), (b, t, 3, self.heads, self.key_dim))
        qkv = ops.transpose(qkv, (2, 0, 3, 1, 4))
        return qkv[0], qkv[1], qkv[2]

    def _attend(self, q, k, v, mask, training=False):
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / np.sqrt(self.key_dim).astype("float32")
        weights = ops.softmax(ops.where(mask, scores, -1e9), axis=-1)
        y = ops.matmul(self.dropout(weights, training=training), v)  # (b, heads, t, key_dim)
        b, t = ops.shape(y)[0], ops.shape(y)[2]
        y = ops.reshape(ops.transpose(y, (0, 2, 1, 3)), (b, t, self.heads * self.key_dim))
        return self.out(y), weights

    def call(self, x, training=False, return_attention=False):
        q, k, v = self._split(x)
        t = ops.shape(x)[1]
        causal = ops.arange(t)[:, None] >= ops.arange(t)[None, :]
        y, weights = self._attend(q, k, v, causal[None, None], training)
        return (y, weights) if return_attention else y

    def keys_values(self, x):
        _, k, v = self._split(x)
        return k, v

    def step(self, x, cache_k, cache_v, index):
        """One new position `index` (x: (b, 1, d)) against caches (b, heads, T, key_dim) holding positions
        < index: -> (output (b, 1, d), updated caches)."""
        q, k, v = self._split(x)
        positions = ops.arange(ops.shape(cache_k)[2])
        slot = ops.cast(positions == index, k.dtype)[None, None, :, None]  # the cache is 0 from `index` on
        cache_k, cache_v = cache_k + slot * k, cache_v + slot * v
        visible = positions <= index
        y, _ = self._attend(q, cache_k, cache_v, visible[None, None, None, :])
        return y, cache_k, cache_v


class TransformerBlock(layers.Layer):
    """The book's block: attention and feed-forward, each followed by dropout, a residual and layer norm."""

    def __init__(self, heads, key_dim, feed_forward_dim, dropout, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.attention = CausalSelfAttention(heads, key_dim, dropout, seed=seed)
        self.feed_forward_dim, self.rate, self.seed = feed_forward_dim, dropout, seed

    def build(self, input_shape):
        d = input_shape[-1]
        self.attention.build(input_shape)
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.ff1, self.ff2 = layers.Dense(self.feed_forward_dim, activation="relu"), layers.Dense(d)
        self.ff1.build(input_shape)
        self.ff2.build(input_shape[:-1] + (self.feed_forward_dim,))
        self.drop1, self.drop2 = layers.Dropout(self.rate, seed=self.seed), layers.Dropout(self.rate, seed=self.seed)

    def _finish(self, x, attended, training=False):
        x = self.norm1(x + self.drop1(attended, training=training))
        return self.norm2(x + self.drop2(self.ff2(self.ff1(x)), training=training))

    def call(self, x, training=False, return_attention=False):
        attended, weights = self.attention(x, training=training, return_attention=True)
        y = self._finish(x, attended, training)
        return (y, weights) if return_attention else y

    def step(self, x, cache_k, cache_v, index):
        attended, cache_k, cache_v = self.attention.step(x, cache_k, cache_v, index)
        return self._finish(x, attended), cache_k, cache_v


class GPT(keras.Model):
    def __init__(self, vocab_size, seq_len, embedding_dim, heads, key_dim, feed_forward_dim, blocks, dropout,
                 seed=None, **kwargs):
        super().__init__(**kwargs)
        self.seq_len = seq_len
        self.token_embedding = layers.Embedding(vocab_size, embedding_dim)
        self.position_embedding = layers.Embedding(seq_len, embedding_dim)  # learned, as in the book
        self.blocks = [TransformerBlock(heads, key_dim, feed_forward_dim, dropout, seed=seed) for _ in range(blocks)]
        self.head = layers.Dense(vocab_size)

    def embed(self, tokens, start=0):
        positions = ops.arange(ops.shape(tokens)[1]) + start
        return self.token_embedding(tokens) + self.position_embedding(positions)[None]

    def call(self, tokens, training=False):
        x = self.embed(tokens)
        for block in self.blocks:
            x = block(x, training=training)
        return self.head(x)

    def attention_maps(self, tokens):
        """Every block's attention weights for `tokens` (b, t): a list of (b, heads, t, t) arrays."""
        x, maps = self.embed(tokens), []
        for block in self.blocks:
            x, weights = block(x, return_attention=True)
            maps.append(np.asarray(weights))
        return maps

    # ---- generation with a key/value cache ----
    def prefill(self, tokens):
        """Run a context (b, t <= seq_len) once: (logits of its last position, caches (b, heads, seq_len, k)
        per block, positions < t filled)."""
        x, caches = self.embed(tokens), []
        t = ops.shape(tokens)[1]
        for block in self.blocks:
            k, v = block.attention.keys_values(x)
            pad = [[0, 0], [0, 0], [0, self.seq_len - t], [0, 0]]
            caches.append((ops.pad(k, pad), ops.pad(v, pad)))
            x = block(x)
        return self.head(x)[:, -1], caches

    def step(self, token, index, caches):
        """The next position: token (b, 1) at position `index` -> (logits (b, V), updated caches)."""
        x, new = self.embed(token, start=index), []
        for block, (k, v) in zip(self.blocks, caches):
            x, k, v = block.step(x, k, v, index)
            new.append((k, v))
        return self.head(x)[:, 0], new


def build(cfg, data: dict, seed: int) -> GPT:
    model = GPT(len(data["vocab"]), cfg.seq_len, cfg.embedding_dim, cfg.heads, cfg.key_dim, cfg.feed_forward_dim,
                cfg.blocks, cfg.dropout, seed=seed, name="gpt")
    model(np.zeros((1, cfg.seq_len), np.int32))  # create the weights
    return language.compile_model(model, cfg)


# ---------------------------------------------------------------- generation ---------------------------------
def next_log_probs_naive(model: GPT):
    """context (b, t) -> log p(next) (b, V), recomputing the last seq_len tokens for every token drawn."""
    forward = tf.function(lambda x: model(x, training=False), reduce_retracing=True)

    def step(context):
        return language.log_softmax(np.asarray(forward(context[:, -model.seq_len:])[:, -1]))
    return step


class CachedSampler:
    """context (b, t) -> log p(next) (b, V), computing one new position per call against cached keys and
    values. Positions are absolute (learned position embeddings), so when the context fills the window the
    cache restarts from the last half of it (one prefill per seq_len/2 tokens, instead of one per token)."""

    def __init__(self, model: GPT):
        self.model = model
        self.prefill = tf.function(model.prefill, reduce_retracing=True)
        self.step = tf.function(model.step, reduce_retracing=True)
        self.caches, self.last, self.start = None, None, 0  # the context the cache holds, from `start`

    def __call__(self, context: np.ndarray) -> np.ndarray:
        t, window = context.shape[1], self.model.seq_len
        extends = self.last is not None and self.last.shape == (len(context), t - 1) and \
            np.array_equal(self.last, context[:, :-1])
        if self.caches is not None and extends and t - self.start <= window:
            logits, self.caches = self.step(context[:, -1:], tf.constant(t - 1 - self.start), self.caches)
        else:  # first call, or the window is full: re-read the last half of the context
            self.start = max(0, t - window // 2) if t > window else 0
            logits, self.caches = self.prefill(context[:, self.start:])
        self.last = context
        return language.log_softmax(np.asarray(logits))


def next_log_probs(model: GPT):
    return CachedSampler(model)


def sample(model: GPT, n: int, seed: int) -> np.ndarray:
    return language.sample(next_log_probs(model), n, model.cfg, seed)


def sample_outputs(model: GPT, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    del n  # a few continuations per prompt and temperature
    from gdl.data.text import standardise

    log_probs = next_log_probs(model)  # one sampler: a context it has not seen starts a new cache
    out = language.sample_outputs(log_probs, data, model.cfg, seed)
    # Attention maps: each attention prompt continued greedily-ish (temperature 0.2) to a short sentence.
    rows = []
    for i, prompt in enumerate(model.cfg.attention_prompts):
        ids = np.array([encode_prompt(standardise(prompt), data["vocab"])], np.int32)
        rows.append(sample_tokens(log_probs, ids, 12, 0.2, seed + i)[0][: model.seq_len])
    width = max(len(r) for r in rows)
    tokens = np.stack([np.pad(r, (0, width - len(r))) for r in rows]).astype(np.int32)
    maps = np.stack([np.asarray(model.attention_maps(tokens[i:i + 1])[-1])[0] for i in range(len(tokens))])
    out.update(attention_tokens=tokens, attention=maps.astype(np.float32))  # (prompts, heads, t, t), last block
    return out
