"""The family contract, checked for every registered family: whatever a family declares, it delivers.

Each family is built on a small synthetic dataset of its samples' kind with its smoke params, trained for
one epoch, sampled, scored (where it declares a likelihood) and round-tripped through a checkpoint.
"""

import numpy as np
import pytest

from gdl import families
from gdl.params import Training, profile


def synthetic_data(kind: str, n: int = 64) -> dict:
    rng = np.random.default_rng(0)
    if kind == "images":  # 256-level images in [0, 1], as the image datasets are preprocessed
        make = lambda m: (rng.integers(0, 256, (m, 16, 16, 1)) / 255).astype(np.float32)  # noqa: E731
    else:
        make = lambda m: rng.standard_normal((m, 2)).astype(np.float32)  # noqa: E731
    return {"train_x": make(n), "val_x": make(16), "test_x": make(16),
            "train_y": rng.integers(0, 4, n), "val_y": rng.integers(0, 4, 16), "test_y": rng.integers(0, 4, 16)}


@pytest.fixture(scope="module", params=families.names())
def trained(request):
    family = families.get(request.param)
    cfg = family.config(dataset="synthetic", profile="smoke")
    data = synthetic_data(family.samples)
    module = family.model()
    model = module.build(cfg, data, seed=0)
    x, y, validation = module.train_arrays(data)
    model.fit(x, y, epochs=1, batch_size=16, validation_data=validation, verbose=0)
    return family, cfg, data, module, model


def test_declarations(trained):
    family, cfg, *_ = trained
    assert family.title and family.samples in families.SAMPLE_KINDS
    assert isinstance(cfg, Training) and issubclass(family.Config, Training)
    for name, overlay in family.profiles.items():
        family.Config.model_validate(overlay | family.defaults.get("digits", {}))  # overlays are valid values


def test_sample_shape_dtype_range(trained):
    family, cfg, data, module, model = trained
    samples = module.sample(model, 10, seed=1)
    assert samples.shape == (10, *data["train_x"].shape[1:]) and samples.dtype == np.float32
    assert np.isfinite(samples).all()
    if family.samples == "images":
        assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, module.sample(model, 10, seed=1))  # a seed fixes the samples
    outputs = module.sample_outputs(model, data, 12, seed=1)
    assert outputs["samples"].shape == (12, *data["train_x"].shape[1:])
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in outputs.values())


def test_log_likelihood_is_finite_where_declared(trained):
    family, cfg, data, module, model = trained
    if not family.likelihood:
        assert not hasattr(module, "log_likelihood")
        return
    bounds = module.log_likelihood(model, data["test_x"], cfg, seed=0)
    assert list(bounds)[0] == "log_likelihood"
    for name, values in bounds.items():
        assert values.shape == (len(data["test_x"]),) and np.isfinite(values).all(), name


def test_checkpoint_round_trip(trained, tmp_path):
    from gdl.training import Checkpoint

    family, cfg, data, module, model = trained
    checkpoint = Checkpoint(tmp_path, fingerprint="f")
    checkpoint.save(model, epoch=1, history={"loss": [1.0]}, run_id=None)
    fresh = module.build(cfg, data, seed=1)
    state = checkpoint.load()
    Checkpoint.restore(fresh, state["arrays"])
    for a, b in zip(model.weights, fresh.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    np.testing.assert_array_equal(module.sample(model, 4, seed=2), module.sample(fresh, 4, seed=2))


def test_every_model_in_the_dag_has_a_family_and_a_params_section():
    params = profile("default")
    for name, inst in families.instances().items():
        assert isinstance(getattr(params, name), inst.family.Config)
        if inst.family.samples == "images":
            assert inst.ruler == f"backbones/{inst.dataset}.weights.h5", "image models are measured by their dataset's backbone"


def test_a_family_trains_on_several_datasets_from_one_folder():
    models = families.instances()
    assert models["vae"].family is models["vae_shapes"].family
    assert (models["vae"].dataset, models["vae_shapes"].dataset) == ("digits", "shapes")
    params = profile("default")
    assert params.vae.latent_dim == 2 and params.vae_shapes.latent_dim == 16  # per-dataset defaults
