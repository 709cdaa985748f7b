"""evaluate@<model>: the model's figures next to a trivial baseline's -> metrics/<model>.json (+ .meta.json).

What is measured follows from what the family declares (gdl/families/<family>/__init__.py):

* image samples: FID and KID against the test split, in the features of the model's ruler (dvc.yaml's
  `ruler`: the dataset's frozen domain backbone; or ImageNet InceptionV3 with evaluate.backbone), each
  with its noise (`fid_std`: bootstrap over both sample sets; `kid_std`: over KID's subsets). The same
  for independent per-pixel samples from the training marginals (`baseline`) and for training images
  (`reference`: the floor that sample noise alone gives at these counts).
* a likelihood: bits/dim on the test images, or nats per point for 2-D data, next to the baseline's
  exact figure (per-pixel marginals; a maximum-likelihood Gaussian).
* image samples also get a memorisation check: how far samples lie from their nearest training image in
  the ruler's features, relative to how far test images lie (`nn_distance_ratio`; the closest pairs are
  listed in the .meta.json for the report to draw).
* labels (a classifier's class probabilities on the test split): accuracy (with a bootstrap std) and
  cross-entropy, next to always predicting the training split's majority class / class frequencies.
* tokens (text, or a music transformer's note and duration streams): per-token NLL in nats and perplexity
  on the test split's windows, each with a bootstrap std over windows, next to a smoothed unigram and a
  Kneser-Ney bigram fitted on the training split and scored on the same windows (gdl/ngrams.py); the
  better of the two is `baseline`, both are listed under `unigram` and `bigram`. One stream: `nll_nats`,
  `perplexity`; several: `nll_nats_<stream>`, `perplexity_<stream>`.
* piano rolls: the family's own statistics (`extra_metrics`), with the training data's under `data`.
* whatever the family's own `extra_metrics` adds (a CGAN's conditional accuracy, an autoencoder's
  reconstruction error next to PCA's, ...); its `sections` ({name: {key: number}}, e.g. a diffusion
  model's step and guidance sweeps) become objects of their own in the metrics file.

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
from gdl.metrics import distance_figures, gaussian_nll
from gdl.params import model_seed
from gdl.sequences import VocabularyError
from stages.common import fail, model_args, quiet_tensorflow
from stages.sample import load_model

DESCRIPTIONS = {
    "fid": "Frechet distance of backbone features, samples vs test split (lower is better)",
    "kid": "kernel inception distance: unbiased MMD^2, cubic polynomial kernel (lower is better)",
    "bits_per_dim": "negative log-likelihood of the test split, bits per dimension (lower is better)",
    "nll_nats": "negative log-likelihood of the test split, nats per point (lower is better)",
    "nn_distance_ratio": "median distance from a sample to its nearest training image over the same for test "
                         "images, in the ruler's features: about 1 means as far from the training set as fresh "
                         "data, well below 1 means samples copy training images",
    "accuracy": "share of test examples whose most probable class is the true one (higher is better)",
    "cross_entropy_nats": "mean -log p(true class) on the test split, nats per example (lower is better)",
}
TOKEN_DESCRIPTIONS = {
    "nll_nats": "negative log-likelihood of the test split's tokens{stream}, nats per token, each predicted from "
                "the tokens before it in its window; ± its bootstrap std over windows (lower is better)",
    "perplexity": "exp(NLL){stream}: the number of equally likely tokens the model hesitates between on average "
                  "(lower is better)",
}
NEAREST_PAIRS = 8  # closest sample/training-image pairs listed for the report


def backbone(params, inst, data):
    """(the dataset's domain classifier, images -> float64 features, what the features are) for the
    configured backbone. The domain classifier also judges conditional samples, whatever the backbone."""
    from gdl import backbones

    ruler = backbones.Ruler(inst.ruler, data, getattr(params.feature_extractor, inst.dataset))
    if params.evaluate.backbone == "domain":
        return ruler, ruler.features, {"name": "domain", "path": inst.ruler, "sha256": sha256_file(inst.ruler)}
    from gdl.download import fetch

    if not params.evaluate.inception_sha256:
        raise ValueError("evaluate.inception_sha256 must pin the weights file's SHA-256 to use inception_v3")
    path = f"data/downloads/{backbones.INCEPTION_V3_NOTOP_FILENAME}"
    weights = fetch(backbones.INCEPTION_V3_NOTOP_URL, path, params.evaluate.inception_sha256)
    model = backbones.build_inception_v3(weights)
    return ruler, (lambda images: backbones.inception_features(model, images)), \
        {"name": "inception_v3", "path": path, "sha256": params.evaluate.inception_sha256}


def nearest_distances(queries: np.ndarray, pool: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """For each query feature vector: (distance to its nearest neighbour in `pool`, that neighbour's index)."""
    pool_sq = np.sum(pool ** 2, axis=1)
    dist, index = np.empty(len(queries)), np.empty(len(queries), np.int64)
    for start in range(0, len(queries), chunk):
        q = queries[start:start + chunk]
        d2 = np.sum(q ** 2, axis=1)[:, None] - 2.0 * q @ pool.T + pool_sq[None, :]
        index[start:start + chunk] = np.argmin(d2, axis=1)
        dist[start:start + chunk] = np.sqrt(np.maximum(np.min(d2, axis=1), 0.0))
    return dist, index


def image_figures(features, samples, baseline_samples, data, ev, seed) -> tuple[dict, dict, dict, dict]:
    """FID/KID with their noise for the model's samples, the baseline's and training images, and the
    memorisation check of the samples and the baseline's; -> (model, baseline, reference, meta)."""
    test, train = features(data["test_x"]), features(data["train_x"])
    test_nn = float(np.median(nearest_distances(test, train)[0]))

    def measure(f):
        return distance_figures(f, test, ev, seed)

    model_f, baseline_f = features(samples), features(baseline_samples)
    dist, index = nearest_distances(model_f, train)
    model_fig = {**measure(model_f), "nn_distance_ratio": float(np.median(dist)) / test_nn}
    baseline_fig = {**measure(baseline_f),
                    "nn_distance_ratio": float(np.median(nearest_distances(baseline_f, train)[0])) / test_nn}
    closest = np.argsort(dist, kind="stable")[:NEAREST_PAIRS]
    meta = {"nearest_pairs": [{"sample": int(i), "train": int(index[i]), "distance": float(dist[i])} for i in closest],
            "test_nn_median": test_nn}
    return model_fig, baseline_fig, measure(train[: len(samples)]), meta


def label_figures(probabilities: np.ndarray, data: dict, ev, seed: int) -> tuple[dict, dict]:
    """A classifier's accuracy (bootstrap std over the test split) and cross-entropy, and the same for the
    trivial classifier that predicts the training split's class frequencies (majority class for accuracy)."""
    y = data["test_y"].astype(np.int64)
    k = probabilities.shape[1]
    correct = (np.argmax(probabilities, axis=1) == y).astype(np.float64)
    frequencies = np.bincount(data["train_y"].astype(np.int64), minlength=k) / len(data["train_y"])
    majority = (y == np.argmax(frequencies)).astype(np.float64)
    rng = np.random.default_rng(seed)
    resamples = rng.integers(0, len(y), (ev.bootstrap, len(y)))

    def figures(hits, p_true):
        return {"accuracy": float(hits.mean()), "accuracy_std": float(hits[resamples].mean(axis=1).std(ddof=1)),
                "cross_entropy_nats": float(-np.mean(np.log(np.maximum(p_true, 1e-12))))}

    return figures(correct, probabilities[np.arange(len(y)), y]), figures(majority, frequencies[y])


def token_figures(module, model, data: dict, ev, seed: int) -> tuple[dict, dict, dict, dict, dict]:
    """Per-token NLL and perplexity of every stream of the model and of the n-gram baselines, on the same
    test windows: -> (model, better baseline, unigram, bigram, meta)."""
    from gdl import ngrams
    from gdl.sequences import windows

    scored = module.token_log_likelihood(model, data, "test")
    figures, best, uni, bi, meta = {}, {}, {}, {}, {"streams": {}}
    for stream, (w, logp) in scored.items():
        ids = "ids" if stream == "tokens" else f"{stream}_ids"
        suffix = "" if len(scored) == 1 else f"_{stream}"
        vocab_size = len(data["vocab" if stream == "tokens" else f"{stream}_vocab"])
        val = windows(data[f"val_{ids}"], data["val_offsets"], w.shape[1] - 1)
        unigram, bigram = ngrams.fit_baselines((data[f"train_{ids}"], data["train_offsets"]), val, vocab_size)

        def measure(lp):
            nll = ngrams.mean_nll(lp, w)
            std = ngrams.bootstrap_std(lp, w, ev.bootstrap, seed)
            return {f"nll_nats{suffix}": nll, f"nll_nats{suffix}_std": std, f"perplexity{suffix}": math.exp(nll),
                    f"perplexity{suffix}_std": math.exp(nll) * std}  # delta method

        figures.update(measure(logp))
        u, b = measure(ngrams.score(unigram, w)), measure(ngrams.score(bigram, w))
        uni.update(u)
        bi.update(b)
        best.update(b if b[f"nll_nats{suffix}"] <= u[f"nll_nats{suffix}"] else u)
        meta["streams"][stream] = {"targets": int((w[:, 1:] != 0).sum()), "windows": int(len(w)),
                                   "window": int(w.shape[1] - 1), "vocab_size": vocab_size,
                                   "unigram_add_k": unigram.k, "bigram_discount": bigram.discount,
                                   "baseline": "bigram" if best[f"nll_nats{suffix}"] == b[f"nll_nats{suffix}"]
                                   else "unigram"}
    return figures, best, uni, bi, meta


def main(argv=None) -> None:
    inst, stage, params = model_args("evaluate", __doc__, argv)
    quiet_tensorflow()
    family, ev, seed = inst.family, params.evaluate, model_seed(params, inst.name)
    figures, baseline, reference, sections = {}, {}, {}, {}
    meta = {"model": inst.name, "family": family.name, "dataset": inst.dataset, "data": inst.data_path, "seed": seed}
    descriptions = dict(DESCRIPTIONS)
    try:
        data = load_arrays(inst.data_path)
        outputs = load_arrays(f"samples/{inst.name}.npz")
        samples = outputs["samples"]
        module, model = load_model(inst, params, data, seed)
        if "test_x" in data:
            meta.update(num_test=int(len(data["test_x"])))
        if family.samples == "tokens":
            figures, baseline, sections["unigram"], sections["bigram"], token_meta = token_figures(
                module, model, data, ev, seed)
            meta.update(token_meta)
            for key in (k for k in figures if not k.endswith("_std")):
                base = "nll_nats" if key.startswith("nll_nats") else "perplexity"
                stream = key[len(base) + 1:]
                descriptions[key] = TOKEN_DESCRIPTIONS[base].format(stream=f" ({stream} stream)" if stream else "")
            meta["num_test"] = sum(s["targets"] for s in token_meta["streams"].values())
            meta["baseline"] = ("the better of a smoothed unigram and a Kneser-Ney bigram model fitted on the "
                                "training split (both under `unigram` and `bigram`)")
        elif family.samples != "labels":  # a classifier's "samples" are its predictions for the test split
            meta["num_samples"] = int(len(samples))
        ruler = None
        if family.samples == "images":
            from gdl.baselines import PixelMarginals

            marginals = PixelMarginals().fit(data["train_x"])  # the baseline: independent pixels
            outputs["baseline"] = marginals.sample(len(samples), seed)
            ruler, features, meta["backbone"] = backbone(params, inst, data)
            model_fig, baseline, reference, nearest = image_figures(
                features, samples, outputs["baseline"], data, ev, seed)
            figures.update(model_fig)
            meta.update(nearest)
            meta["baseline"] = "independent per-pixel marginals of the training split"
            meta["reference"] = "training images (the floor that sample noise alone gives)"
        if family.samples == "labels":
            model_fig, baseline = label_figures(samples, data, ev, seed)
            figures.update(model_fig)
            meta["baseline"] = "always the training split's majority class (its class frequencies, for cross-entropy)"
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
        if hasattr(module, "extra_metrics"):
            extra = module.extra_metrics(model, data, getattr(params, inst.name), seed, ruler, outputs,
                                          params.evaluate)
            figures.update(extra.get("figures", {}))
            baseline.update(extra.get("baseline", {}))
            reference.update(extra.get("reference", {}))
            if extra.get("data"):
                sections["data"] = extra["data"]
            sections.update(extra.get("sections", {}))
            descriptions.update(extra.get("descriptions", {}))
            meta.update(extra.get("meta", {}))
    except VocabularyError as exc:
        fail(stage, str(exc))
    except (DataFileError, FileNotFoundError, OSError, ValueError, KeyError) as exc:
        fail(stage, f"{type(exc).__name__}: {exc}")
    metrics = {**figures, "baseline": baseline, **({"reference": reference} if reference else {}), **sections}
    meta["descriptions"] = {k: v for k, v in descriptions.items() if k in figures}
    write_json(f"metrics/{inst.name}.json", metrics)
    write_json(f"metrics/{inst.name}.meta.json", meta)
    print(f"{stage}: " + ", ".join(f"{k}={v:.4g}" for k, v in figures.items())
          + " | baseline: " + ", ".join(f"{k}={v:.4g}" for k, v in baseline.items()))


if __name__ == "__main__":
    main()
