"""The diffusion family's own behaviour: the schedule's ends, the sampler's determinism, the guidance
convention, the EMA network surviving a save/load, the FLOP count, and its params' validation."""

import math

import numpy as np
import pytest
from pydantic import ValidationError

from gdl import families
from tests.test_families import synthetic_data


@pytest.fixture(scope="module")
def trained():
    from gdl.families.ddim import model as ddim

    cfg = families.get("ddim").config(dataset="synthetic", profile="smoke")
    data = synthetic_data("images")
    model = ddim.build(cfg, data, seed=0)
    x, y, _ = ddim.train_arrays(data, cfg)
    model.fit(x, y, epochs=1, batch_size=16, verbose=0)
    return ddim, cfg, data, model


def test_offset_cosine_schedule_ends_and_unit_variance():
    from gdl.families.ddim.model import diffusion_schedule

    t = np.linspace(0.0, 1.0, 11)
    noise, signal = (np.asarray(r) for r in diffusion_schedule(t, 0.02, 0.95))
    assert signal[0] == pytest.approx(0.95) and signal[-1] == pytest.approx(0.02)
    assert noise[0] == pytest.approx(math.sqrt(1 - 0.95 ** 2))
    np.testing.assert_allclose(signal ** 2 + noise ** 2, 1.0, rtol=1e-6)  # the noisy image keeps unit variance
    assert np.all(np.diff(signal) < 0) and np.all(np.diff(noise) > 0)


def test_ddim_is_a_pure_function_of_noise_steps_eta_and_seed(trained):
    ddim, _, _, model = trained
    noise = ddim.initial_noise(model, 6, seed=3)
    a = ddim.ddim(model, noise, 4, eta=0.0, seed=1)
    np.testing.assert_array_equal(a, ddim.ddim(model, noise, 4, eta=0.0, seed=2))  # eta 0: the seed is unused
    b = ddim.ddim(model, noise, 4, eta=1.0, seed=1)
    np.testing.assert_array_equal(b, ddim.ddim(model, noise, 4, eta=1.0, seed=1))
    assert not np.array_equal(b, ddim.ddim(model, noise, 4, eta=1.0, seed=2))  # eta 1 draws fresh noise
    assert not np.array_equal(a, b)
    final, steps = ddim.ddim(model, noise, 4, trajectory=True)
    assert steps.shape == (4, *noise.shape) and np.array_equal(steps[-1], final)
    with pytest.raises(ValueError, match="eta"):
        ddim.ddim(model, noise, 4, eta=1.5)


def test_guidance_convention_zero_unconditional_one_conditional(trained):
    """w = 0: the null label's prediction; w = 1: the label's; w: e_u + w (e_c - e_u), from one batched call."""
    ddim, _, data, model = trained
    x = ddim.initial_noise(model, 4, seed=5)
    labels = np.array([0, 1, 2, 3], np.int32)
    variances = np.full((4, 1, 1, 1), 0.5 ** 2, np.float32)
    cond = np.asarray(model.ema_network([x, variances, labels], training=False))
    uncond = np.asarray(model.ema_network([x, variances, np.full(4, model.null_label, np.int32)], training=False))
    assert model.null_label == int(data["train_y"].max()) + 1
    np.testing.assert_allclose(ddim.guided_noise(model, x, 0.5, labels, 0.0), uncond, atol=1e-5)
    np.testing.assert_allclose(ddim.guided_noise(model, x, 0.5, labels, 1.0), cond, atol=1e-5)
    np.testing.assert_allclose(ddim.guided_noise(model, x, 0.5, labels, 3.0), uncond + 3.0 * (cond - uncond),
                               atol=1e-4)


def test_ema_network_is_saved_and_restored(trained, tmp_path):
    """Training moves the EMA weights (not onto the raw network's); save_weights/load_weights keeps them."""
    ddim, cfg, data, model = trained
    ema, raw = model.ema_network.get_weights(), model.network.get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(ema, raw))
    fresh = ddim.build(cfg, data, seed=1)
    assert any(not np.array_equal(a, b) for a, b in zip(ema, fresh.ema_network.get_weights()))
    path = tmp_path / "m.weights.h5"
    model.save_weights(path)
    fresh.load_weights(path)
    for a, b in zip(ema, fresh.ema_network.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert float(fresh.pixel_mean) == pytest.approx(float(data["train_x"].mean()))


def test_forward_flops_counts_convolutions_analytically():
    import keras

    from gdl.families.ddim.model import forward_flops

    inputs = keras.Input((16, 16, 2))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.AveragePooling2D(2)(x)
    x = keras.layers.Conv2D(4, 1)(x)
    out = keras.layers.Dense(5)(keras.layers.Flatten()(x))
    expected = 2 * 16 * 16 * 9 * 2 * 8 + 2 * 8 * 8 * 1 * 8 * 4 + 2 * (8 * 8 * 4) * 5
    assert forward_flops(keras.Model(inputs, out)) == expected


def test_bad_params_are_refused_with_the_field_named():
    Config = families.get("ddim").Config
    with pytest.raises(ValidationError, match="min_signal_rate"):
        Config(min_signal_rate=0.9, max_signal_rate=0.5)
    with pytest.raises(ValidationError, match="sweep_etas"):
        Config(sweep_etas=[0.0, 1.5])
    with pytest.raises(ValidationError, match="guidance_eta"):
        Config(guidance_eta=1.5)
    with pytest.raises(ValidationError, match="label_dropout"):
        Config(label_dropout=1.0)
    with pytest.raises(ValidationError, match="widths"):
        Config(widths=[16])
