"""evaluate@<family>: the family's figures next to a trivial baseline's -> metrics/<family>.json.

Image families: FID and KID of the samples against the test split, in the features of the backbone
(`domain`: the classifier of feature_extractor@<dataset>; `inception_v3`: ImageNet InceptionV3), and the
same for independent per-pixel samples from the training marginals. The train split's FID/KID against the
test split is recorded under `reference`: the floor that sample noise alone gives at these counts.
Likelihood families: bits/dim (images) or nats/point (2-D), next to the baseline's exact likelihood.

Every file has one shape: the model's figures at the top level, the baseline's under `baseline` with the
same keys, so `dvc metrics diff` shows `fid` beside `baseline.fid`.
"""

from __future__ import annotations

import math

import numpy as np

from gdl import families
from gdl.arrays import DataFileError, load_arrays
from gdl.metrics import fid, gaussian_nll, kid
from stages.common import fail, stage_args, write_json
from stages.sample import load_trained


def backbone_features(params, dataset: str, data):
    """A function images -> float64 features, for the configured backbone."""
    from gdl import backbones

    if params.evaluate.backbone == "domain":
        from stages import feature_extractor

        classifier = feature_extractor.build(getattr(params.feature_extractor, dataset), data)
        classifier.load_weights(feature_extractor.weights_path(dataset))
        model = backbones.feature_model(classifier)
        return lambda images: backbones.domain_features(model, images)
    from gdl.download import fetch

    if not params.evaluate.inception_sha256:
        raise ValueError("evaluate.inception_sha256 must pin the weights file's SHA-256 to use inception_v3")
    weights = fetch(backbones.INCEPTION_V3_NOTOP_URL, f"data/downloads/{backbones.INCEPTION_V3_NOTOP_FILENAME}",
                    params.evaluate.inception_sha256)
    model = backbones.build_inception_v3(weights)
    return lambda images: backbones.inception_features(model, images)


def image_metrics(features, samples, baseline_samples, data, ev, seed) -> tuple[dict, dict, dict]:
    test = features(data["test_x"])

    def fid_kid(f):
        k, k_std = kid(f, test, subsets=ev.kid_subsets, subset_size=ev.kid_subset_size, seed=seed)
        return {"fid": fid(f, test), "kid": k, "kid_std": k_std}

    model = fid_kid(features(samples))
    baseline = fid_kid(features(baseline_samples))
    reference = fid_kid(features(data["train_x"][: len(samples)]))
    return model, baseline, reference


def evaluate_vae(params, data, samples) -> dict:
    from gdl.baselines import PixelMarginals

    ev, seed = params.evaluate, params.seed
    _, vae = load_trained("vae", params, data)
    marginals = PixelMarginals().fit(data["train_x"])
    features = backbone_features(params, params.vae.dataset, data)
    baseline_samples = marginals.sample(len(samples["samples"]), seed)
    model, baseline, reference = image_metrics(features, samples["samples"], baseline_samples, data, ev, seed)
    dims = int(np.prod(data["test_x"].shape[1:]))
    elbo, iwae = families.get("vae").log_likelihood(vae, data["test_x"], ev.iw_samples, seed)
    model["bits_per_dim"] = float(-np.mean(iwae) / (dims * math.log(2)))
    model["elbo_bits_per_dim"] = float(-np.mean(elbo) / (dims * math.log(2)))
    baseline["bits_per_dim"] = float(marginals.bits_per_dim(data["test_x"]))
    baseline["name"] = "independent per-pixel marginals of the training split"
    return {"backbone": ev.backbone, "iw_samples": ev.iw_samples, **model, "baseline": baseline,
            "reference": {"name": "training images", **reference}}


def evaluate_realnvp(params, data, samples) -> dict:
    _, flow = load_trained("realnvp", params, data)
    nll = float(-np.mean(families.get("realnvp").log_likelihood(flow, data["test_x"])))
    return {"nll_nats": nll,
            "baseline": {"name": "single Gaussian (maximum likelihood on the training split)",
                         "nll_nats": gaussian_nll(data["train_x"], data["test_x"])}}


EVALUATORS = {"vae": evaluate_vae, "realnvp": evaluate_realnvp}


def main(argv=None) -> None:
    family, stage, params = stage_args("evaluate", __doc__, families.FAMILIES, "family", argv)
    dataset = getattr(params, family).dataset
    try:
        data = load_arrays(f"data/processed/{dataset}.npz")
        samples = load_arrays(f"samples/{family}.npz")
        from gdl.training import set_seed

        set_seed(params.seed)
        figures = EVALUATORS[family](params, data, samples)
    except (DataFileError, FileNotFoundError, OSError, ValueError) as exc:
        fail(stage, str(exc))
    metrics = {"family": family, "dataset": dataset, "seed": params.seed,
               "num_samples": int(len(samples["samples"])), "num_test": int(len(data["test_x"])), **figures}
    write_json(f"metrics/{family}.json", metrics)
    print(f"{stage}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))


if __name__ == "__main__":
    main()
