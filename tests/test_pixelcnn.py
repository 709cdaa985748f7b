"""PixelCNN: the masks are causal, the cropped sampler is exact, the mixture is a distribution, bad params fail."""

import numpy as np
import pytest
from pydantic import ValidationError

from gdl import families
from gdl.families.pixelcnn import model as pc


@pytest.fixture(scope="module")
def tiny():
    family = families.get("pixelcnn")
    cfg = family.config("synthetic", "smoke", instance="pixelcnn").model_copy(update={"residual_blocks": 2})
    return cfg, pc.build_network(8, 8, cfg.residual_blocks, 1, cfg.levels)


def test_masks_hide_the_future_and_type_a_hides_the_pixel():
    a, b = pc.causal_mask(7, "A"), pc.causal_mask(3, "B")
    assert a[3, 3] == 0 and b[1, 1] == 1
    assert a[4:].sum() == 0 and a[3, 4:].sum() == 0 and a[:3].all() and a[3, :3].all()


def test_outputs_depend_only_on_earlier_pixels(tiny):
    """Changing pixel (r, c) changes no output at (r, c) or before it in raster order, and changes the next one."""
    _, net = tiny
    rng = np.random.default_rng(0)
    x = rng.random((1, 8, 8, 1)).astype(np.float32)
    y = x.copy()
    y[0, 3, 4, 0] += 1.0
    diff = np.abs(np.asarray(net(y)) - np.asarray(net(x))).max(axis=-1)[0]
    order = np.arange(64).reshape(8, 8)
    assert diff[order <= 3 * 8 + 4].max() == 0.0
    assert diff[3, 5] > 0


def test_cropped_rows_give_the_full_network_output(tiny):
    """The sampler feeds only the `receptive_rows` rows above a pixel: its output there must be exact."""
    cfg, net = tiny
    x = np.random.default_rng(1).random((2, 8, 8, 1)).astype(np.float32)
    full = np.asarray(net(x))
    reach = pc.receptive_rows(cfg.residual_blocks)
    for row in range(8):
        top = max(row - reach, 0)
        np.testing.assert_allclose(np.asarray(net(x[:, top:row + 1]))[:, row - top], full[:, row], atol=1e-5)


@pytest.mark.parametrize("levels", [4, 256])
def test_mixture_sums_to_one_over_the_levels(levels):
    """Edge bins take the tails: the probabilities of all levels sum to 1, even for extreme parameters."""
    rng = np.random.default_rng(2)
    params = np.concatenate([rng.normal(size=(3, 5)), rng.normal(0, 1.5, (3, 5)), rng.normal(-2, 2, (3, 5))], -1)
    params = np.repeat(params[:, None], levels, axis=1).astype(np.float32)  # (3, levels, 3K)
    k = np.tile(np.arange(levels), (3, 1))
    logp = np.asarray(pc.mixture_log_prob(k, params, levels))
    np.testing.assert_allclose(np.exp(logp).sum(axis=1), 1.0, atol=2e-3)
    assert np.isfinite(logp).all()


def test_model_space_and_upsampling_round_trip():
    images = np.zeros((1, 32, 32, 1), np.float32)
    images[0, :16] = 1.0
    k = pc.to_model_space(images, 16, 4)
    assert k.shape == (1, 16, 16) and set(np.unique(k)) == {0, 3}
    up = pc.upsample(k, 4, (32, 32, 1))
    assert up.shape == (1, 32, 32, 1) and up.dtype == np.float32
    np.testing.assert_array_equal(up[0, :15], 1.0)
    np.testing.assert_array_equal(up[0, 17:], 0.0)


def test_sampler_is_seeded_and_on_the_grid():
    family = families.get("pixelcnn")
    cfg = family.config("synthetic", "smoke", instance="pixelcnn_mixture")
    data = {"train_x": np.zeros((2, 16, 16, 1), np.float32)}
    model = pc.build(cfg, data, seed=0)
    a, b = pc.sample_levels(model, 3, seed=5), pc.sample_levels(model, 3, seed=5)
    np.testing.assert_array_equal(a, b)
    assert a.shape == (3, 8, 8) and a.min() >= 0 and a.max() <= cfg.levels - 1
    assert not np.array_equal(a, pc.sample_levels(model, 3, seed=6))


def test_bad_params_name_the_field():
    family = families.get("pixelcnn")
    with pytest.raises(ValidationError, match="levels"):
        family.Config.model_validate({"levels": 1})
    with pytest.raises(ValidationError, match="output"):
        family.Config.model_validate({"output": "gaussian"})
