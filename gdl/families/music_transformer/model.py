"""Music transformer (chapter 11): the book's two-stream causal transformer, trained on the chorales' voices.

Each event of a voice is a pair of tokens, its pitch (or "rest") and its duration (data/tokens/chorales.npz,
layout in gdl/sequences.py). The model reads both streams and predicts both of the next event:

    note ids     -> Embedding + sine positions --\
                                                  concat -> [causal attention -> add & norm
    duration ids -> Embedding + sine positions --/          -> feed-forward -> add & norm] x blocks
                                                  -> Dense(notes)      (the next note)
                                                  -> Dense(durations)  (the next duration)

As in the book (which follows keras-io's GPT), the block is keras' MultiHeadAttention with a causal mask,
dropout, a residual and layer normalisation, then a two-layer feed-forward network. The two heads read the
same state and are trained with the sum of their cross-entropies, so the next note and the next duration are
predicted independently given the past, and sampled that way. The heads give logits (the book: softmax
layers); the loss applies the softmax, which is the same model and is numerically safer.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs,
token_log_likelihood, write_midi; plus `attention_weights` for the report.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from gdl.sequences import OOV, PAD, stream_windows

STREAMS = ("note", "duration")
START = "START"
START_DURATION = "0.0"  # the START event's duration token: no real event lasts 0 quarters
SCORE_BATCH = 256


# ---------------------------------------------------------------- the network -----------------------------
class SinePositionEncoding(layers.Layer):
    """The transformer paper's fixed positions: feature 2i of position p is sin(p / 10000^(2i/d)), feature
    2i+1 its cosine (keras_nlp's SinePositionEncoding, which the book uses). Fixed, not learned, so windows
    slid along a long piece see the same encoding of "k events ago" anywhere."""

    def call(self, x):
        length, dim = ops.shape(x)[1], x.shape[-1]
        positions = ops.cast(ops.arange(length), "float32")[:, None]
        index = np.arange(dim)
        rates = (1.0 / 10000.0 ** (2 * (index // 2) / dim)).astype("float32")
        angles = positions * rates[None, :]
        return ops.where(index % 2 == 0, ops.sin(angles), ops.cos(angles))[None]  # (1, t, d)


class TokenAndPositionEmbedding(layers.Layer):
    def __init__(self, vocab_size: int, dim: int, **kwargs):
        super().__init__(**kwargs)
        self.token_embedding = layers.Embedding(vocab_size, dim, embeddings_initializer="he_uniform")
        self.positions = SinePositionEncoding()

    def call(self, ids):
        x = self.token_embedding(ids)
        return x + self.positions(x)


class TransformerBlock(layers.Layer):
    """Causal self-attention and a feed-forward network, each followed by dropout, a residual and layer
    norm (post-norm, as in the book). Returns the new state and the attention weights (b, heads, t, t)."""

    def __init__(self, heads, key_dim, feed_forward_dim, dropout, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.heads, self.key_dim, self.feed_forward_dim, self.rate, self.seed = heads, key_dim, feed_forward_dim, dropout, seed

    def build(self, input_shape):
        d = input_shape[-1]
        self.attention = layers.MultiHeadAttention(self.heads, self.key_dim, output_shape=d)
        self.attention.build(input_shape, input_shape)
        self.norm1, self.norm2 = layers.LayerNormalization(epsilon=1e-6), layers.LayerNormalization(epsilon=1e-6)
        self.norm1.build(input_shape)
        self.norm2.build(input_shape)
        self.ff1, self.ff2 = layers.Dense(self.feed_forward_dim, activation="relu"), layers.Dense(d)
        self.ff1.build(input_shape)
        self.ff2.build(input_shape[:-1] + (self.feed_forward_dim,))
        self.drop1 = layers.Dropout(self.rate, seed=self.seed)
        self.drop2 = layers.Dropout(self.rate, seed=None if self.seed is None else self.seed + 1)

    def call(self, x, training=False):
        attended, weights = self.attention(x, x, use_causal_mask=True, return_attention_scores=True,
                                           training=training)
        x = self.norm1(x + self.drop1(attended, training=training))
        x = self.norm2(x + self.drop2(self.ff2(self.ff1(x)), training=training))
        return x, weights


def build_network(cfg, note_vocab_size: int, duration_vocab_size: int, seed: int | None = None) -> keras.Model:
    notes = keras.Input((None,), dtype="int32", name="notes")
    durations = keras.Input((None,), dtype="int32", name="durations")
    x = layers.Concatenate()([TokenAndPositionEmbedding(note_vocab_size, cfg.note_embedding_dim)(notes),
                              TokenAndPositionEmbedding(duration_vocab_size, cfg.duration_embedding_dim)(durations)])
    for i in range(cfg.blocks):
        x, _ = TransformerBlock(cfg.heads, cfg.key_dim, cfg.feed_forward_dim, cfg.dropout,
                                seed=None if seed is None else seed + 2 * i, name=f"block_{i}")(x)
    note_logits = layers.Dense(note_vocab_size, name="note")(x)
    duration_logits = layers.Dense(duration_vocab_size, name="duration")(x)
    return keras.Model([notes, durations], [note_logits, duration_logits], name="music_transformer")


def token_id(vocab, token: str, name: str) -> int:
    found = np.flatnonzero(np.asarray(vocab).astype(str) == token)
    if len(found) != 1:
        raise ValueError(f"{name}: no {token!r} token (a music transformer's voices start with it)")
    return int(found[0])


def build(cfg, data: dict, seed: int) -> keras.Model:
    note_vocab, duration_vocab = data["note_vocab"], data["duration_vocab"]
    model = build_network(cfg, len(note_vocab), len(duration_vocab), seed)
    # ignore_class: pad targets (after the end of a voice) teach nothing and are not scored. The loss of each
    # head is its mean over the real targets, and the model's loss their sum (the book's two losses).
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=PAD)
    model.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate), loss=[loss, loss])
    model.cfg = cfg
    # What generation needs from the vocabularies: where pieces start, and the ids it must never draw.
    model.start_ids = (token_id(note_vocab, START, "note_vocab"), token_id(duration_vocab, START_DURATION, "duration_vocab"))
    return model


# ---------------------------------------------------------------- training and scoring -------------------
def split_windows(data: dict, split: str, seq_len: int) -> tuple[np.ndarray, np.ndarray]:
    """The (n, seq_len + 1) windows of both streams of a split: the same cut, event for event."""
    notes, durations = stream_windows(data, split, STREAMS, seq_len)
    return notes, durations


def train_arrays(data: dict, cfg):
    """x = (notes, durations) of each window but its last event, y = the same streams one event later."""
    def inputs_targets(split):
        notes, durations = split_windows(data, split, cfg.seq_len)
        return (notes[:, :-1], durations[:, :-1]), (notes[:, 1:], durations[:, 1:])

    x, y = inputs_targets("train")
    return x, y, inputs_targets("val")


def log_softmax(logits) -> np.ndarray:
    logits = np.asarray(logits, np.float64)
    logits = logits - logits.max(axis=-1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))


def forward_fn(model: keras.Model):
    """(notes, durations) -> (note logits, duration logits), traced once for any batch and length."""
    spec = tf.TensorSpec((None, None), tf.int32)
    return tf.function(lambda n, d: model([n, d], training=False), input_signature=[spec, spec])


def token_log_likelihood(model: keras.Model, data: dict, split: str = "test") -> dict:
    """{"note": (windows, logp), "duration": (windows, logp)}: logp[i, t] = log p(w[i, t+1] | events <= t)
    in nats (float64), for the same windows of both streams; pad targets are the caller's to ignore."""
    notes, durations = split_windows(data, split, model.cfg.seq_len)
    forward = forward_fn(model)
    out = {s: np.zeros((len(notes), notes.shape[1] - 1), np.float64) for s in STREAMS}
    for start in range(0, len(notes), SCORE_BATCH):
        n, d = notes[start:start + SCORE_BATCH], durations[start:start + SCORE_BATCH]
        logits = forward(tf.constant(n[:, :-1]), tf.constant(d[:, :-1]))
        for stream, w, lg in zip(STREAMS, (n, d), logits):
            lp = log_softmax(lg)
            out[stream][start:start + SCORE_BATCH] = np.take_along_axis(lp, w[:, 1:, None].astype(np.int64), -1)[..., 0]
    return {"note": (notes, out["note"]), "duration": (durations, out["duration"])}


# ---------------------------------------------------------------- generation ------------------------------
def draw(rng: np.random.Generator, logits: np.ndarray, temperature: float, banned) -> np.ndarray:
    """One id per row from softmax(logits / temperature), never a banned id (inverse CDF, one uniform per row)."""
    z = np.asarray(logits, np.float64) / temperature
    z[:, list(banned)] = -np.inf
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    return (p.cumsum(axis=1) > rng.random((len(p), 1))).argmax(axis=1).astype(np.int32)


def generate(model: keras.Model, k: int, seed: int, length: int | None = None,
             temperature: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """k pieces: (notes, durations), each int32 (k, 1 + length), the START event then `length` drawn events.

    Each event is drawn from the model's next-note and next-duration distributions given the last seq_len
    events (the window slides along a piece longer than the model was trained on; sine positions make a
    slid window look like any training window). Pad, [UNK] and the START event are never drawn (the book
    re-draws [UNK] and stops at a new START; here a piece has a fixed length). Seeded: same call, same pieces."""
    cfg = model.cfg
    length = cfg.sample_length if length is None else length
    temperature = cfg.sample_temperature if temperature is None else temperature
    start_note, start_duration = model.start_ids
    forward = forward_fn(model)
    rng = np.random.default_rng(seed)
    notes = np.full((k, 1), start_note, np.int32)
    durations = np.full((k, 1), start_duration, np.int32)
    for _ in range(length):
        note_logits, duration_logits = forward(tf.constant(notes[:, -cfg.seq_len:]), tf.constant(durations[:, -cfg.seq_len:]))
        # One generator, the notes' draw first: the pieces depend on the seed only.
        next_note = draw(rng, np.asarray(note_logits)[:, -1], temperature, (PAD, OOV, start_note))
        next_duration = draw(rng, np.asarray(duration_logits)[:, -1], temperature, (PAD, OOV, start_duration))
        notes = np.concatenate([notes, next_note[:, None]], axis=1)
        durations = np.concatenate([durations, next_duration[:, None]], axis=1)
    return notes, durations


def sample(model: keras.Model, n: int, seed: int) -> np.ndarray:
    """n generated pieces' note ids, int32 (n, 1 + sample_length) (their durations: `generate`)."""
    return generate(model, n, seed)[0]


def attention_weights(model: keras.Model, notes: np.ndarray, durations: np.ndarray) -> np.ndarray:
    """The last block's attention over one piece as it was generated: (heads, L, L) float32, where row t is
    what the event at t attended to (columns: the events of the piece) when the event after it was drawn.
    Rows of the first seq_len events come from one causal pass over them; a later row from the window of
    seq_len events ending at it (its last query), so columns before that window are 0, as they were then."""
    cfg, L = model.cfg, len(notes)
    last = model.get_layer(f"block_{cfg.blocks - 1}")
    attention_model = keras.Model(model.inputs, last.output[1])
    w = min(L, cfg.seq_len)
    out = np.zeros((cfg.heads, L, L), np.float32)
    out[:, :w, :w] = np.asarray(attention_model([notes[None, :w], durations[None, :w]]))[0]
    if L > w:
        starts = np.arange(1, L - w + 1)
        idx = starts[:, None] + np.arange(w)[None, :]  # window ending at event s + w - 1
        maps = np.asarray(attention_model([notes[idx], durations[idx]]))  # (windows, heads, w, w)
        for start, m in zip(starts, maps[:, :, -1, :]):  # (heads, w): the window's last query
            out[:, start + w - 1, start:start + w] = m
    return out


def sample_outputs(model: keras.Model, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    """A few pieces (min(n, num_pieces): each event is a forward pass): `samples` (note ids) and
    `sample_durations`, int32 (k, 1 + sample_length), the vocabularies to decode them (write_midi, the
    report), and the last block's attention over the first piece (heads, L, L)."""
    notes, durations = generate(model, min(n, model.cfg.num_pieces), seed)
    return {"samples": notes, "sample_durations": durations,
            "note_vocab": np.asarray(data["note_vocab"]).astype(str),
            "duration_vocab": np.asarray(data["duration_vocab"]).astype(str),
            "attention": attention_weights(model, notes[0], durations[0])}


def decode(outputs: dict, i: int) -> list[tuple[str, float]]:
    """Piece i of sample_outputs' arrays as (note token, quarter length) events (gdl.music.decode_events)."""
    from gdl.music import decode_events

    return decode_events(outputs["samples"][i], outputs["sample_durations"][i], outputs["note_vocab"],
                         outputs["duration_vocab"])


def write_midi(outputs: dict, folder: Path) -> list[Path]:
    """One MIDI file per generated piece: folder/piece_<i>.mid."""
    from gdl.music import events_to_midi

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return [events_to_midi(decode(outputs, i), folder / f"piece_{i:02d}.mid") for i in range(len(outputs["samples"]))]
