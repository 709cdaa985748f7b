"""MuseGAN's objective metrics on hand-made piano rolls, and its baseline (the family contract is in
tests/test_families.py)."""

import numpy as np

from gdl.families.musegan import metrics

LOWEST = 24  # pitch index 0 = MIDI 24 (a C)


def roll(n=1):
    return np.zeros((n, 2, 16, 84, 4), np.uint8)


def test_an_empty_roll_has_only_empty_bars():
    stats = metrics.statistics(roll(), LOWEST)
    assert stats["eb"] == 1.0 and np.isnan(stats["upc"]) and np.isnan(stats["td"])


def test_a_c_major_scale_uses_seven_pitch_classes_and_its_eighths_qualify():
    r = roll()
    scale = [0, 2, 4, 5, 7, 9, 11, 12]  # C D E F G A B C, an eighth (2 steps) each, soprano, first bar
    for i, step in enumerate(scale):
        r[0, 0, 2 * i:2 * i + 2, 36 + step, 0] = 1
    values = metrics.per_piece(r, LOWEST)
    stats = metrics.statistics(r, LOWEST)
    assert stats["upc"] == 7.0  # the only non-empty (bar, track)
    assert stats["eb"] == 7 / 8  # 8 (bar, track) pairs, one with notes
    assert values["notes"][0] == 8 and stats["qn"] == 1.0
    r[0, 0, 0, 36, 0] = 0  # the first note now lasts one sixteenth: 7 of 8 qualify
    assert metrics.statistics(r, LOWEST)["qn"] == 7 / 8


def test_a_held_note_across_the_bar_line_is_one_note():
    r = roll()
    r[0, :, :, 40, 1] = 1  # alto holds one pitch for both bars
    assert list(metrics.note_lengths(r)[0]) == [32]


def test_identical_voices_are_at_tonal_distance_zero_and_a_tritone_apart_is_not():
    r = roll()
    r[0, :, :, 36, 0] = 1
    r[0, :, :, 36, 1] = 1
    assert metrics.statistics(r, LOWEST)["td"] == 0.0
    r[0, :, :, 36, 1] = 0
    r[0, :, :, 42, 1] = 1  # F# against C
    assert metrics.statistics(r, LOWEST)["td"] > 0.5


def test_the_baseline_has_the_datas_density_and_the_data_scores_zero_gap():
    rng = np.random.default_rng(0)
    data = (rng.random((200, 2, 16, 84, 4)) < np.linspace(0, 0.05, 84)[:, None]).astype(np.uint8)
    base = metrics.density_baseline(data, 400, seed=1)
    np.testing.assert_allclose(base.mean(axis=(0, 1, 2)), data.mean(axis=(0, 1, 2)), atol=0.01)
    s_data, s_base = metrics.statistics(data, LOWEST), metrics.statistics(base, LOWEST)
    assert metrics.stat_gap(s_data, s_data, s_base) == 0.0 and 0 < metrics.stat_gap(s_base, s_data, s_base) <= 1.0
    with_std = metrics.statistics(data, LOWEST, bootstrap=20, seed=0)
    assert all(with_std[f"{k}_std"] >= 0 for k in metrics.STATS)


def test_binarise_keeps_the_likeliest_pitch_per_voice_and_step_and_silences_the_bars_that_rest():
    from gdl.families.musegan.model import binarise

    out = np.full((1, 2, 16, 84, 4), -1.0, np.float32)
    out[0, :, :, 10, :], out[0, :, :, 11, 0] = -0.5, 0.9  # the soprano has two candidates: the likelier wins
    plays = np.ones((1, 2, 4))
    plays[0, 1, 2] = 0  # the tenor rests in bar 2
    rolls = binarise(out, plays)
    assert rolls[0, :, :, 11, 0].all() and not rolls[0, :, :, 10, 0].any()
    assert rolls[0, 0, :, 10, 2].all() and not rolls[0, 1, :, :, 2].any()
    assert (rolls.sum(axis=3) == np.array([1, 1, 1, 1])[None, None, None] * plays[:, :, None]).all()


def test_the_plays_gradient_is_the_rest_critics_score_with_the_voice_playing_minus_resting():
    """_plays_loss's gradient with respect to each (piece, bar, voice)'s probability of playing must be
    rest_critic(that voice plays in that bar) - rest_critic(it rests), the other coins as drawn."""
    import keras
    import tensorflow as tf
    from gdl.families import get
    from gdl.families.musegan import model

    cfg = get("musegan").config("chorales", "smoke")
    rng = np.random.default_rng(0)
    keras.utils.set_random_seed(0)
    gan = model.build(cfg, {"train_pianorolls": roll(8), "pianoroll_lowest_pitch": np.array(LOWEST)}, seed=0)
    plays = rng.integers(0, 2, (3, 2, 4)).astype(np.float32)
    p = tf.Variable(rng.uniform(0.1, 0.9, (3, 2, 4)), dtype=tf.float32)
    with tf.GradientTape() as tape:
        loss = gan._plays_loss(p, tf.constant(plays))
    grad = tape.gradient(loss, p).numpy()
    expected = np.zeros((3, 2, 4))
    for bar in range(2):
        for voice in range(4):
            for value, sign in ((1.0, 1.0), (0.0, -1.0)):
                pattern = plays.copy()
                pattern[:, bar, voice] = value
                expected[:, bar, voice] += sign * gan.rest_critic(pattern)[:, 0].numpy()
    assert np.abs(expected).min() > 1e-4  # the untrained critic tells the patterns apart
    np.testing.assert_allclose(-3 * grad, expected, rtol=1e-4, atol=1e-6)  # the loss is minus the batch mean
