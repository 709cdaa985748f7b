"""World Models' V (gdl/world_models/vae.py): the paper's architecture, the free-bits loss, learning, the file,
and V as the controller loads it.

Tiny widths (filters 4/8/8/16, latent 4) on 64x64 synthetic frames: a random background colour and a
rectangle of random size, colour and position, drawn with numpy. The whole file runs in ~15-20 s on 2 cores,
half of it the 8 training epochs.
"""

from __future__ import annotations

import importlib

import numpy as np
import pytest

from gdl.world_models.controller import DEFAULT_ENCODER_LOADER
from gdl.world_models.mdnrnn import build_mdnrnn, save_model
from gdl.world_models.rollouts import make_policy
from gdl.world_models.vae import (
    WorldModelVAE, build_vae, decode, encode, kl_divergence, load_vae, mean_frame_mse, reconstruct,
    reconstruction_mse, save_vae, to_float, vae_loss,
)

LATENT, FILTERS = 4, (4, 8, 8, 16)
PIXELS = 64 * 64 * 3


def rectangle_frames(n: int, seed: int) -> np.ndarray:
    """uint8 (n, 64, 64, 3): a uniform random background colour, and one rectangle (16-32 pixels a side)
    of another random colour at a random position."""
    rng = np.random.default_rng(seed)
    frames = np.broadcast_to(rng.integers(0, 256, (n, 1, 1, 3), dtype=np.uint8), (n, 64, 64, 3)).copy()
    for frame in frames:
        height, width = rng.integers(16, 33, 2)
        top, left = rng.integers(0, 64 - height + 1), rng.integers(0, 64 - width + 1)
        frame[top:top + height, left:left + width] = rng.integers(0, 256, 3)
    return frames


@pytest.fixture(scope="module")
def frames() -> dict[str, np.ndarray]:
    return {"train": rectangle_frames(384, 0), "test": rectangle_frames(100, 1)}


@pytest.fixture(scope="module")
def trained(frames) -> tuple[WorldModelVAE, dict]:
    """Trained for a few epochs (a higher learning rate than Ha's 1e-4: the tiny model must learn fast)."""
    model = build_vae(LATENT, FILTERS, learning_rate=3e-3, seed=0)
    history = model.fit(frames["train"], batch_size=32, epochs=8, verbose=0, validation_data=(frames["test"],))
    return model, history.history


# ---------------------------------------------------------------- the architecture ------------------
def test_full_width_is_the_paper_s_vae():
    model = build_vae()  # latent 32, filters 32/64/128/256
    assert model.count_params() == 4_348_547  # the paper's table of parameter counts: V has 4,348,547
    mu, logvar = encode(model, np.zeros((2, 64, 64, 3), np.uint8))
    assert mu.shape == logvar.shape == (2, 32)
    kernels = [(layer.kernel_size, layer.strides, layer.filters) for layer in model.convs + model.deconvs]
    assert kernels == [((4, 4), (2, 2), f) for f in (32, 64, 128, 256)] + [
        ((k, k), (2, 2), f) for k, f in zip((5, 5, 6, 6), (128, 64, 32, 3))]
    assert model.dec_fc.units == 1024
    with pytest.raises(ValueError, match="4 conv layers"):
        WorldModelVAE(filters=(8, 16, 32))


def test_shapes_dtypes_ranges_and_frame_formats(frames):
    model = build_vae(LATENT, FILTERS, seed=0)
    x = frames["test"][:10]
    mu, logvar = encode(model, x)
    assert mu.shape == logvar.shape == (10, LATENT) and mu.dtype == logvar.dtype == np.float32
    assert np.all(np.isfinite(mu)) and np.all(np.isfinite(logvar))

    # uint8 and float in [0, 1] are the same frames to every entry point.
    mu_float, logvar_float = encode(model, to_float(x))
    np.testing.assert_allclose(mu_float, mu, atol=1e-6)
    np.testing.assert_allclose(logvar_float, logvar, atol=1e-6)
    out, mu_call, _ = model(x)
    out_float, _, _ = model(to_float(x))
    np.testing.assert_allclose(np.asarray(out_float), np.asarray(out), atol=1e-6)
    np.testing.assert_allclose(np.asarray(mu_call), mu, atol=1e-5)
    assert tuple(out.shape) == (10, 64, 64, 3) and 0.0 <= float(np.min(out)) and float(np.max(out)) <= 1.0

    for images in (decode(model, mu), reconstruct(model, x)):
        assert images.shape == (10, 64, 64, 3) and images.dtype == np.uint8
    np.testing.assert_array_equal(decode(model, mu), reconstruct(model, x))
    assert 0.0 < reconstruction_mse(model, x) < 1.0

    with pytest.raises(ValueError, match=r"in \[0, 1\]"):
        to_float(x.astype(np.float32))  # 0-255 data as floats
    with pytest.raises(ValueError, match=r"\(B, 64, 64, 3\)"):
        encode(model, x[:, :32])
    with pytest.raises(ValueError, match=r"expected z"):
        decode(model, mu[:, :2])
    empty_mu, empty_logvar = encode(model, x[:0])
    assert empty_mu.shape == empty_logvar.shape == (0, LATENT)


def test_seeded_weights():
    same, other = build_vae(LATENT, FILTERS, seed=0), build_vae(LATENT, FILTERS, seed=1)
    again = build_vae(LATENT, FILTERS, seed=0)
    assert all(np.array_equal(a, b) for a, b in zip(same.get_weights(), again.get_weights()))
    assert not np.array_equal(same.get_weights()[0], other.get_weights()[0])


# ---------------------------------------------------------------- the loss --------------------------
def test_kl_tolerance_floors_the_kl_term():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    x = rng.random((3, 64, 64, 3)).astype(np.float32)
    y = rng.random((3, 64, 64, 3)).astype(np.float32)
    squares = np.square(x - y).sum(axis=(1, 2, 3))

    # The KL by hand: N(mu, sigma^2) from N(0, 1) is (mu^2 + sigma^2 - 1 - log sigma^2) / 2 per dimension.
    mu = rng.standard_normal((3, LATENT)).astype(np.float32)
    logvar = rng.standard_normal((3, LATENT)).astype(np.float32)
    expected_kl = 0.5 * (mu ** 2 + np.exp(logvar) - 1.0 - logvar).sum(-1)
    np.testing.assert_allclose(np.asarray(kl_divergence(mu, logvar)), expected_kl, rtol=1e-5)

    # Posterior = prior: KL 0, but the loss pays the floor, 0.5 nats per dimension.
    zeros = np.zeros((3, LATENT), np.float32)
    loss, squared, kl = (np.asarray(t) for t in vae_loss(x, y, zeros, zeros, kl_tolerance=0.5))
    np.testing.assert_allclose(squared, squares, rtol=1e-5)
    np.testing.assert_allclose(kl, 0.0, atol=1e-6)
    np.testing.assert_allclose(loss, squares + 0.5 * LATENT, rtol=1e-5)
    # Without the tolerance it is the plain negative ELBO (up to constants).
    np.testing.assert_allclose(np.asarray(vae_loss(x, y, zeros, zeros, kl_tolerance=0.0)[0]), squares, rtol=1e-5)

    # Per frame: a frame under the floor pays the floor, one above it pays its KL.
    small, large = np.full(LATENT, 0.5, np.float32), np.full(LATENT, 3.0, np.float32)  # KL 0.5 and 18 nats
    mus = tf.Variable(np.stack([small, large, small]))
    with tf.GradientTape() as tape:
        loss, _, kl = vae_loss(x, y, mus, np.zeros((3, LATENT), np.float32), kl_tolerance=0.5)
        total = tf.reduce_sum(loss)
    np.testing.assert_allclose(np.asarray(kl), [0.5, 18.0, 0.5], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(loss), squares + [2.0, 18.0, 2.0], rtol=1e-5)
    grad = np.asarray(tape.gradient(total, mus))
    assert np.all(grad[[0, 2]] == 0.0)  # under the floor the encoder is not pulled towards the prior
    np.testing.assert_allclose(grad[1], large, rtol=1e-5)  # d/dmu of mu^2 / 2


# ---------------------------------------------------------------- learning --------------------------
def test_a_few_epochs_beat_the_mean_frame_on_held_out_frames(trained, frames):
    model, history = trained
    assert set(history) == {"loss", "reconstruction", "kl", "val_loss", "val_reconstruction", "val_kl"}
    assert history["loss"][-1] < history["loss"][0]
    mse, baseline = reconstruction_mse(model, frames["test"]), mean_frame_mse(frames["train"], frames["test"])
    assert mse < 0.9 * baseline, (mse, baseline)
    assert history["val_kl"][-1] > 0.5  # z carries information about the frame

    # The metrics' units: `reconstruction` is the sum of squares per frame, through mu at evaluation, so
    # it is reconstruction_mse times the 12288 values of a frame; the loss adds the floored KL.
    metrics = model.evaluate(frames["test"], batch_size=100, verbose=0, return_dict=True)
    assert metrics["reconstruction"] == pytest.approx(mse * PIXELS, rel=1e-4)
    mu, logvar = encode(model, frames["test"])
    kl = 0.5 * (mu.astype(np.float64) ** 2 + np.exp(logvar) - 1.0 - logvar).sum(-1)
    assert metrics["kl"] == pytest.approx(kl.mean(), rel=1e-3, abs=1e-4)
    assert metrics["loss"] == pytest.approx(mse * PIXELS + np.maximum(kl, 0.5 * LATENT).mean(), rel=1e-4)

    # The baseline by hand.
    mean = to_float(frames["train"]).mean(0)
    assert baseline == pytest.approx(float(np.mean((to_float(frames["test"]) - mean) ** 2)), rel=1e-5)


def test_encode_is_deterministic_and_independent_of_the_batch(trained, frames):
    model, _ = trained
    mu, logvar = encode(model, frames["test"])
    again = encode(model, frames["test"])
    np.testing.assert_array_equal(mu, again[0])
    np.testing.assert_array_equal(logvar, again[1])
    small_batches = encode(model, frames["test"], batch_size=7)
    np.testing.assert_allclose(small_batches[0], mu, atol=1e-5)
    np.testing.assert_allclose(small_batches[1], logvar, atol=1e-5)
    assert not np.allclose(mu[0], mu[1])  # different frames, different codes


# ---------------------------------------------------------------- the file --------------------------
def test_save_load_round_trip(trained, frames, tmp_path):
    model, _ = trained
    path = tmp_path / "vae.keras"
    save_vae(model, path)
    loaded = load_vae(path)
    assert isinstance(loaded, WorldModelVAE)
    assert (loaded.latent_dim, loaded.filters, loaded.kl_tolerance) == (LATENT, FILTERS, 0.5)
    assert int(loaded.optimizer.iterations) == int(model.optimizer.iterations) > 0  # training can resume
    for original, restored in zip(encode(model, frames["test"]), encode(loaded, frames["test"])):
        np.testing.assert_array_equal(original, restored)
    np.testing.assert_array_equal(reconstruct(model, frames["test"][:5]), reconstruct(loaded, frames["test"][:5]))

    save_model(build_mdnrnn(LATENT, 3, 8, 2, seed=0), tmp_path / "m.keras")
    with pytest.raises(ValueError, match="not a WorldModelVAE"):
        load_vae(tmp_path / "m.keras")


def test_load_encoder_by_import_path_as_the_controller_does(trained, frames, tmp_path):
    model, _ = trained
    save_vae(model, tmp_path / "vae.keras")
    assert DEFAULT_ENCODER_LOADER == "gdl.world_models.vae:load_encoder"  # WorldModelPolicy's default
    module, _, name = DEFAULT_ENCODER_LOADER.partition(":")
    encode_frames = getattr(importlib.import_module(module), name)(str(tmp_path / "vae.keras"))
    mu, logvar = encode_frames(frames["test"][:1])
    assert mu.shape == logvar.shape == (1, LATENT) and mu.dtype == logvar.dtype == np.float32
    expected = encode(model, frames["test"][:1])
    np.testing.assert_array_equal(mu, expected[0])
    np.testing.assert_array_equal(logvar, expected[1])

    # The whole agent with this V and a (tiny, untrained) M, built by name as a worker builds it.
    units = 8
    save_model(build_mdnrnn(LATENT, 3, units, 2, seed=0), tmp_path / "m.keras")
    params = np.random.default_rng(0).standard_normal(3 * (LATENT + units) + 3)
    policy = make_policy("gdl.world_models.controller:WorldModelPolicy", 0, controller=params,
                         encoder=str(tmp_path / "vae.keras"), mdnrnn=str(tmp_path / "m.keras"),
                         latent=LATENT, units=units)
    actions = np.stack([policy(frame) for frame in frames["test"][:3]])
    assert actions.shape == (3, 3) and actions.dtype == np.float32 and np.all(np.isfinite(actions))


def test_a_model_folder_is_byte_identical_for_the_same_weights_and_loads_back(tmp_path):
    # The pipeline's output (DVC hashes it): no timestamps inside, unlike a .keras archive.
    model = build_vae(LATENT, FILTERS, seed=0)
    save_vae(model, tmp_path / "a")
    save_vae(model, tmp_path / "b")
    for name in ("config.json", "model.weights.h5"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    frames = np.random.default_rng(0).integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    np.testing.assert_array_equal(encode(load_vae(tmp_path / "a"), frames)[0], encode(model, frames)[0])
    save_model(build_mdnrnn(LATENT, 3, 8, 2, seed=0), tmp_path / "m")
    with pytest.raises(ValueError, match="holds a MDNRNN, not a WorldModelVAE"):
        load_vae(tmp_path / "m")
