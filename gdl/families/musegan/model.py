"""MuseGAN (chapter 11; Dong et al. 2018): four voices of two bars, generated together by a WGAN-GP.

The generator draws four kinds of noise, as the book does:

* chords (one vector): the piece's harmony, unrolled over the bars by a temporal network;
* style (one vector): shared by every bar and every track, unchanged;
* melody (one vector per track): unrolled over the bars by that track's temporal network;
* groove (one vector per track): the track's character, the same in every bar.

For each bar and track, a bar generator (one per track) turns [chords(bar), style, melody(track, bar),
groove(track)] into that track's (steps x pitches) bar with transposed convolutions, ending in a softmax
over the pitches at every step (a voice sings one note at a time; with the book's tanh the pitches
competed only through the critic, and the voices used too few pitch classes per bar: UPC 2.85 against the
data's 3.27, with the softmax 3.22 over three seeds), scaled to the data's [-1, 1].

A voice that rests for a whole bar is what a smooth generator does not learn: the data has such bars
(1.8% of (bar, voice) pairs, mostly several voices at once), and this generator without them left
none. So each bar generator also gives the probability that its voice plays in the bar at all, and a
coin drawn from it either keeps the bar or replaces it with silence. The coins are judged by a critic of
their own, which sees only which (bar, voice) pairs rest, in the data and in the samples: the roll's critic
cannot judge a rest fairly, for as long as the music a rest replaces is told apart from the data's, it
prefers the rest (early on) or the music (later), and the share of rests followed its swings (24% of
bars, then none, in one run). A coin has no gradient; its probability gets the exact one,
E[rest critic | plays] - E[rest critic | rests], from scoring the pattern once more with each coin flipped
(`MuseGAN._plays_loss`).

The critic reads the whole (bars, steps, pitches, tracks) roll with 3-D convolutions, first across bars,
then across pitches (an octave, then the 7 octaves), then across time; it is kept 1-Lipschitz by a gradient
penalty. Samples come from a moving average of the generator's weights, and are binarised the way the
chorales are written: in each track and step, the most likely pitch is the note, unless the coin silenced
the track's bar.

The family interface (gdl/families/__init__.py): build, train_arrays, sample, sample_outputs, extra_metrics,
write_midi.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
from keras import layers, ops

from gdl.families.musegan import metrics

NOISES = ("chords", "style", "melody", "groove")


def temporal_network(z_dim: int, bars: int, name: str) -> keras.Model:
    """z (z_dim,) -> (bars, z_dim): one noise vector unrolled into one vector per bar."""
    z = keras.Input((z_dim,))
    x = layers.Dense(bars * z_dim)(z)
    x = layers.BatchNormalization(momentum=0.9)(x)
    x = layers.ReLU()(x)
    return keras.Model(z, layers.Reshape((bars, z_dim))(x), name=name)


def unfold(x, factor: int, width: int, shape: tuple) -> keras.KerasTensor:
    """A transposed convolution whose kernel equals its stride (the book's bar generator and critic use only
    these), written as what it is: a Dense layer from each position's features to `factor` positions'
    features, then a reshape to `shape` (time or pitch grows `factor`-fold). The same function and number
    of weights as Conv2DTranspose, 3x faster on a CPU, where a handful of tiny convolutions cost more in
    overhead than in arithmetic."""
    return layers.Reshape(shape)(layers.Dense(factor * width)(x))


def norm_relu(x):
    return layers.ReLU()(layers.BatchNormalization(momentum=0.9)(x))


def bar_generator(cfg, steps: int, pitches: int, name: str) -> keras.Model:
    """[chords, style, melody, groove] (4 z_dim,) -> one track's bar (steps, pitches, 1) in [-1, 1], and the
    logit of the probability that the track plays in this bar at all (else the bar is a whole-bar rest).
    Time doubles per layer from 1 to `steps`; pitch then goes 1 -> 7 octaves -> 12 semitones each."""
    doublings, octaves, w = int(np.log2(steps)), pitches // 12, cfg.generator_width
    if 2 ** doublings != steps or pitches % 12:
        raise ValueError(f"bar generator: steps must be a power of 2 and pitches a multiple of 12, got {steps}, {pitches}")
    z = keras.Input((4 * cfg.z_dim,))
    plays = layers.Dense(1, bias_initializer=keras.initializers.Constant(3.0), name="plays")(z)  # logit: 95% plays
    x = layers.Reshape((1, w))(norm_relu(layers.Dense(w)(z)))  # (time 1, w)
    for i in range(1, doublings + 1):
        x = norm_relu(unfold(x, 2, w, (2 ** i, w)))  # (time 2^i, w)
    x = norm_relu(unfold(x, octaves, w, (steps * octaves, w)))  # (time x octave, w)
    x = layers.Reshape((steps, pitches))(layers.Dense(12)(x))  # (time x octave, semitone) -> (time, pitch)
    x = layers.Softmax(axis=-1)(x) * 2.0 - 1.0  # one note per step: 1 at a sure pitch, -1 elsewhere, like the data
    return keras.Model(z, [layers.Reshape((steps, pitches, 1))(x), plays], name=name)


def build_generator(cfg, bars: int, steps: int, pitches: int, tracks: int) -> keras.Model:
    chords = keras.Input((cfg.z_dim,), name="chords")
    style = keras.Input((cfg.z_dim,), name="style")
    melody = keras.Input((tracks, cfg.z_dim), name="melody")
    groove = keras.Input((tracks, cfg.z_dim), name="groove")
    chords_over_time = temporal_network(cfg.z_dim, bars, "chords_temporal")(chords)  # (b, bars, z)
    melody_over_time = [temporal_network(cfg.z_dim, bars, f"melody_temporal_{t}")(melody[:, t]) for t in range(tracks)]
    repeat = lambda z: ops.repeat(ops.expand_dims(z, 1), bars, axis=1)  # noqa: E731  (b, z) -> (b, bars, z)
    tracks_out, plays_out = [], []
    for t in range(tracks):
        z = layers.Concatenate()([chords_over_time, repeat(style), melody_over_time[t], repeat(groove[:, t])])
        # Every bar of the batch through the track's bar generator at once: (b * bars, 4z) -> (b * bars, steps,
        # pitches, 1). One call per track instead of one per bar and track (half the ops, the same weights).
        played, plays = bar_generator(cfg, steps, pitches, f"bar_generator_{t}")(ops.reshape(z, (-1, 4 * cfg.z_dim)))
        tracks_out.append(ops.reshape(played, (-1, bars, steps, pitches, 1)))
        plays_out.append(ops.reshape(plays, (-1, bars, 1)))
    out = layers.Concatenate(axis=-1)(tracks_out)  # (batch, bars, steps, pitches, tracks)
    plays = layers.Concatenate(axis=-1)(plays_out)  # (batch, bars, tracks): logits
    return keras.Model([chords, style, melody, groove], [out, plays], name="generator")


def gated(music, plays):
    """The music where a track plays (plays 1), a whole-bar rest (-1 everywhere) where it does not (0)."""
    open_ = plays[:, :, None, None, :]
    return music * open_ - (1.0 - open_)


def build_critic(cfg, bars: int, steps: int, pitches: int, tracks: int) -> keras.Model:
    """The book's critic: 3-D convolutions whose kernels equal their strides, first across the bars, then
    within each octave, across the octaves and along time, halving it until two steps are left; written as
    Dense layers on reshaped rolls (see `unfold`). Before them, one convolution along time at every pitch:
    a note's length is what fragmented output gets wrong first, and the book's critic only reaches time
    after it has pooled the pitches. No normalisation: the gradient penalty is per example."""
    w, octaves = cfg.critic_width, pitches // 12
    leaky = lambda x: layers.LeakyReLU(0.2)(x)  # noqa: E731
    roll = keras.Input((bars, steps, pitches, tracks))
    x = ops.reshape(roll, (-1, steps, pitches, tracks))  # every bar on its own
    x = layers.Concatenate()([x, leaky(layers.Conv2D(w // 2, (4, 1), padding="same")(x))])  # (steps, pitches, c)
    c = tracks + w // 2
    x = ops.reshape(x, (-1, bars, steps, pitches, c))
    x = ops.reshape(ops.transpose(x, (0, 2, 3, 1, 4)), (-1, steps, pitches, bars * c))
    x = leaky(layers.Dense(w)(x))  # across the bars: (steps, pitches, w)
    x = leaky(layers.Dense(w)(layers.Reshape((steps, octaves, 12 * w))(x)))  # within each octave
    x = leaky(layers.Dense(w)(layers.Reshape((steps, octaves * w))(x)))  # across the octaves
    rest = -ops.max(roll, axis=3)  # (bars, steps, tracks): 1 where a voice is silent, -1 where it sings
    rest = ops.reshape(ops.transpose(rest, (0, 2, 1, 3)), (-1, steps, bars * tracks))
    x = layers.Concatenate()([x, rest])
    for _ in range(int(np.log2(steps)) - 1):  # along time, two steps at a time
        x = leaky(layers.Dense(w)(layers.Reshape((-1, 2 * x.shape[-1]))(x)))
    x = leaky(layers.Dense(2 * w)(layers.Flatten()(x)))
    return keras.Model(roll, layers.Dense(1)(x), name="critic")


def build_rest_critic(bars: int, tracks: int, width: int = 32) -> keras.Model:
    """A critic of which voices rest for whole bars: (bars, tracks) in {0 rests, 1 plays} -> a score."""
    plays = keras.Input((bars, tracks))
    x = layers.Flatten()(plays)
    for _ in range(2):
        x = layers.LeakyReLU(0.2)(layers.Dense(width)(x))
    return keras.Model(plays, layers.Dense(1)(x), name="rest_critic")


class MuseGAN(keras.Model):
    def __init__(self, generator, critic, rest_critic, cfg, tracks: int, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.generator, self.critic, self.rest_critic = generator, critic, rest_critic
        self.ema, self.ema_generator = cfg.ema, keras.models.clone_model(generator)
        self.ema_generator.set_weights(generator.get_weights())
        self.z_dim, self.tracks = cfg.z_dim, tracks
        self.critic_steps, self.gp_weight = cfg.critic_steps, cfg.gp_weight
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.critic_optimizer = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.rest_critic_optimizer = keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2)
        self.trackers = [keras.metrics.Mean(name=n) for n in ("d_loss", "g_loss", "w_distance", "gradient_penalty", "plays")]

    @property
    def extra_optimizers(self):  # saved in checkpoints beside `optimizer` (gdl/training.py)
        return [self.critic_optimizer, self.rest_critic_optimizer]

    @property
    def metrics(self):
        return self.trackers

    def _noise(self, batch):
        normal = lambda *shape: keras.random.normal((batch, *shape), seed=self.seed_generator)  # noqa: E731
        return [normal(self.z_dim), normal(self.z_dim), normal(self.tracks, self.z_dim), normal(self.tracks, self.z_dim)]

    def _gradient_penalty(self, critic, real, fake):
        import tensorflow as tf

        alpha = keras.random.uniform((ops.shape(real)[0],) + (1,) * (len(real.shape) - 1), seed=self.seed_generator)
        between = real + alpha * (fake - real)
        with tf.GradientTape() as tape:
            tape.watch(between)
            score = critic(between, training=True)
        grads = tape.gradient(score, between)
        norm = ops.sqrt(ops.sum(ops.square(ops.reshape(grads, (ops.shape(grads)[0], -1))), axis=1) + 1e-12)
        return ops.mean(ops.square(norm - 1.0))

    def _critic_step(self, critic, optimizer, real, fake):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            w_distance = ops.mean(critic(real, training=True)) - ops.mean(critic(fake, training=True))
            penalty = self._gradient_penalty(critic, real, fake)
            loss = -w_distance + self.gp_weight * penalty
        optimizer.apply_gradients(zip(tape.gradient(loss, critic.trainable_weights), critic.trainable_weights))
        return loss, w_distance, penalty

    def _fake(self, batch):
        """Generated music, each (bar, track)'s probability of playing, and the coins drawn from it."""
        music, logits = self.generator(self._noise(batch), training=True)
        p = ops.sigmoid(logits)
        plays = ops.cast(keras.random.uniform(ops.shape(p), seed=self.seed_generator) < p, "float32")
        return music, p, plays

    def _plays_loss(self, p, plays):
        """The exact gradient of E[rest critic] with respect to each (bar, track)'s probability of playing,
        given the other coins: rest_critic(coin at 1) - rest_critic(coin at 0), all bars x tracks flips
        scored in one call."""
        batch, bars, tracks = ops.shape(plays)[0], plays.shape[1], plays.shape[2]
        k = bars * tracks
        eye = ops.reshape(ops.eye(k), (k, 1, bars, tracks))
        plays = plays[None]  # (1, batch, bars, tracks)
        both = ops.concatenate([ops.maximum(plays, eye), plays * (1.0 - eye)], axis=0)  # coin k at 1, then at 0
        score = ops.reshape(self.rest_critic(ops.reshape(both, (-1, bars, tracks)), training=True), (2, k, batch))
        open_minus_shut = ops.stop_gradient(score[0] - score[1])  # (k, batch)
        return -ops.mean(ops.sum(ops.transpose(ops.reshape(p, (batch, k))) * open_minus_shut, axis=0))

    def train_step(self, data):
        import tensorflow as tf

        rolls = data[0] if isinstance(data, tuple) else data
        real = ops.cast(rolls, "float32") * 2.0 - 1.0  # {0, 1} -> {-1, 1}, the generator's range
        batch = ops.shape(real)[0]
        real_plays = ops.cast(ops.max(real, axis=(2, 3)) > 0, "float32")  # (batch, bars, tracks)
        for _ in range(self.critic_steps):
            music, _, plays = self._fake(batch)
            d_loss, w_distance, penalty = self._critic_step(self.critic, self.critic_optimizer, real,
                                                            gated(music, plays))
            self._critic_step(self.rest_critic, self.rest_critic_optimizer, real_plays, plays)
        with tf.GradientTape() as tape:
            music, p, plays = self._fake(batch)
            g_loss = -ops.mean(self.critic(gated(music, plays), training=True))
            loss = g_loss + self._plays_loss(p, plays)
        grads = tape.gradient(loss, self.generator.trainable_weights)
        self.optimizer.apply_gradients(zip(grads, self.generator.trainable_weights))
        for average, current in zip(self.ema_generator.weights, self.generator.weights):
            average.assign(self.ema * average + (1.0 - self.ema) * current)
        for tracker, value in zip(self.trackers, (d_loss, g_loss, w_distance, penalty, ops.mean(p))):
            tracker.update_state(value)
        return {m.name: m.result() for m in self.trackers}


# ------------------------------------------------------------------ the family interface ---------------
def build(cfg, data: dict, seed: int) -> MuseGAN:
    bars, steps, pitches, tracks = data["train_pianorolls"].shape[1:]
    gan = MuseGAN(build_generator(cfg, bars, steps, pitches, tracks), build_critic(cfg, bars, steps, pitches, tracks),
                  build_rest_critic(bars, tracks), cfg, tracks, seed=seed)
    gan.compile(optimizer=keras.optimizers.Adam(cfg.learning_rate, beta_1=cfg.beta_1, beta_2=cfg.beta_2))
    gan.optimizer.build(gan.generator.trainable_variables)
    gan.critic_optimizer.build(gan.critic.trainable_variables)
    gan.rest_critic_optimizer.build(gan.rest_critic.trainable_variables)
    gan.built = True
    gan.cfg, gan.lowest_pitch = cfg, int(data["pianoroll_lowest_pitch"])
    return gan


def train_arrays(data: dict, cfg=None):
    """The training piano rolls; no validation set (a GAN has no held-out loss worth the name)."""
    return data["train_pianorolls"].astype(np.float32), None, None


def noises(gan: MuseGAN, n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    z, t = gan.z_dim, gan.tracks
    return [rng.standard_normal((n, z)), rng.standard_normal((n, z)), rng.standard_normal((n, t, z)),
            rng.standard_normal((n, t, z))]


def binarise(outputs: np.ndarray, plays: np.ndarray) -> np.ndarray:
    """Generator outputs (n, bars, steps, pitches, tracks) in [-1, 1] and plays (n, bars, tracks) in {0, 1}
    -> piano rolls in {0, 1}: per track and step, the most likely pitch (the chorales' voices sing one note
    at a time), in the bars where the track plays; silence in the others."""
    rolls = np.zeros(outputs.shape, np.uint8)
    np.put_along_axis(rolls, outputs.argmax(axis=3)[:, :, :, None, :], 1, axis=3)
    return rolls * plays.astype(np.uint8)[:, :, None, None, :]


def generate(gan: MuseGAN, z: list[np.ndarray], coins: np.ndarray, batch: int = 256) -> np.ndarray:
    """Piano rolls from noises z and, per (piece, bar, track), a uniform coin: the track plays in the bar
    where its coin is below the generator's probability of playing."""
    music, logits = [], []
    for i in range(0, len(z[0]), batch):
        m, logit = gan.ema_generator([a[i:i + batch].astype(np.float32) for a in z], training=False)
        music.append(np.asarray(m)), logits.append(np.asarray(logit))
    return binarise(np.concatenate(music), coins < 1.0 / (1.0 + np.exp(-np.concatenate(logits))))


def coins_for(gan: MuseGAN, n: int, seed: int) -> np.ndarray:
    """The uniform coins of n pieces (n, bars, tracks), fixed by seed (apart from the noises')."""
    bars = gan.ema_generator.outputs[1].shape[1]
    return np.random.default_rng([seed, 1]).uniform(size=(n, bars, gan.tracks))


def sample(gan: MuseGAN, n: int, seed: int) -> np.ndarray:
    return generate(gan, noises(gan, n, seed), coins_for(gan, n, seed))


def one_noise_changed(gan: MuseGAN, seed: int, variations: int = 4) -> np.ndarray:
    """(4 noises, variations, bars, steps, pitches, tracks): one piece, redrawing one noise at a time (the
    book's figure: chords change the harmony of every voice, a track's melody only that voice, ...)."""
    base = noises(gan, 1, seed)
    rng = np.random.default_rng(seed + 1)
    out = []
    for k in range(len(NOISES)):
        z = [np.repeat(a, variations, axis=0) for a in base]
        if NOISES[k] in ("melody", "groove"):  # redraw it for the first track only, the others stay
            z[k][:, 0] = rng.standard_normal((variations, gan.z_dim))
        else:
            z[k] = rng.standard_normal((variations, gan.z_dim))
        z[k][0] = base[k][0]  # the first of each row is the original piece
        out.append(generate(gan, z, np.repeat(coins_for(gan, 1, seed), variations, axis=0)))
    return np.stack(out)


def sample_outputs(gan: MuseGAN, data: dict, n: int, seed: int) -> dict[str, np.ndarray]:
    return {"samples": sample(gan, n, seed), "lowest_pitch": np.array([gan.lowest_pitch]),  # MIDI of pitch 0
            "tracks": np.asarray(data["pianoroll_tracks"]), "one_noise_changed": one_noise_changed(gan, seed)}


def extra_metrics(gan: MuseGAN, data: dict, cfg, seed: int, ruler, outputs: dict, evaluation) -> dict:
    """EB, UPC, QN, TD of the samples, of the training data and of random notes at the data's density,
    each with a bootstrap std over pieces; `stat_gap` sums up how close the samples come to the data."""
    del ruler
    lowest, train, samples = gan.lowest_pitch, data["train_pianorolls"], outputs["samples"]
    boot = evaluation.bootstrap
    model = metrics.statistics(samples, lowest, boot, seed)
    reference = metrics.statistics(train, lowest, boot, seed)
    baseline = metrics.statistics(metrics.density_baseline(train, len(samples), seed), lowest, boot, seed)
    model["stat_gap"] = metrics.stat_gap(model, reference, baseline)
    baseline["stat_gap"] = metrics.stat_gap(baseline, reference, baseline)
    reference["stat_gap"] = 0.0
    closer = "closer to the training data's is better"
    return {"figures": {"stat_gap": model.pop("stat_gap"), **model}, "baseline": baseline, "data": reference,
            "descriptions": {
                "stat_gap": "mean over EB, UPC, QN and TD of |model - data| / (|baseline - data| + 0.1 |data|): 0 is "
                            "the training data's statistics, about 1 as far off as random notes (lower is better)",
                "eb": f"empty bars: share of (bar, track) with no note ({closer})",
                "upc": f"used pitch classes per non-empty bar and track ({closer})",
                "qn": f"qualified notes: share of notes lasting >= {metrics.QUALIFIED_STEPS} sixteenths ({closer})",
                "td": f"tonal distance between the tonal centroids of two tracks in a bar ({closer})"},
            "meta": {"baseline": "independent random notes with the training data's density per pitch and track",
                     "training_data": f"the {len(train):,} training piano rolls", "num_samples": int(len(samples))}}


def write_midi(outputs: dict, folder: Path) -> list[Path]:
    from gdl.music import pianoroll_to_midi

    lowest = int(np.ravel(outputs["lowest_pitch"])[0])
    return [pianoroll_to_midi(roll, Path(folder) / f"musegan_{i:02d}.mid", lowest)
            for i, roll in enumerate(outputs["samples"][:8])]
