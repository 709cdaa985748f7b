"""The family contract, checked for every registered family: whatever a family declares, it delivers.

Each family (each of its instances' settings, where it has several: `dcgan`/`wgan_gp`/`cgan`, `mlp`/`cnn`)
is built on a small synthetic dataset of its samples' kind with its smoke params, trained for one epoch,
sampled, scored (where it declares a likelihood) and round-tripped through a checkpoint.
"""

import numpy as np
import pytest

from gdl import families
from gdl.params import Data, Training, profile


def token_data(rng) -> dict:
    """Both token layouts (gdl/sequences.py): words (`vocab`, `<split>_ids`) and aligned note/duration
    streams (`note_vocab`, `<split>_note_ids`, ...), sharing offsets: 3 sequences per split."""
    data = {"vocab": np.array(["", "[UNK]"] + [f"w{i}" for i in range(20)]),
            "note_vocab": np.array(["", "[UNK]", "START", "rest", "C4", "D4", "E4"]),
            "duration_vocab": np.array(["", "[UNK]", "0.0", "0.25", "0.5", "1.0"])}
    for split, lengths in (("train", [40, 25, 60]), ("val", [20, 12, 30]), ("test", [20, 15, 25])):
        total = sum(lengths)
        data[f"{split}_offsets"] = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
        data[f"{split}_ids"] = rng.integers(2, 22, total).astype(np.int32)
        data[f"{split}_note_ids"] = rng.integers(3, 7, total).astype(np.int32)
        data[f"{split}_duration_ids"] = rng.integers(3, 6, total).astype(np.int32)
        data[f"{split}_pianorolls"] = np.zeros((8, 2, 16, 84, 4), np.uint8)
        pitch = rng.integers(30, 50, (8, 2, 16, 4))
        np.put_along_axis(data[f"{split}_pianorolls"], pitch[:, :, :, None, :], 1, axis=3)
    data.update(pianoroll_lowest_pitch=np.array(24), pianoroll_tracks=np.array(["soprano", "alto", "tenor", "bass"]))
    return data


def synthetic_data(kind: str, n: int = 64) -> dict:
    rng = np.random.default_rng(0)
    if kind in ("tokens", "pianorolls"):
        return token_data(rng)
    if kind in ("images", "labels"):  # 256-level images in [0, 1], as the image datasets are preprocessed
        make = lambda m: (rng.integers(0, 256, (m, 16, 16, 1)) / 255).astype(np.float32)  # noqa: E731
    else:
        make = lambda m: rng.standard_normal((m, 2)).astype(np.float32)  # noqa: E731
    data = {"train_x": make(n), "val_x": make(16), "test_x": make(16),
            "train_y": rng.integers(0, 4, n), "val_y": rng.integers(0, 4, 16), "test_y": rng.integers(0, 4, 16)}
    if kind != "points":  # categorical attributes, as shapes has them: the label (shape) and a colour
        data.update(attribute_names=np.array(["shape", "colour"]), shape_names=np.array(list("abcd")),
                    colour_names=np.array(["red", "green", "blue"]))
        for split in ("train", "val", "test"):
            y = data[f"{split}_y"]
            data[f"{split}_attributes"] = np.stack([y, rng.integers(0, 3, len(y))], axis=1).astype(np.float32)
    return data


def variants() -> list[tuple[str, str | None]]:
    """(family, instance) for every instance a family has settings for (its `defaults` keys that are not
    datasets), or (family, None) for a family whose instances differ only in their dataset."""
    out = []
    for name in families.names():
        instances = [k for k in families.get(name).defaults if k not in Data.model_fields]
        out += [(name, i) for i in instances] or [(name, None)]
    return out


def outputs(family, module, model, data, n: int, seed: int) -> np.ndarray:
    """What a family's model gives: n samples, or a classifier's probabilities on the test split."""
    if family.samples == "labels":  # a classifier has no `sample`: its outputs need the test images
        return module.sample_outputs(model, data, n, seed)["samples"]
    return module.sample(model, n, seed)


@pytest.fixture(scope="module", params=variants(), ids=lambda v: "-".join(filter(None, v)))
def trained(request):
    name, instance = request.param
    family = families.get(name)
    cfg = family.config(dataset="synthetic", profile="smoke", instance=instance)
    data = synthetic_data(family.samples)
    module = family.model()
    model = module.build(cfg, data, seed=0)
    x, y, validation = module.train_arrays(data, cfg)
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
    if family.samples == "labels":
        return check_class_probabilities(family, data, module, model)
    if family.samples in ("tokens", "pianorolls"):
        return check_sequence_samples(family, data, module, model)
    samples = module.sample(model, 10, seed=1)
    assert samples.shape == (10, *data["train_x"].shape[1:]) and samples.dtype == np.float32
    assert np.isfinite(samples).all()
    if family.samples == "images":
        assert samples.min() >= 0.0 and samples.max() <= 1.0
    np.testing.assert_array_equal(samples, module.sample(model, 10, seed=1))  # a seed fixes the samples
    outputs = module.sample_outputs(model, data, 12, seed=1)
    assert outputs["samples"].shape == (12, *data["train_x"].shape[1:])
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in outputs.values())


def check_sequence_samples(family, data, module, model):
    """Token ids (never pad) or binary piano rolls of the data's layout; a seed fixes them."""
    samples = module.sample(model, 3, seed=1)
    np.testing.assert_array_equal(samples, module.sample(model, 3, seed=1))
    if family.samples == "tokens":
        assert samples.ndim == 2 and len(samples) == 3 and samples.min() >= 1
    else:
        assert samples.shape[1:] == data["train_pianorolls"].shape[1:] and set(np.unique(samples)) <= {0, 1}
    out = module.sample_outputs(model, data, 12, seed=1)
    assert list(out)[0] == "samples" or "samples" in out
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in out.values())


def check_class_probabilities(family, data, module, model):
    """A classifier's samples: its class probabilities on the whole test split, whatever n and the seed."""
    probs = module.sample_outputs(model, data, 12, seed=1)["samples"]
    classes = int(data["train_y"].max()) + 1
    assert probs.shape == (len(data["test_x"]), classes) and probs.dtype == np.float32
    assert probs.min() >= 0.0 and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probs, outputs(family, module, model, data, 5, seed=2))  # deterministic
    assert all(isinstance(v, np.ndarray) and v.dtype != object
               for v in module.sample_outputs(model, data, 12, seed=1).values())


def test_log_likelihood_is_finite_where_declared(trained):
    family, cfg, data, module, model = trained
    if family.samples == "tokens":  # per-token log-probabilities of every stream, for the evaluate stage
        for stream, (w, logp) in module.token_log_likelihood(model, data, "test").items():
            assert logp.shape == (len(w), w.shape[1] - 1) and np.isfinite(logp).all(), stream
            assert (logp[w[:, 1:] != 0] < 0).all()
        return
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
    np.testing.assert_array_equal(outputs(family, module, model, data, 4, seed=2),
                                  outputs(family, module, fresh, data, 4, seed=2))


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


def test_vae_border_reader_reads_the_background_of_shapes_images():
    """The shapes VAE's attribute arithmetic is judged on the background, which the ruler did not learn:
    the border reader must read it exactly on real images (and, unlike the ruler, needs no training)."""
    from gdl.data import shapes
    from gdl.families.vae.model import attribute_values, border_reader

    from gdl.params import Preprocess

    raw = shapes.acquire(Data().shapes.model_copy(update={"n_samples": 300}), seed=3)
    data = shapes.preprocess(raw, Preprocess().shapes, seed=3)
    read = border_reader(data, "background")
    assert np.array_equal(read(data["test_x"]), attribute_values(data, "test", "background"))


def test_vae_categorical_decoder_is_a_distribution_over_the_256_levels():
    """likelihood: categorical (the shapes VAE): uniform logits give exactly 8 bits per pixel and channel,
    a trained one scores finite bounds and decodes to images in [0, 1]."""
    import keras

    from gdl.families.vae import model as vae_model

    family = families.get("vae")
    cfg = family.config(dataset="synthetic", profile="smoke").model_copy(update={"likelihood": "categorical"})
    data = synthetic_data("images")
    x = data["test_x"]
    uniform = keras.ops.zeros(x.shape + (256,))
    np.testing.assert_allclose(np.asarray(vae_model.pixel_log_prob(x, uniform)), -x[0].size * np.log(256), rtol=1e-6)
    model = vae_model.build(cfg, data, seed=0)
    model.fit(data["train_x"], epochs=1, batch_size=16, verbose=0)
    bounds = vae_model.log_likelihood(model, x, cfg, seed=0)
    assert all(np.isfinite(v).all() and (v < 0).all() for v in bounds.values())
    images = vae_model.sample(model, 4, seed=1)  # the expected level of every pixel and channel
    assert images.shape == (4,) + x.shape[1:] and images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0


def test_vae_pixel_share_below_one_is_refused_for_the_logistic_decoder():
    from pydantic import ValidationError

    family = families.get("vae")
    with pytest.raises(ValidationError, match="pixel_share 0.5 needs `likelihood: categorical`"):
        family.Config(pixel_share=0.5)
    assert family.Config(pixel_share=0.5, likelihood="categorical").pixel_share == 0.5


def test_vae_pixel_share_loss_is_an_unbiased_estimate_of_every_pixels_loss():
    """pixel_share < 1 (the shapes VAE's training): each step scores a random subset of the pixels, rescaled.
    With every pixel drawn it is the full categorical log P exactly; with a quarter, its mean over draws
    converges to it (and single draws differ, or the subset were not random); the weights are the
    decoder's, saved once."""
    from gdl.families.vae import model as vae_model

    family = families.get("vae")
    data = synthetic_data("images")
    x = data["test_x"][:4]
    z = np.random.default_rng(0).standard_normal((4, 2)).astype(np.float32)

    def built(share):
        cfg = family.config(dataset="synthetic", profile="smoke").model_copy(
            update={"likelihood": "categorical", "pixel_share": share})
        return vae_model.build(cfg, data, seed=0)

    model = built(1.0 / 4)
    assert len(model.weights) == len(built(1.0).weights)  # the feature model adds no tracked weights
    full = np.asarray(vae_model.pixel_log_prob(x, model.decoder(z)))
    model.pixel_share = 1.0 - 1e-9  # the subset path, drawing all 256 pixels
    np.testing.assert_allclose(np.asarray(model._pixel_subset_log_prob(x, z)), full, rtol=1e-4)
    model.pixel_share = 1.0 / 4
    draws = np.stack([np.asarray(model._pixel_subset_log_prob(x, z)) for _ in range(400)])
    assert np.ptp(draws[:, 0]) > 0  # different pixels each draw
    standard_error = draws.std(axis=0) / np.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - full) < 4 * standard_error + 1e-3 * np.abs(full))
