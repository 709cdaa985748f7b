"""evaluate@<model>: the model's figures next to a trivial baseline's -> metrics/<model>.json (+ .meta.json).

What is measured follows from what the family declares (gdl/families/<family>/__init__.py):

* image samples: FID and KID against the test split, in the features of the model's ruler (dvc.yaml's
  `ruler`: the dataset's frozen domain backbone; or ImageNet InceptionV3 with evaluate.backbone), each
  with its noise (`fid_std`: bootstrap over both sample sets; `kid_std`: over KID's subsets). The same
  for independent per-pixel samples from the training marginals (`baseline`) and for training images
  (`reference`: the floor that sample noise alone gives at these counts).
* a likelihood: bits/dim on the test images, or nats per point for 2-D data, next to the baseline's
  exact figure (per-pixel marginals; a maximum-likelihood Gaussian).

metrics/<model>.json holds figures only, the model's at the top level and the baseline's under `baseline`
with the same keys, so `dvc metrics diff` shows `fid` beside `baseline.fid`. What the figures are (names,
units, directions, the backbone's SHA-256, sample counts) is in metrics/<model>.meta.json beside it.
"""

from __future__ import annotations

import math

import numpy as np

from gdl.arrays import DataFileError, load_arrays
from gdl.atomic import write_json
from gdl.download import sha256_file
from gdl.metrics import fid, fid_bootstrap_std, gaussian_nll, kid
from gdl.params import model_seed
from stages.common import fail, model_args, quiet_tensorflow
from stages.sample import load_model

DESCRIPTIONS = {
    "fid": "Frechet distance of backbone features, samples vs test split (lower is better)",
    "kid": "kernel inception distance: unbiased MMD^2, cubic polynomial kernel (lower is better)",
    "bits_per_dim": "negative log-likelihood of the test split, bits per dimension (lower is better)",
    "nll_nats": "negative log-likelihood of the test split, nats per point (lower is better)",
}


def backbone(params, inst, data):
    """(images -> float64 features, what the ruler is) for the configured backbone."""
    from gdl import backbones

    if params.evaluate.backbone == "domain":
        model = backbones.load_domain_backbone(inst.ruler, data, getattr(params.feature_extractor, inst.dataset))
        return (lambda images: backbones.domain_features(model, images)), \
            {"name": "domain", "path": inst.ruler, "sha256": sha256_file(inst.ruler)}
    from gdl.download import fetch

    if not params.evaluate.inception_sha256:
        raise ValueError("evaluate.inception_sha256 must pin the weights file's SHA-256 to use inception_v3")
    path = f"data/downloads/{backbones.INCEPTION_V3_NOTOP_FILENAME}"
    weights = fetch(backbones.INCEPTION_V3_NOTOP_URL, path, params.evaluate.inception_sha256)
    model = backbones.build_inception_v3(weights)
    return (lambda images: backbones.inception_features(model, images)), \
        {"name": "inception_v3", "path": path, "sha256": params.evaluate.inception_sha256}


def image_figures(features, samples, baseline_samples, data, ev, seed) -> tuple[dict, dict, dict]:
    """FID/KID with their noise for the model's samples, the baseline's and training images."""
    test = features(data["test_x"])

    def measure(images):
        f = features(images)
        k, k_std = kid(f, test, subsets=ev.kid_subsets, subset_size=ev.kid_subset_size, seed=seed)
        return {"fid": fid(f, test), "fid_std": fid_bootstrap_std(f, test, resamples=ev.bootstrap, seed=seed),
                "kid": k, "kid_std": k_std}

    return measure(samples), measure(baseline_samples), measure(data["train_x"][: len(samples)])


def main(argv=None) -> None:
    inst, stage, params = model_args("evaluate", __doc__, argv)
    quiet_tensorflow()
    family, ev, seed = inst.family, params.evaluate, model_seed(params, inst.name)
    figures, baseline, reference = {}, {}, {}
    meta = {"model": inst.name, "family": family.name, "dataset": inst.dataset, "seed": seed}
    try:
        data = load_arrays(f"data/processed/{inst.dataset}.npz")
        samples = load_arrays(f"samples/{inst.name}.npz")["samples"]
        module, model = load_model(inst, params, data, seed)
        meta.update(num_samples=int(len(samples)), num_test=int(len(data["test_x"])))
        if family.samples == "images":
            from gdl.baselines import PixelMarginals

            marginals = PixelMarginals().fit(data["train_x"])  # the baseline: independent pixels
            features, meta["backbone"] = backbone(params, inst, data)
            model_fig, baseline, reference = image_figures(
                features, samples, marginals.sample(len(samples), seed), data, ev, seed)
            figures.update(model_fig)
            meta["baseline"] = "independent per-pixel marginals of the training split"
            meta["reference"] = "training images (the floor that sample noise alone gives)"
        if family.likelihood:
            bounds = module.log_likelihood(model, data["test_x"], getattr(params, inst.name), seed)
            if family.samples == "images":
                dims = int(np.prod(data["test_x"].shape[1:]))
                unit, to_unit = "bits_per_dim", lambda ll: float(-np.mean(ll) / (dims * math.log(2)))
                baseline["bits_per_dim"] = float(marginals.bits_per_dim(data["test_x"]))
            else:
                unit, to_unit = "nll_nats", lambda ll: float(-np.mean(ll))
                baseline["nll_nats"] = gaussian_nll(data["train_x"], data["test_x"])
                meta["baseline"] = "a single Gaussian, maximum likelihood on the training split"
            for i, (name, ll) in enumerate(bounds.items()):
                figures[unit if i == 0 else f"{name}_{unit}"] = to_unit(ll)
            meta["likelihood"] = list(bounds)  # the first is the headline figure; the others are looser bounds
    except (DataFileError, FileNotFoundError, OSError, ValueError, KeyError) as exc:
        fail(stage, f"{type(exc).__name__}: {exc}")
    metrics = {**figures, "baseline": baseline, **({"reference": reference} if reference else {})}
    meta["descriptions"] = {k: v for k, v in DESCRIPTIONS.items() if k in figures}
    write_json(f"metrics/{inst.name}.json", metrics)
    write_json(f"metrics/{inst.name}.meta.json", meta)
    print(f"{stage}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items())
          + " | baseline: " + ", ".join(f"{k}={v:.4g}" for k, v in baseline.items()))


if __name__ == "__main__":
    main()
