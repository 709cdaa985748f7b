"""The energy-based model's own behaviour: Langevin dynamics climbs the score within its clipped step, the
replay buffer keeps the negatives (and is saved with the weights), and chains are fixed by their seed."""

import numpy as np
import pytest

from gdl import families


@pytest.fixture(scope="module")
def ebm():
    family = families.get("ebm")
    cfg = family.config(dataset="synthetic", profile="smoke")
    rng = np.random.default_rng(0)
    data = {"train_x": (rng.integers(0, 256, (32, 16, 16, 1)) / 255).astype(np.float32),
            "val_x": (rng.integers(0, 256, (8, 16, 16, 1)) / 255).astype(np.float32)}
    module = family.model()
    return module, module.build(cfg, data, seed=0), cfg, data


def test_langevin_climbs_the_score_in_clipped_steps(ebm):
    import tensorflow as tf

    module, model, cfg, _ = ebm
    x = tf.random.stateless_uniform((16, 16, 16, 1), seed=(1, 2), minval=-1.0, maxval=1.0)
    steps = 20
    no_noise = tf.zeros((steps, 16, 16, 16, 1))
    y = module.langevin(model.scorer, x, no_noise, cfg)
    assert float(np.mean(model.scorer(y))) > float(np.mean(model.scorer(x)))  # uphill, on average
    assert np.abs(y.numpy() - x.numpy()).max() <= steps * cfg.step_size * cfg.gradient_clip + 1e-5
    assert y.numpy().min() >= -1.0 and y.numpy().max() <= 1.0


def test_negatives_go_back_into_the_buffer(ebm):
    _, model, _, _ = ebm
    before = model.buffer.numpy().copy()
    fake = model.negatives(8).numpy()
    after = model.buffer.numpy()
    changed = np.where(np.any(before != after, axis=(1, 2, 3)))[0]
    assert 0 < len(changed) <= 8
    assert all(np.any(np.all(np.isclose(after[i], fake), axis=(1, 2, 3))) for i in changed)
    assert any(v is model.buffer for v in model.variables)  # checkpoints (model.variables) keep it


def test_chains_fixed_by_seed_and_snapshots_end_at_the_samples(ebm):
    module, model, *_ = ebm
    a, chains = module.run_chains(model, 10, 7, seed=3, snapshots=True)
    b, _ = module.run_chains(model, 10, 7, seed=3)
    np.testing.assert_array_equal(a, b)
    assert chains.shape[0] % 8 == 0
    per_chain = chains.reshape(8, -1, *a.shape[1:])
    np.testing.assert_array_equal(per_chain[:, -1], a[:8])
    assert not np.array_equal(a, module.run_chains(model, 10, 7, seed=4)[0])
