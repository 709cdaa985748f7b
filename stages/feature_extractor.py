"""feature_extractor@<dataset>: train the domain classifier whose penultimate layer is the FID/KID backbone.

On the embedded data there are no ImageNet weights to be had, so FID and KID use a classifier trained on
the dataset itself (its "features" layer). Its test accuracy is a metric too: a backbone that cannot tell
the classes apart would make every FID meaningless.
Writes models/feature_extractor/<dataset>.weights.h5 (weights only: a .keras archive stamps the time into
its zip, so its hash, and every stage downstream, would change on each run) and
metrics/feature_extractor_<dataset>.json.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from gdl.arrays import DataFileError, load_arrays
from stages.common import fail, stage_args, write_json

DATASETS = ("digits",)


def weights_path(dataset: str) -> str:
    return f"models/feature_extractor/{dataset}.weights.h5"


def build(cfg, data):
    """The classifier for `data` (params.feature_extractor.<dataset>), weights freshly initialised."""
    from gdl.backbones import build_domain_classifier

    num_classes = int(data["train_y"].max()) + 1
    return build_domain_classifier(data["train_x"].shape[1:], num_classes, cfg.feature_dim,
                                   learning_rate=cfg.learning_rate)


def main(argv=None) -> None:
    dataset, stage, params = stage_args("feature_extractor", __doc__, DATASETS, "dataset", argv)
    cfg = getattr(params.feature_extractor, dataset)
    try:
        data = load_arrays(f"data/processed/{dataset}.npz")
    except DataFileError as exc:
        fail(stage, str(exc))

    from gdl.training import set_seed

    set_seed(params.seed)
    model = build(cfg, data)
    model.fit(data["train_x"], data["train_y"], validation_data=(data["val_x"], data["val_y"]),
              epochs=cfg.epochs, batch_size=cfg.batch_size, shuffle=True, verbose=2)
    _, accuracy = model.evaluate(data["test_x"], data["test_y"], verbose=0)
    majority = np.bincount(data["train_y"]).argmax()

    target = Path(weights_path(dataset))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".weights.h5")
    os.close(fd)
    model.save_weights(tmp)
    os.replace(tmp, target)
    write_json(f"metrics/feature_extractor_{dataset}.json", {
        "family": "feature_extractor", "dataset": dataset, "seed": params.seed,
        "num_test": int(len(data["test_y"])), "accuracy": float(accuracy),
        "baseline": {"name": "majority class", "accuracy": float(np.mean(data["test_y"] == majority))},
    })
    print(f"{stage}: test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main()
